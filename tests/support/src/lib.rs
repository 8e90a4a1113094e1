//! A generator of realistic shared-POP mailboxes with ground truth, and the scoring of a
//! run against it. It feeds the accuracy benchmark, the calibration test and the speed
//! benchmarks; it is not used by `popsplit` itself.
//!
//! One mailbox is one ISP style, as in life: Postfix (X-Original-To plus a Delivered-To
//! naming the box), qmail (prefixed Delivered-To), Exim (Envelope-to, one copy for all),
//! sendmail (X-Envelope-To) or bare (no envelope field; a Delivered-To naming the box at
//! the office's own domain). The traps: mailing lists, Bcc, aliases, distribution lists,
//! departed users, spam with forged Received lines and guessed addresses, odd address
//! syntax, replies in threads, and 8-bit headers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::{self, Write};

/// How the ISP delivered the catch-all's mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Style {
    /// X-Original-To per copy, Delivered-To naming the box, Received `for`.
    Postfix,
    /// `Delivered-To: acmepop-<user>@isp` per copy.
    Qmail,
    /// `Envelope-to:` listing every local recipient on one copy.
    Exim,
    /// `X-Envelope-To:` per copy, Received `for`.
    Sendmail,
    /// No envelope field at all.
    Bare,
}

impl Style {
    /// Every style.
    pub const ALL: [Style; 5] = [
        Style::Postfix,
        Style::Qmail,
        Style::Exim,
        Style::Sendmail,
        Style::Bare,
    ];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Style::Postfix => "postfix",
            Style::Qmail => "qmail",
            Style::Exim => "exim",
            Style::Sendmail => "sendmail",
            Style::Bare => "bare",
        }
    }

    /// Whether the ISP left an envelope field.
    pub fn has_envelope(self) -> bool {
        self != Style::Bare
    }
}

/// What to generate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The ISP style.
    pub style: Style,
    /// Logical messages (copies come on top).
    pub messages: usize,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
    /// Whether the ISP delivered one copy per envelope recipient (Exim never does).
    pub per_recipient_copies: bool,
    /// Mean body size in bytes (attachments make up the rest).
    pub body_bytes: usize,
}

/// The truth about one copy in the generated mbox.
#[derive(Debug, Clone)]
pub struct Truth {
    /// 1-based index in the mbox.
    pub index: usize,
    /// Which logical message this is a copy of.
    pub logical: usize,
    /// Users this logical message really reached.
    pub recipients: Vec<String>,
    /// Whether the evidence in the mailbox can identify those users at all.
    pub recoverable: bool,
    /// The trap the message stands for.
    pub category: &'static str,
    /// The ISP style.
    pub style: Style,
}

/// The office's domain in every generated mailbox.
pub const DOMAIN: &str = "example.com";
const USERS: [&str; 12] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "oscar",
    "victor",
];
const DEPARTED: [&str; 2] = ["peggy", "trent"];
const ALIASES: [(&str, &str); 3] = [
    ("alice.smith", "alice"),
    ("info", "carol"),
    ("billing", "dave"),
];
const DISTRIBUTION: [(&str, &[&str]); 2] = [
    ("sales", &["alice", "bob", "frank"]),
    ("support", &["carol", "grace"]),
];
const LISTS: [(&str, &[&str]); 4] = [
    ("rust-users", &["dave"]),
    ("hiking", &["erin"]),
    ("vendors", &["heidi", "ivan"]),
    ("city-news", &["judy"]),
];

/// The `address,user` directory of the generated office.
pub fn directory_csv() -> String {
    let mut s = String::from("address,user\n");
    for u in USERS {
        let _ = writeln!(s, "{u}@{DOMAIN},{u}");
    }
    for (a, u) in ALIASES {
        let _ = writeln!(s, "{a}@{DOMAIN},{u}");
    }
    for (a, members) in DISTRIBUTION {
        for m in members {
            let _ = writeln!(s, "{a}@{DOMAIN},{m}");
        }
    }
    s
}

/// SplitMix64: small, fast, and the same on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One logical message before the ISP delivers it.
struct Draft {
    category: &'static str,
    from: String,
    from_host: String,
    to: String,
    cc: Option<String>,
    /// Local addresses in the SMTP envelope (what the ISP's catch-all accepted).
    envelope: Vec<String>,
    subject: String,
    extra: String,
    forged_for: Option<String>,
    /// Users the evidence can identify without an envelope field (visible in To/Cc, or
    /// through a thread with a known user).
    visible: BTreeSet<String>,
}

/// Users an envelope address reaches.
fn users_of(addr: &str) -> Vec<String> {
    let local = addr
        .split('@')
        .next()
        .unwrap_or_default()
        .split('+')
        .next()
        .unwrap_or_default()
        .to_lowercase();
    if USERS.contains(&local.as_str()) {
        return vec![local];
    }
    if let Some((_, u)) = ALIASES.iter().find(|(a, _)| *a == local) {
        return vec![u.to_string()];
    }
    if let Some((_, m)) = DISTRIBUTION.iter().find(|(a, _)| *a == local) {
        return m.iter().map(|s| s.to_string()).collect();
    }
    Vec::new()
}

/// Writes a generated mailbox to `out` and returns the truth of every copy in it.
pub fn generate(spec: &Spec, out: &mut impl Write) -> io::Result<Vec<Truth>> {
    let mut rng = Rng(spec.seed ^ (spec.style as u64).wrapping_mul(0x1000_0000_01b3));
    let mut truth = Vec::new();
    let mut time: i64 = 1_420_070_400; // 2015-01-01
    // Earlier messages a thread can reply to: (message id, user it reached).
    let mut threads: Vec<(String, String)> = Vec::new();
    let mut index = 0;
    for logical in 0..spec.messages {
        time += 60 + rng.below(3600) as i64;
        let msg_id = format!(
            "{logical}.{}@{}",
            rng.next() % 1_000_000,
            ["mail.example.org", "mx.example.net", "host.example"][logical % 3]
        );
        let draft = draft(&mut rng, &threads);
        let mut recipients: Vec<String> = draft.envelope.iter().flat_map(|a| users_of(a)).collect();
        recipients.sort();
        recipients.dedup();
        if let Some(u) = recipients.first()
            && (draft.category == "direct" || draft.category == "reply")
        {
            threads.push((msg_id.clone(), u.clone()));
            if threads.len() > 200 {
                threads.remove(0);
            }
        }
        let recoverable = spec.style.has_envelope()
            || (draft.category != "list" && recipients.iter().all(|u| draft.visible.contains(u)));
        let body = body(&mut rng, spec.body_bytes, logical);
        let copies: Vec<Vec<String>> =
            if spec.style == Style::Exim || !spec.per_recipient_copies || draft.envelope.is_empty()
            {
                vec![draft.envelope.clone()]
            } else {
                draft.envelope.iter().map(|a| vec![a.clone()]).collect()
            };
        for rcpts in copies {
            index += 1;
            write_copy(
                out, spec.style, &draft, &rcpts, &msg_id, time, &body, &mut rng,
            )?;
            truth.push(Truth {
                index,
                logical,
                recipients: recipients.clone(),
                recoverable,
                category: draft.category,
                style: spec.style,
            });
        }
    }
    Ok(truth)
}

/// Picks a trap and builds the message a sender would have sent.
fn draft(rng: &mut Rng, threads: &[(String, String)]) -> Draft {
    let org = rng.below(60);
    let from_host = format!("mail.org{org}.example");
    let sender = format!("p{}@org{org}.example", rng.below(20));
    let stranger = format!("q{}@other{}.example", rng.below(50), rng.below(30));
    let user = rng.pick(&USERS).to_string();
    let addr = |u: &str| format!("{u}@{DOMAIN}");
    let mut d = Draft {
        category: "direct",
        from: format!("\"Person {org}\" <{sender}>"),
        from_host,
        to: addr(&user),
        cc: None,
        envelope: vec![addr(&user)],
        subject: format!("Project {}", rng.below(1000)),
        extra: String::new(),
        forged_for: None,
        visible: BTreeSet::from([user.clone()]),
    };
    let roll = rng.below(100);
    match roll {
        0..=29 => {
            if rng.chance(30) {
                d.cc = Some(stranger.clone());
            }
        }
        30..=39 => {
            d.category = "multi";
            let other = rng.pick(&USERS).to_string();
            d.cc = Some(format!("{}, \"Ext\" <{stranger}>", addr(&other)));
            d.envelope.push(addr(&other));
            d.visible.insert(other);
        }
        40..=45 => {
            d.category = "bcc";
            d.visible.clear();
            if rng.chance(30) {
                // To names a colleague; the user was blind-copied.
                let other = USERS[rng.below(USERS.len())];
                d.to = addr(other);
                d.envelope.push(addr(other));
                d.visible.insert(other.to_string());
            } else {
                d.to = stranger;
            }
        }
        46..=51 => {
            d.category = "alias";
            let (a, u) = rng.pick(&ALIASES);
            d.to = format!("\"Desk\" <{}>", addr(a));
            d.envelope = vec![addr(a)];
            d.visible = BTreeSet::from([u.to_string()]);
        }
        52..=56 => {
            d.category = "distribution-list";
            let (a, members) = rng.pick(&DISTRIBUTION);
            d.to = addr(a);
            d.envelope = vec![addr(a)];
            d.visible = members.iter().map(|m| m.to_string()).collect();
        }
        57..=60 => {
            d.category = "departed";
            let gone = rng.pick(&DEPARTED);
            d.to = addr(gone);
            d.envelope = vec![addr(gone)];
            d.visible.clear();
        }
        61..=72 => {
            d.category = "list";
            let (list, subs) = rng.pick(&LISTS);
            let host = format!("lists{}.example", list.len());
            d.to = format!("\"{list}\" <{list}@{host}>");
            d.envelope = subs.iter().map(|u| addr(u)).collect();
            d.extra = format!(
                "List-Id: {list} <{list}.{host}>\nList-Post: <mailto:{list}@{host}>\nPrecedence: list\n"
            );
            d.subject = format!("[{list}] topic {}", rng.below(500));
            d.visible.clear();
        }
        73..=82 => {
            d.category = "spam";
            let guess = format!(
                "{}{}@{DOMAIN}",
                ["sales1", "admin", "webmaster", "ceo", "jobs"][rng.below(5)],
                rng.below(100)
            );
            let forged: &str = USERS[rng.below(USERS.len())];
            d.forged_for = Some(addr(forged));
            d.from = format!(
                "\"Winner\" <promo{}@spam{}.example>",
                rng.below(999),
                rng.below(40)
            );
            d.subject = "You have won".into();
            if rng.chance(50) {
                d.to = guess.clone();
                d.envelope = vec![guess];
                d.visible.clear();
            } else {
                d.to = format!("{}, {guess}", addr(&user));
                d.envelope = vec![addr(&user), guess];
            }
        }
        83..=89 if !threads.is_empty() => {
            d.category = "reply";
            let (parent, who) = rng.pick(threads).clone();
            d.subject = "Re: Project".into();
            d.extra = format!("In-Reply-To: <{parent}>\nReferences: <{parent}>\n");
            d.envelope = vec![addr(&who)];
            d.visible = BTreeSet::from([who.clone()]);
            if rng.chance(50) {
                // Blind-copied; only the thread tells, and now and then it tells wrong:
                // the copy was for a colleague of the thread's user.
                d.to = stranger;
                if rng.chance(10) {
                    let other = USERS[rng.below(USERS.len())];
                    d.envelope = vec![addr(other)];
                    d.visible = BTreeSet::from([other.to_string()]);
                }
            } else {
                d.to = addr(&who);
            }
        }
        90..=95 => {
            d.category = "odd-syntax";
            let shapes = [
                format!("\"Smith, {user}\" <{}>", addr(&user.to_uppercase())),
                format!("=?utf-8?Q?J=C3=BCrgen_{user}?= <{user}+tag@{DOMAIN}>"),
                format!(
                    "Foo <foo@org{org}.example>, postmaster, {user} <{}>",
                    addr(&user)
                ),
                format!("Team: {}, other@org{org}.example;", addr(&user)),
                format!("{user}@{}", DOMAIN.to_uppercase()),
            ];
            d.to = rng.pick(&shapes).clone();
        }
        _ => {
            d.category = "8bit";
            d.from = format!("\"Jürgen Müller {org}\" <{sender}>");
            d.to = format!("\"Frédérique {user}\" <{}>", addr(&user));
            d.subject = "Grüße aus München".into();
        }
    }
    d
}

fn body(rng: &mut Rng, mean: usize, logical: usize) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "the", "invoice", "meeting", "project", "from", "report", "attached", "please", "review",
        "budget", "office", "today", "thanks", "regards", "schedule", "update",
    ];
    let target = if mean == 0 {
        0
    } else {
        mean / 2 + rng.below(mean)
    };
    let mut b = Vec::with_capacity(target + 200);
    let _ = write!(b, "Message {logical}.\n\n");
    // Unquoted and quoted `From ` lines, as real bodies have them.
    if rng.chance(3) {
        b.extend_from_slice(b"From what I hear the project is on time.\n");
    }
    if rng.chance(3) {
        b.extend_from_slice(b">From the quoted archive.\n");
    }
    let mut line = 0;
    while b.len() < target {
        let w = WORDS[rng.below(WORDS.len())];
        b.extend_from_slice(w.as_bytes());
        line += w.len() + 1;
        if line > 70 {
            b.push(b'\n');
            line = 0;
        } else {
            b.push(b' ');
        }
    }
    b.extend_from_slice(b"\n");
    b
}

/// Month abbreviations, as both date forms spell them.
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Weekday abbreviations from Thursday, the weekday of 1970-01-01.
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];

/// (weekday, day, month, year, hour, minute, second) of a UTC time. Written here rather
/// than borrowed from popsplit, so that the generator's dates do not share a mistake with
/// the reader they test.
fn calendar(t: i64) -> (&'static str, i64, &'static str, i64, i64, i64, i64) {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        WEEKDAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs % 3600 / 60,
        secs % 60,
    )
}

/// The date of a `From ` line (asctime form, UTC) for `t` seconds since the epoch.
fn asctime(t: i64) -> String {
    let (wd, d, mon, y, h, mi, s) = calendar(t);
    format!("{wd} {mon} {d:>2} {h:02}:{mi:02}:{s:02} {y}")
}

/// The `Date:` field (RFC 5322 form, UTC) for `t` seconds since the epoch.
fn rfc2822(t: i64) -> String {
    let (wd, d, mon, y, h, mi, s) = calendar(t);
    format!("{wd}, {d} {mon} {y} {h:02}:{mi:02}:{s:02} +0000")
}

/// Writes one copy as the ISP would have delivered it, in mboxrd form.
#[allow(clippy::too_many_arguments)]
fn write_copy(
    out: &mut impl Write,
    style: Style,
    d: &Draft,
    rcpts: &[String],
    msg_id: &str,
    time: i64,
    body: &[u8],
    rng: &mut Rng,
) -> io::Result<()> {
    let sender = d
        .from
        .rsplit_once('<')
        .map_or(d.from.as_str(), |(_, r)| r.trim_end_matches('>'));
    let mut h = format!("From {sender} {}\n", asctime(time));
    let date = rfc2822(time);
    let single = (rcpts.len() == 1).then(|| rcpts[0].clone());
    let id = rng.next() % 0xFFFF_FFFF;
    let mx = if rng.chance(50) { "mx1" } else { "mx2" };
    let for_clause = |r: &Option<String>| {
        r.as_ref()
            .map(|a| format!("\n\tfor <{a}>"))
            .unwrap_or_default()
    };
    match style {
        Style::Postfix => {
            let _ = write!(
                h,
                "Return-Path: <{sender}>\nDelivered-To: acme-pop@isp.example.net\n"
            );
            if let Some(r) = &single {
                let _ = writeln!(h, "X-Original-To: {r}");
            }
            let _ = write!(
                h,
                "Received: from {host} ({host} [192.0.2.{})\n\tby {mx}.isp.example.net (Postfix) with ESMTP id {id:X}{}; {date}\n",
                rng.below(250),
                for_clause(&single),
                host = d.from_host
            );
        }
        Style::Qmail => {
            if let Some(r) = &single {
                let local = r.split('@').next().unwrap_or_default();
                let _ = writeln!(h, "Delivered-To: acmepop-{local}@isp.example.net");
            }
            let _ = write!(
                h,
                "Received: (qmail {} invoked from network); {date}\nReceived: from {host} (HELO {host}) (192.0.2.{})\n  by mail.isp.example.net with SMTP; {date}\n",
                rng.below(99_999),
                rng.below(250),
                host = d.from_host
            );
        }
        Style::Exim => {
            if !rcpts.is_empty() {
                let _ = writeln!(h, "Envelope-to: {}", rcpts.join(", "));
            }
            let _ = write!(
                h,
                "Delivery-date: {date}\nReceived: from {host} ([192.0.2.{}])\n\tby box.isp.example.net with esmtps (Exim 4.92)\n\t(envelope-from <{sender}>)\n\tid 1h{id:X}-000{}{}; {date}\n",
                rng.below(250),
                rng.below(9),
                for_clause(&single),
                host = d.from_host
            );
        }
        Style::Sendmail => {
            if let Some(r) = &single {
                let _ = writeln!(h, "X-Envelope-To: <{r}>");
            }
            let _ = write!(
                h,
                "Received: from {host} ({host} [192.0.2.{}])\n\tby mail.isp.example.net (8.15.2/8.15.2) with ESMTP id x{id:x}{};\n\t{date}\n",
                rng.below(250),
                for_clause(&single),
                host = d.from_host
            );
        }
        Style::Bare => {
            let _ = write!(
                h,
                "Delivered-To: office@{DOMAIN}\nReceived: from {host} ({host} [192.0.2.{}])\n\tby pop.isp.example.net with ESMTP id {id:X}; {date}\n",
                rng.below(250),
                host = d.from_host
            );
        }
    }
    // The sender's own relays, below the ISP's lines; spam forges a `for` there.
    let _ = writeln!(
        h,
        "Received: from client{} by {} with ESMTPSA; {date}",
        rng.below(99),
        d.from_host
    );
    if let Some(forged) = &d.forged_for {
        let _ = writeln!(
            h,
            "Received: from relay{} (relay [10.0.0.{}]) by relay{}.spam.example for <{forged}>; {date}",
            rng.below(9),
            rng.below(250),
            rng.below(9)
        );
    }
    let _ = writeln!(h, "From: {}", d.from);
    let _ = writeln!(h, "To: {}", d.to);
    if let Some(cc) = &d.cc {
        let _ = writeln!(h, "Cc: {cc}");
    }
    let _ = write!(
        h,
        "Subject: {}\nDate: {date}\nMessage-ID: <{msg_id}>\n{}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n",
        d.subject, d.extra
    );
    out.write_all(h.as_bytes())?;
    // mboxrd quoting of body lines.
    for line in body.split_inclusive(|&b| b == b'\n') {
        let gts = line.iter().take_while(|&&b| b == b'>').count();
        if line[gts..].starts_with(b"From ") {
            out.write_all(b">")?;
        }
        out.write_all(line)?;
    }
    out.write_all(b"\n")
}

/// What a run did with one copy, read back from its report.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Folders the copy went to (users, the unassigned folder or `_duplicates`).
    pub delivered_to: Vec<String>,
    /// Confidence name.
    pub confidence: String,
}

/// Precision and counts for one slice of the scores.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Logical messages.
    pub messages: u64,
    /// (message, user) pairs delivered.
    pub delivered: u64,
    /// Delivered pairs that were wrong.
    pub wrong: u64,
    /// True (message, user) pairs.
    pub truth: u64,
    /// True pairs found.
    pub found: u64,
}

impl Tally {
    /// Share of deliveries that were right (1 when there were none).
    pub fn precision(&self) -> f64 {
        if self.delivered == 0 {
            1.0
        } else {
            (self.delivered - self.wrong) as f64 / self.delivered as f64
        }
    }
    /// Share of true pairs found (1 when there were none).
    pub fn recall(&self) -> f64 {
        if self.truth == 0 {
            1.0
        } else {
            self.found as f64 / self.truth as f64
        }
    }
}

/// The scores of one or more runs against their truth.
#[derive(Debug, Clone, Default)]
pub struct Scores {
    /// Copies read.
    pub copies: u64,
    /// Copies that landed in no folder at all.
    pub lost: u64,
    /// (message, user) pairs delivered more than once.
    pub doubled: u64,
    /// Everything.
    pub overall: Tally,
    /// Messages whose recipients the evidence can identify.
    pub recoverable: Tally,
    /// Mailboxes where the ISP left an envelope field.
    pub with_envelope: Tally,
    /// Per confidence level (delivered and wrong only).
    pub by_confidence: BTreeMap<String, Tally>,
    /// Per trap category.
    pub by_category: BTreeMap<String, Tally>,
    /// Per ISP style.
    pub by_style: BTreeMap<String, Tally>,
}

impl Scores {
    /// Adds one run: `outcomes[i]` is what happened to the copy `truth[i]`.
    pub fn add(&mut self, truth: &[Truth], outcomes: &[Outcome]) {
        // Per logical message: its truth, and per user the copies given and their confidence.
        type Given = BTreeMap<String, (usize, String)>;
        let mut per_logical: BTreeMap<usize, (&Truth, Given)> = BTreeMap::new();
        for (t, o) in truth.iter().zip(outcomes) {
            self.copies += 1;
            if o.delivered_to.is_empty() {
                self.lost += 1;
            }
            let entry = per_logical
                .entry(t.logical)
                .or_insert_with(|| (t, BTreeMap::new()));
            for f in o.delivered_to.iter().filter(|f| !f.starts_with('_')) {
                let e = entry
                    .1
                    .entry(f.clone())
                    .or_insert((0, o.confidence.clone()));
                e.0 += 1;
            }
        }
        self.lost += truth.len().saturating_sub(outcomes.len()) as u64;
        for (t, delivered) in per_logical.values() {
            let truth_set: BTreeSet<&String> = t.recipients.iter().collect();
            let mut slices: Vec<&mut Tally> = vec![
                &mut self.overall,
                self.by_category.entry(t.category.to_string()).or_default(),
            ];
            if t.recoverable {
                slices.push(&mut self.recoverable);
            }
            if t.style.has_envelope() {
                slices.push(&mut self.with_envelope);
            }
            let style = self.by_style.entry(t.style.name().to_string()).or_default();
            slices.push(style);
            let found = delivered.keys().filter(|u| truth_set.contains(u)).count() as u64;
            let wrong = delivered.len() as u64 - found;
            for s in slices {
                s.messages += 1;
                s.delivered += delivered.len() as u64;
                s.wrong += wrong;
                s.truth += truth_set.len() as u64;
                s.found += found;
            }
            for (user, (times, conf)) in delivered {
                self.doubled += (*times as u64).saturating_sub(1);
                let c = self.by_confidence.entry(conf.clone()).or_default();
                c.delivered += 1;
                c.wrong += u64::from(!truth_set.contains(user));
            }
        }
    }

    /// The figures the accuracy benchmark prints.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let _ = writeln!(
            t,
            "copies read {}, lost {}, user given the same message twice {}",
            self.copies, self.lost, self.doubled
        );
        let _ = writeln!(
            t,
            "wrong deliveries: {} of {} overall; {} of {} where the ISP left an envelope field ({:.2} per 1,000)",
            self.overall.wrong,
            self.overall.delivered,
            self.with_envelope.wrong,
            self.with_envelope.delivered,
            1000.0 * self.with_envelope.wrong as f64 / self.with_envelope.delivered.max(1) as f64
        );
        let _ = writeln!(
            t,
            "overall:     precision {:.4}  recall {:.4}",
            self.overall.precision(),
            self.overall.recall()
        );
        let _ = writeln!(
            t,
            "recoverable: precision {:.4}  recall {:.4}",
            self.recoverable.precision(),
            self.recoverable.recall()
        );
        let _ = writeln!(
            t,
            "\n{:<10} {:>9} {:>7} {:>10}",
            "confidence", "delivered", "wrong", "precision"
        );
        for (c, tally) in &self.by_confidence {
            let _ = writeln!(
                t,
                "{c:<10} {:>9} {:>7} {:>10.4}",
                tally.delivered,
                tally.wrong,
                tally.precision()
            );
        }
        for (title, map) in [
            ("category", &self.by_category),
            ("isp style", &self.by_style),
        ] {
            let _ = writeln!(
                t,
                "\n{title:<18} {:>8} {:>9} {:>7} {:>10} {:>8}",
                "messages", "delivered", "wrong", "precision", "recall"
            );
            for (k, v) in map {
                let _ = writeln!(
                    t,
                    "{k:<18} {:>8} {:>9} {:>7} {:>10.4} {:>8.4}",
                    v.messages,
                    v.delivered,
                    v.wrong,
                    v.precision(),
                    v.recall()
                );
            }
        }
        t
    }

    /// The calibration targets that are not met, in words (empty when all hold).
    pub fn failures(&self) -> Vec<String> {
        let mut f = Vec::new();
        let level = |c: &str| {
            self.by_confidence
                .get(c)
                .map(Tally::precision)
                .unwrap_or(1.0)
        };
        for (c, min) in [("high", 0.999), ("medium", 0.98), ("low", 0.85)] {
            if level(c) < min {
                f.push(format!("precision at {c} is {:.4}, below {min}", level(c)));
            }
        }
        if self.recoverable.recall() < 0.98 {
            f.push(format!(
                "recall on the recoverable messages is {:.4}, below 0.98",
                self.recoverable.recall()
            ));
        }
        if self.lost > 0 {
            f.push(format!("{} copies lost", self.lost));
        }
        if self.doubled > 0 {
            f.push(format!("{} messages given twice to one user", self.doubled));
        }
        if self.with_envelope.wrong * 1000 >= self.with_envelope.delivered.max(1) {
            f.push(format!(
                "{} wrong deliveries in {} where the ISP left an envelope field",
                self.with_envelope.wrong, self.with_envelope.delivered
            ));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies per logical message.
    fn copies_per_message(truth: &[Truth]) -> std::collections::HashMap<usize, usize> {
        let mut m = std::collections::HashMap::new();
        for t in truth {
            *m.entry(t.logical).or_default() += 1;
        }
        m
    }

    /// Reads a date with mailparse, a parser popsplit's own code has no part in. It reads
    /// only the RFC 5322 order, so an asctime date is first put in that order, by tokens.
    fn independent(date: &str) -> Option<i64> {
        let t: Vec<&str> = date.split_whitespace().collect();
        let rfc = match t.as_slice() {
            [_, mon, day, time, year] if !t[0].ends_with(',') => {
                format!("{day} {mon} {year} {time} +0000")
            }
            _ => date.to_string(),
        };
        mailparse::dateparse(&rfc).ok()
    }

    #[test]
    fn both_date_forms_read_back_with_an_independent_parser() {
        // Days known from a calendar anchor the weekday, which mailparse does not check.
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(asctime(1_552_132_800), "Sat Mar  9 12:00:00 2019");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc2822(1_767_225_599), "Wed, 31 Dec 2025 23:59:59 +0000");
        // A stride that is no whole number of days or hours walks every month, leap days,
        // and times of day over seventy years.
        let mut t = 0;
        while t < 2_200_000_000 {
            assert_eq!(independent(&asctime(t)), Some(t), "{}", asctime(t));
            assert_eq!(independent(&rfc2822(t)), Some(t), "{}", rfc2822(t));
            t += 86_400 * 3 + 3_607;
        }
    }

    #[test]
    fn generation_is_deterministic_and_copies_are_counted() {
        for style in Style::ALL {
            let spec = Spec {
                style,
                messages: 200,
                seed: 7,
                per_recipient_copies: true,
                body_bytes: 300,
            };
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let ta = generate(&spec, &mut a).expect("gen");
            generate(&spec, &mut b).expect("gen");
            assert_eq!(a, b);
            // Bodies quote their `From ` lines (mboxrd), so each one left is a separator.
            let separators = a
                .split(|&c| c == b'\n')
                .filter(|l| l.starts_with(b"From "))
                .count();
            assert_eq!(separators, ta.len(), "{style:?}");
            let per = copies_per_message(&ta);
            assert_eq!(per.len(), 200);
            if style == Style::Exim {
                assert!(per.values().all(|&n| n == 1));
            } else {
                assert!(
                    per.values().any(|&n| n > 1),
                    "{style:?} made no per-recipient copies"
                );
            }
        }
    }

    #[test]
    fn scores_count_wrong_and_missed_pairs_per_logical_message() {
        let t = |index, logical, r: &[&str]| Truth {
            index,
            logical,
            recipients: r.iter().map(|s| s.to_string()).collect(),
            recoverable: true,
            category: "direct",
            style: Style::Bare,
        };
        let o = |to: &[&str], c: &str| Outcome {
            delivered_to: to.iter().map(|s| s.to_string()).collect(),
            confidence: c.into(),
        };
        let mut s = Scores::default();
        s.add(
            &[
                t(1, 0, &["alice", "bob"]),
                t(2, 0, &["alice", "bob"]),
                t(3, 1, &["carol"]),
            ],
            &[
                o(&["alice", "bob"], "medium"),
                o(&["_duplicates"], "medium"),
                o(&["dave"], "low"),
            ],
        );
        assert_eq!(s.overall.delivered, 3);
        assert_eq!(s.overall.wrong, 1);
        assert_eq!(s.overall.truth, 3);
        assert_eq!(s.overall.found, 2);
        assert_eq!(s.by_confidence["low"].wrong, 1);
        assert_eq!(s.lost, 0);
        assert!(s.failures().iter().any(|f| f.contains("precision at low")));
    }
}

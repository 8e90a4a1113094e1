//! The generator: logical messages with ground truth, rendered per provider style into
//! mboxrd bytes.

use super::{DIRECTORY, Options};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

/// A provider style: how one provider's servers deliver into the shared box.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Style {
    /// ISP Postfix virtual catch-all, one copy per recipient.
    Postfix,
    /// Postfix plus Dovecot LMTP into `office@`, itself a directory address.
    PostfixOffice,
    /// qmail on Plesk, prefixed `Delivered-To` and `.qmail-default` chains.
    QmailPlesk,
    /// Exim on cPanel with `Envelope-to`, fetched by fetchmail.
    EximCpanel,
    /// sendmail without any envelope field.
    Bare,
    /// Exchange Online with its bottom `X-MS-Exchange-*` fields.
    M365,
    /// Google Workspace catch-all, one copy per Message-ID.
    Google,
    /// United Internet (IONOS, GMX) with `Envelope-To` near the bottom.
    Ionos,
    /// ISP-to-Gmail forwarding and Google auto-forward.
    Forwarded,
    /// Mailing-list mail on a Postfix catch-all.
    Lists,
}

impl Style {
    /// Every style, in table order.
    pub const ALL: [Style; 10] = [
        Style::Postfix,
        Style::PostfixOffice,
        Style::QmailPlesk,
        Style::EximCpanel,
        Style::Bare,
        Style::M365,
        Style::Google,
        Style::Ionos,
        Style::Forwarded,
        Style::Lists,
    ];

    /// Short name for tables and file names.
    pub fn name(self) -> &'static str {
        match self {
            Style::Postfix => "postfix",
            Style::PostfixOffice => "postfix-office",
            Style::QmailPlesk => "qmail-plesk",
            Style::EximCpanel => "exim-cpanel",
            Style::Bare => "bare",
            Style::M365 => "m365",
            Style::Google => "google",
            Style::Ionos => "ionos",
            Style::Forwarded => "forwarded",
            Style::Lists => "lists",
        }
    }

    /// Whether Gmail's one-copy-per-Message-ID rule applies to the box.
    fn gmail_dedupe(self) -> bool {
        matches!(self, Style::Google | Style::Forwarded)
    }

    /// Whether one delivery covers all of a transaction's recipients (else one per recipient).
    fn batches(self) -> bool {
        matches!(self, Style::EximCpanel | Style::Bare | Style::M365)
    }
}

/// One physical message of the mbox and what is true about it.
#[derive(Clone, Debug)]
pub struct Copy {
    /// Position of the logical message this copy belongs to (per mailbox, from 0).
    pub logical: usize,
    /// Users who received the logical message (any copy): a delivery outside it is wrong.
    pub truth: BTreeSet<String>,
    /// Users whose envelope address is on this copy.
    pub copy_truth: BTreeSet<String>,
    /// The situation the logical message was made for.
    pub situation: &'static str,
    /// Whether the copy carries an envelope header field written by the receiving side.
    pub has_envelope: bool,
    /// The header block, for reports of mistakes.
    pub header: String,
}

/// One generated shared box.
#[derive(Clone, Debug)]
pub struct Mailbox {
    /// The provider style.
    pub style: Style,
    /// mboxrd bytes.
    pub mbox: Vec<u8>,
    /// One entry per physical message, in mbox order.
    pub copies: Vec<Copy>,
}

/// Writes the directory CSV (`address,user`).
pub fn write_directory(path: &Path) -> std::io::Result<()> {
    let mut s = String::from("address,user\n");
    for (a, u) in DIRECTORY {
        writeln!(s, "{a},{u}").unwrap();
    }
    std::fs::write(path, s)
}

/// Generates one mailbox per style in `styles`.
pub fn generate(opts: Options, styles: &[Style]) -> Vec<Mailbox> {
    styles
        .iter()
        .map(|&style| {
            let seed = opts.seed ^ (style as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            assemble(style, seed, opts.per_style, |g, logical| {
                g.spec(style, logical)
            })
        })
        .collect()
}

/// Generates one style with explicit situations, in order (for focused tests).
pub fn generate_situations(style: Style, seed: u64, situations: &[&'static str]) -> Mailbox {
    assemble(style, seed, situations.len(), |g, logical| {
        g.build(situations[logical], logical)
    })
}

/// Builds `n` logical messages with `make` and renders them into one mailbox.
fn assemble(
    style: Style,
    seed: u64,
    n: usize,
    mut make: impl FnMut(&mut Gen, usize) -> Spec,
) -> Mailbox {
    let mut rng = Rng(seed);
    let mut g = Gen {
        rng: &mut rng,
        t: 1_546_300_800 + 3600 * 24 * 40,
        resending: false,
        list_client: None,
    };
    let mut copies = Vec::new();
    let mut mbox = Vec::new();
    for logical in 0..n {
        let spec = make(&mut g, logical);
        for (text, envfrom, copy_truth, has_envelope) in g.render(style, &spec) {
            let header = text.split("\n\n").next().unwrap_or("").to_string();
            write_mboxrd(&mut mbox, &envfrom, spec.t, &text);
            copies.push(Copy {
                logical,
                truth: spec.truth(),
                copy_truth,
                situation: spec.situation,
                has_envelope,
                header,
            });
        }
    }
    Mailbox {
        style,
        mbox,
        copies,
    }
}

/// Appends one message in mboxrd form: `From ` line, body lines matching `>*From ` get one
/// more `>`.
fn write_mboxrd(out: &mut Vec<u8>, envfrom: &str, t: i64, text: &str) {
    let sender = if envfrom.is_empty() {
        "MAILER-DAEMON"
    } else {
        envfrom
    };
    out.extend_from_slice(format!("From {sender} {}\n", asctime(t)).as_bytes());
    for line in text.split_inclusive('\n') {
        if line.trim_start_matches('>').starts_with("From ") {
            out.push(b'>');
        }
        out.extend_from_slice(line.as_bytes());
    }
    if !text.ends_with('\n') {
        out.push(b'\n');
    }
    out.push(b'\n');
}

/// splitmix64: tiny, seedable, and good enough to vary test mail.
pub struct Rng(pub u64);

impl Rng {
    /// Next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True with probability `p` percent.
    pub fn pct(&mut self, p: u32) -> bool {
        (self.next() % 100) < p as u64
    }
    /// One element of a slice.
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    /// `n` characters from `alphabet`.
    pub fn chars(&mut self, n: usize, alphabet: &[u8]) -> String {
        (0..n).map(|_| *self.pick(alphabet) as char).collect()
    }
    /// `n` upper-case hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        self.chars(n, b"0123456789ABCDEF")
    }
    /// `n` lower-case hex digits.
    pub fn lhex(&mut self, n: usize) -> String {
        self.chars(n, b"0123456789abcdef")
    }
    /// `n` base64-ish characters.
    pub fn b64(&mut self, n: usize) -> String {
        self.chars(
            n,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
        )
    }
    /// `n` alphanumeric characters.
    pub fn alnum(&mut self, n: usize) -> String {
        self.chars(
            n,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
        )
    }
}

/// An envelope recipient at the office domain, with the users it really reaches.
#[derive(Clone, Debug)]
struct Rcpt {
    addr: String,
    users: Vec<String>,
}

/// Looks an address up in the directory (the ground truth is the directory itself).
fn rcpt(addr: &str) -> Rcpt {
    let users = DIRECTORY
        .iter()
        .filter(|(a, _)| *a == addr)
        .map(|(_, u)| u.to_string())
        .collect();
    Rcpt {
        addr: addr.to_string(),
        users,
    }
}

/// A recipient whose users are stated (BATV, +tag, SRS).
fn rcpt_as(addr: String, users: &[&str]) -> Rcpt {
    Rcpt {
        addr,
        users: users.iter().map(|u| u.to_string()).collect(),
    }
}

/// Who sends and how the sender's own hops look.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Sender {
    Gmail,
    Outlook,
    Corporate,
    Spam,
    Bounce,
}

/// One SMTP transaction into the provider: its local recipients and whether it came
/// through a list server.
#[derive(Clone, Debug)]
struct Txn {
    rcpts: Vec<Rcpt>,
    via_list: bool,
    /// Recipients of the whole transaction including other domains (for `for` clauses).
    total_rcpts: usize,
}

/// A logical message before rendering.
struct Spec {
    situation: &'static str,
    t: i64,
    sender: Sender,
    from: String,
    envfrom: String,
    to: Vec<String>,
    cc: Vec<String>,
    subject: String,
    msgid: String,
    txns: Vec<Txn>,
    list: Option<(&'static str, &'static str)>,
    /// Redirect: Resent-From and the old recipients whose old envelope sits below.
    resent: Option<(String, Vec<Rcpt>, i64)>,
    forged_for: Option<&'static str>,
    extra: Vec<String>,
    body: String,
    /// The sender's outbound host number, so its own hop and the provider's agree.
    host_n: usize,
}

impl Spec {
    fn truth(&self) -> BTreeSet<String> {
        self.txns
            .iter()
            .flat_map(|t| t.rcpts.iter().flat_map(|r| r.users.clone()))
            .collect()
    }
}

const USERS_ADDR: &[&str] = &[
    "alice@example.com",
    "bob@example.com",
    "carol@example.com",
    "dave@example.com",
    "erin@example.com",
    "frank@example.com",
];
const ALIASES: &[&str] = &["a.smith@example.com", "info@example.com", "ceo@example.com"];
const GUESSED: &[&str] = &[
    "mail@example.com",
    "admin@example.com",
    "webmaster@example.com",
    "contact@example.com",
    "jobs@example.com",
];
const DEPARTED: &str = "mallory@example.com";
const LISTS: &[(&str, &str)] = &[
    ("devel@lists.example.org", "devel.lists.example.org"),
    ("announce@lists.example.org", "announce.lists.example.org"),
    ("users@lists.open.example", "users.lists.open.example"),
];
const EXTERNAL: &[(&str, &str, Sender)] = &[
    ("Peter Novak", "peter.novak@gmail.com", Sender::Gmail),
    ("Lena Fischer", "lena.fischer@gmail.com", Sender::Gmail),
    (
        "Tom Reyes",
        "t.reyes@partner-firm.example",
        Sender::Corporate,
    ),
    (
        "Accounts",
        "accounts@supplier.example.net",
        Sender::Corporate,
    ),
    ("Sara Lind", "sara.lind@client.example.org", Sender::Outlook),
    ("Jon Bauer", "jbauer@consult.example.io", Sender::Outlook),
];
const SUBJECTS: &[&str] = &[
    "Invoice 2231",
    "Re: meeting on Thursday",
    "Quarterly figures",
    "Fwd: contract draft",
    "Delivery schedule",
    "Re: Re: site visit",
    "Question about order 5512",
    "Holiday rota",
];
const SPAM_SUBJECTS: &[&str] = &[
    "Your account will be suspended",
    "Cheap meds, no prescription",
    "Invoice overdue - open attachment",
    "You have won",
    "Business proposal",
];

fn display(addr: &str) -> String {
    let local = addr.split('@').next().unwrap_or(addr);
    let name: String = local
        .split(['.', '+'])
        .next()
        .unwrap_or(local)
        .chars()
        .enumerate()
        .map(|(i, c)| if i == 0 { c.to_ascii_uppercase() } else { c })
        .collect();
    format!("{name} <{addr}>")
}

struct Gen<'a> {
    rng: &'a mut Rng,
    t: i64,
    /// Set while rendering a redirect's new delivery: it comes from the office's own
    /// client through the provider, not from the original sender.
    resending: bool,
    /// Set while rendering a list copy's delivery: the list server is the SMTP client
    /// and its VERP address the envelope sender.
    list_client: Option<(String, String)>,
}

impl Gen<'_> {
    /// Chooses a situation for a style, with weights that make the traps common enough
    /// to measure yet leave ordinary mail the majority.
    fn spec(&mut self, style: Style, logical: usize) -> Spec {
        let r = self.rng.below(100);
        let sit = if style == Style::Lists {
            match r {
                // judy, subscribed to most lists, is on well over half the envelopes.
                0..=29 => "list",
                30..=54 => "list-judy",
                55..=64 => "list-crosspost",
                65..=69 => "plain",
                70..=74 => "busy-judy",
                75..=79 => "bcc",
                80..=84 => "plus-tag",
                85..=89 => "spam-guessed",
                90..=94 => "batv",
                _ => "resent",
            }
        } else {
            match r {
                0..=21 => "plain",
                22..=28 => "alias",
                29..=33 => "distribution-list",
                34..=41 => "bcc",
                42..=59 => "busy-judy",
                60..=64 => "list",
                65..=69 => "plus-tag",
                70..=75 => "spam-guessed",
                76..=80 => "forged-for",
                81..=84 => "departed",
                85..=88 => "batv",
                89..=91 => "srs-bounce",
                92..=95 => "resent",
                _ => "office",
            }
        };
        self.build(sit, logical)
    }

    fn external(&mut self) -> (String, String, Sender) {
        let (n, a, s) = *self.rng.pick(EXTERNAL);
        (format!("{n} <{a}>"), a.to_string(), s)
    }

    /// Builds the logical message for one situation.
    fn build(&mut self, sit: &'static str, logical: usize) -> Spec {
        self.t += 600 + self.rng.below(7200) as i64;
        let t = self.t;
        let (from, envfrom, sender) = self.external();
        let mut spec = Spec {
            situation: sit,
            t,
            sender,
            from,
            envfrom,
            to: Vec::new(),
            cc: Vec::new(),
            subject: self.rng.pick(SUBJECTS).to_string(),
            msgid: format!(
                "<{}.{}@{}>",
                self.rng.lhex(16),
                logical,
                "mail.sender.example"
            ),
            txns: Vec::new(),
            list: None,
            resent: None,
            forged_for: None,
            extra: Vec::new(),
            body: self.body(),
            host_n: 30 + self.rng.below(40),
        };
        let one = |g: &mut Self| g.rng.pick(USERS_ADDR).to_string();
        let txn = |rcpts: Vec<Rcpt>, extra: usize| Txn {
            total_rcpts: rcpts.len() + extra,
            rcpts,
            via_list: false,
        };
        match sit {
            "plain" => {
                let a = one(self);
                let mut rcpts = vec![rcpt(&a)];
                spec.to.push(display(&a));
                if self.rng.pct(35) {
                    let b = one(self);
                    if b != a {
                        spec.cc.push(display(&b));
                        rcpts.push(rcpt(&b));
                    }
                }
                let ext = if self.rng.pct(20) {
                    spec.cc.push("Max Roth <max.roth@other.example>".into());
                    1
                } else {
                    0
                };
                spec.txns.push(txn(rcpts, ext));
            }
            "alias" => {
                let a = *self.rng.pick(ALIASES);
                spec.to.push(display(a));
                spec.txns.push(txn(vec![rcpt(a)], 0));
            }
            "distribution-list" => {
                spec.to.push("Sales <sales@example.com>".into());
                spec.txns.push(txn(vec![rcpt("sales@example.com")], 0));
            }
            "bcc" => {
                // To names a colleague or an outsider; the Bcc recipient shows only in
                // the envelope.
                let hidden = one(self);
                let mut rcpts = vec![rcpt(&hidden)];
                if self.rng.pct(50) {
                    let a = one(self);
                    if a != hidden {
                        spec.to.push(display(&a));
                        rcpts.insert(0, rcpt(&a));
                    } else {
                        spec.to.push("Max Roth <max.roth@other.example>".into());
                    }
                } else {
                    spec.to.push("Max Roth <max.roth@other.example>".into());
                }
                spec.txns.push(txn(rcpts, 1));
            }
            "busy-judy" => {
                // judy is Bcc'd on much of the office's mail (she files it), or subscribed.
                if self.rng.pct(50) {
                    let a = one(self);
                    spec.to.push(display(&a));
                    spec.txns
                        .push(txn(vec![rcpt(&a), rcpt("judy@example.com")], 0));
                } else {
                    spec.to.push("undisclosed-recipients:;".into());
                    spec.txns.push(txn(vec![rcpt("judy@example.com")], 0));
                }
            }
            "office" => {
                spec.to.push("Example Office <office@example.com>".into());
                spec.txns.push(txn(vec![rcpt("office@example.com")], 0));
            }
            "list" | "list-crosspost" | "list-judy" => {
                let (laddr, lid) = *self.rng.pick(LISTS);
                spec.list = Some((laddr, lid));
                spec.to.push(laddr.to_string());
                let subs: &[&str] = &[
                    "judy@example.com",
                    "lists+a@example.com",
                    "lists+b@example.com",
                ];
                let mut rcpts = vec![rcpt(if self.rng.pct(60) {
                    subs[0]
                } else {
                    subs[1 + self.rng.below(2)]
                })];
                if sit == "list-judy" {
                    // Only the busy subscriber: the list copy names nobody in To/Cc.
                    rcpts = vec![rcpt(subs[0])];
                } else if self.rng.pct(25) {
                    let other = *self.rng.pick(subs);
                    if other != rcpts[0].addr {
                        rcpts.push(rcpt(other));
                    }
                }
                spec.subject = format!("[{}] {}", laddr.split('@').next().unwrap(), spec.subject);
                spec.txns.push(Txn {
                    total_rcpts: rcpts.len(),
                    rcpts,
                    via_list: true,
                });
                if sit == "list-crosspost" {
                    // The author also Cc'd a colleague directly: her copy comes straight.
                    let c = one(self);
                    spec.cc.push(display(&c));
                    spec.txns.push(txn(vec![rcpt(&c)], 0));
                }
            }
            "plus-tag" | "plus-tag-a" | "plus-tag-b" => {
                let tags = [
                    ("lists+a@example.com", "frank"),
                    ("lists+b@example.com", "erin"),
                    ("alice+shop@example.com", "alice"),
                    ("bob+invoices@example.com", "bob"),
                ];
                let (addr, user) = match sit {
                    "plus-tag-a" => tags[0],
                    "plus-tag-b" => tags[1],
                    _ => *self.rng.pick(&tags),
                };
                spec.to.push(addr.to_string());
                spec.sender = Sender::Corporate;
                spec.from = "Shop <noreply@shop.example.net>".into();
                spec.envfrom = format!("bounce-{}@shop.example.net", self.rng.lhex(8));
                spec.txns
                    .push(txn(vec![rcpt_as(addr.to_string(), &[user])], 0));
            }
            "spam-guessed" => {
                // Per-recipient copies to guessed addresses while To names a colleague.
                self.spam(&mut spec);
                let colleague = one(self);
                spec.to = vec![display(&colleague)];
                let n = 1 + self.rng.below(3);
                let mut rcpts: Vec<Rcpt> = Vec::new();
                for _ in 0..n {
                    let g = *self.rng.pick(GUESSED);
                    if rcpts.iter().all(|r| r.addr != g) {
                        rcpts.push(rcpt(g));
                    }
                }
                spec.txns.push(txn(rcpts, 0));
            }
            "forged-for" => {
                self.spam(&mut spec);
                spec.forged_for = Some("ceo@example.com");
                spec.to = vec!["\"CEO\" <ceo@example.com>".into()];
                let r = if self.rng.pct(60) {
                    rcpt(GUESSED[self.rng.below(GUESSED.len())])
                } else {
                    rcpt(DEPARTED)
                };
                spec.txns.push(txn(vec![r], 0));
            }
            "departed" => {
                spec.to.push(display(DEPARTED));
                spec.txns.push(txn(vec![rcpt(DEPARTED)], 0));
            }
            "batv" => {
                // An auto-reply or bounce to judy's BATV-signed return path.
                spec.sender = Sender::Bounce;
                spec.envfrom = String::new();
                spec.from = "Mail Delivery System <MAILER-DAEMON@mx.partner-firm.example>".into();
                let addr = format!(
                    "prvs={}{}={}",
                    self.rng.below(10),
                    self.rng.lhex(8),
                    "judy@example.com"
                );
                spec.to.push(addr.clone());
                spec.subject = "Undelivered Mail Returned to Sender".into();
                spec.extra.push("Auto-Submitted: auto-replied".into());
                spec.txns.push(txn(vec![rcpt_as(addr, &["judy"])], 0));
            }
            "srs-bounce" => {
                // A bounce to an SRS address the domain once minted while forwarding:
                // it decodes to carol@partner.example, nobody here.
                spec.sender = Sender::Bounce;
                spec.envfrom = String::new();
                spec.from = "Mail Delivery System <MAILER-DAEMON@mx.far.example>".into();
                let who = *self.rng.pick(&["carol", "bob", "dave"]);
                let addr = format!(
                    "SRS0={}={}=partner.example={who}@example.com",
                    self.rng.alnum(4),
                    self.rng.alnum(2)
                );
                spec.to.push(addr.clone());
                spec.subject = "Undelivered Mail Returned to Sender".into();
                spec.txns.push(txn(vec![rcpt_as(addr, &[])], 0));
            }
            "resent" => {
                // bob (say) redirects a message he got to carol: new envelope on top,
                // Resent-* block, old envelope (naming bob) below.
                let old = one(self);
                let mut new = one(self);
                while new == old {
                    new = one(self);
                }
                spec.to.push(display(&old));
                spec.resent = Some((
                    display(&old),
                    vec![rcpt(&old)],
                    t - 86_400 - self.rng.below(86_400) as i64,
                ));
                spec.txns.push(txn(vec![rcpt(&new)], 0));
            }
            other => panic!("unknown situation {other}"),
        }
        spec
    }

    fn spam(&mut self, spec: &mut Spec) {
        spec.sender = Sender::Spam;
        let dom = self.rng.pick(&[
            "cheap-meds.example.biz",
            "win-now.example.top",
            "bizoffer.example.ru",
        ]);
        spec.envfrom = format!("{}@{dom}", self.rng.alnum(7).to_lowercase());
        spec.from = format!("\"Customer Service\" <{}>", spec.envfrom);
        spec.subject = self.rng.pick(SPAM_SUBJECTS).to_string();
        spec.extra
            .push("X-Mailer: Microsoft Outlook Express 6.00.2600.0000".into());
    }

    fn body(&mut self) -> String {
        let mut b = String::from("Hello,\n\nplease see below.\n");
        if self.rng.pct(10) {
            b.push_str("From the minutes of last week:\n>From our side all is fine.\n");
        }
        if self.rng.pct(5) {
            b.push_str("\nFrom now on, use the new address.\n");
        }
        b.push_str("\nRegards\n");
        b
    }

    // ---- rendering ----

    /// Renders a logical message into its physical copies for one style:
    /// `(text, envelope sender, copy truth, has envelope field)`.
    fn render(
        &mut self,
        style: Style,
        spec: &Spec,
    ) -> Vec<(String, String, BTreeSet<String>, bool)> {
        // Which deliveries reach the box: one per recipient, one per transaction, or (Gmail)
        // only the first copy of the Message-ID.
        let mut deliveries: Vec<(Txn, Vec<Rcpt>)> = Vec::new();
        for txn in &spec.txns {
            if txn.via_list {
                // A list server sends each subscriber its own VERP-signed transaction.
                for r in &txn.rcpts {
                    let one = Txn {
                        rcpts: vec![r.clone()],
                        via_list: true,
                        total_rcpts: 1,
                    };
                    deliveries.push((one, vec![r.clone()]));
                }
            } else if style.batches() {
                deliveries.push((txn.clone(), txn.rcpts.clone()));
            } else {
                for r in &txn.rcpts {
                    deliveries.push((txn.clone(), vec![r.clone()]));
                }
            }
        }
        if style.gmail_dedupe() {
            deliveries.truncate(1);
        }
        let mut out = Vec::new();
        let mut t = spec.t;
        for (txn, rcpts) in deliveries {
            t += 1 + self.rng.below(20) as i64;
            let copy_truth: BTreeSet<String> = rcpts.iter().flat_map(|r| r.users.clone()).collect();
            let envfrom = match (txn.via_list, spec.list) {
                (true, Some((laddr, _))) => {
                    let (local, host) = laddr.split_once('@').unwrap();
                    let (rl, rd) = rcpts[0].addr.split_once('@').unwrap();
                    let verp = format!(
                        "{local}+bounces-{}-{rl}={rd}@{host}",
                        1000 + self.rng.below(9000)
                    );
                    self.list_client = Some((host.to_string(), verp.clone()));
                    verp
                }
                _ => match &spec.resent {
                    Some((_, old, _)) => old[0].addr.clone(),
                    None => spec.envfrom.clone(),
                },
            };
            let (text, has_env) = self.render_one(style, spec, &txn, &rcpts, t);
            self.list_client = None;
            out.push((text, envfrom, copy_truth, has_env));
        }
        out
    }

    fn render_one(
        &mut self,
        style: Style,
        spec: &Spec,
        txn: &Txn,
        rcpts: &[Rcpt],
        t: i64,
    ) -> (String, bool) {
        let for_rcpt =
            (txn.rcpts.len() == 1 && txn.total_rcpts == 1).then(|| txn.rcpts[0].addr.clone());
        // Sender side first (it is lowest), then the provider's delivery around it.
        let mut middle = String::new();
        if let Some((old_from, old_rcpts, old_t)) = &spec.resent {
            // The Resent block the redirecting client added, then the old delivery.
            writeln!(middle, "Resent-From: {old_from}").unwrap();
            writeln!(middle, "Resent-Date: {}", rfc2822(t - 30, 60)).unwrap();
            writeln!(
                middle,
                "Resent-Message-ID: <{}@example.com>",
                self.rng.lhex(20)
            )
            .unwrap();
            let to: Vec<String> = txn.rcpts.iter().map(|r| display(&r.addr)).collect();
            writeln!(middle, "Resent-To: {}", to.join(", ")).unwrap();
            let (top, bottom) = self.delivery(
                style,
                spec,
                old_rcpts,
                old_rcpts.first().map(|r| r.addr.clone()),
                *old_t,
            );
            middle.push_str(&top);
            middle.push_str(&self.sender_hops(
                spec,
                old_rcpts.first().map(|r| r.addr.as_str()),
                *old_t - 5,
            ));
            let (text_old_bottom, _) = (bottom, ());
            let content = self.content(spec);
            self.resending = true;
            let (top, bottom) = self.delivery(style, spec, rcpts, for_rcpt.clone(), t);
            self.resending = false;
            let mut s = top;
            s.push_str(&middle);
            s.push_str(&content);
            if style == Style::Ionos {
                // United Internet appends below the content; the old one stays above it.
                s.push_str(&text_old_bottom);
            }
            s.push_str(&bottom);
            s.push('\n');
            s.push_str(&spec.body);
            return (s, self.has_envelope(style));
        }
        if txn.via_list {
            let (laddr, _) = spec.list.unwrap();
            middle.push_str(&self.list_hops(laddr, t - 20));
            middle.push_str(&self.sender_hops(spec, Some(laddr), t - 25));
        } else {
            middle.push_str(&self.sender_hops(spec, for_rcpt.as_deref(), t - 3));
        }
        let (top, bottom) = self.delivery(style, spec, rcpts, for_rcpt, t);
        let mut s = top;
        s.push_str(&middle);
        s.push_str(&self.content(spec));
        if txn.via_list {
            let (laddr, lid) = spec.list.unwrap();
            writeln!(s, "List-Id: <{lid}>").unwrap();
            writeln!(s, "List-Post: <mailto:{laddr}>").unwrap();
            writeln!(
                s,
                "List-Unsubscribe: <mailto:{}>",
                laddr.replace('@', "+unsubscribe@")
            )
            .unwrap();
            writeln!(s, "Precedence: list").unwrap();
        }
        s.push_str(&bottom);
        s.push('\n');
        s.push_str(&spec.body);
        (s, self.has_envelope(style))
    }

    fn has_envelope(&self, style: Style) -> bool {
        style != Style::Bare
    }

    /// Content fields as the sender's client wrote them.
    fn content(&mut self, spec: &Spec) -> String {
        let mut s = String::new();
        writeln!(
            s,
            "Date: {}",
            rfc2822(
                // A redirected message keeps the date it was first written.
                spec.resent.as_ref().map_or(spec.t, |r| r.2) - 60,
                if spec.sender == Sender::Gmail {
                    -480
                } else {
                    60
                }
            )
        )
        .unwrap();
        writeln!(s, "From: {}", spec.from).unwrap();
        if !spec.to.is_empty() {
            writeln!(s, "To: {}", spec.to.join(", ")).unwrap();
        }
        if !spec.cc.is_empty() {
            writeln!(s, "Cc: {}", spec.cc.join(", ")).unwrap();
        }
        writeln!(s, "Subject: {}", spec.subject).unwrap();
        writeln!(s, "Message-ID: {}", spec.msgid).unwrap();
        for e in &spec.extra {
            writeln!(s, "{e}").unwrap();
        }
        s.push_str("MIME-Version: 1.0\nContent-Type: text/plain; charset=\"utf-8\"\nContent-Transfer-Encoding: 7bit\n");
        s
    }

    /// The sender side's hops (lowest part of the header), `for` only when the sender's
    /// transaction had one recipient.
    fn sender_hops(&mut self, spec: &Spec, for_rcpt: Option<&str>, t: i64) -> String {
        let mut s = String::new();
        let for_clause = |a: Option<&str>| {
            a.map(|a| format!("\n        for <{a}>"))
                .unwrap_or_default()
        };
        match spec.sender {
            Sender::Gmail => {
                let id = format!(
                    "{}so{}wrx.{}",
                    self.rng.alnum(4).to_lowercase(),
                    self.rng.below(9_999_999),
                    self.rng.below(9)
                );
                writeln!(
                    s,
                    "Received: by mail-wr1-f{n}.google.com with SMTP id {id}{f};\n        {d}",
                    n = spec.host_n,
                    f = for_clause(for_rcpt),
                    d = rfc2822(t, -480)
                )
                .unwrap();
                writeln!(s, "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\n        d=gmail.com; s=20230601; t={t};\n        h=to:subject:message-id:date:from:mime-version:from:to:cc:subject:date;\n        bh={}=;\n        b={}", self.rng.b64(43), self.rng.b64(60)).unwrap();
            }
            Sender::Outlook => {
                let host = format!(
                    "AS8PR0{}MB{}.eurprd0{}.prod.outlook.com",
                    self.rng.below(9),
                    1000 + self.rng.below(8999),
                    self.rng.below(9)
                );
                writeln!(
                    s,
                    "Received: from {host}\n ([fe80::{}:{}]) by {host}\n ([fe80::{}:{}%5]) with mapi id 15.20.7452.049; {}",
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    rfc2822(t, 0)
                )
                .unwrap();
                writeln!(
                    s,
                    "Thread-Topic: {}\nThread-Index: {}==",
                    spec.subject,
                    self.rng.b64(22)
                )
                .unwrap();
            }
            Sender::Corporate => {
                writeln!(
                    s,
                    "Received: from ws-{ws}.partner-firm.example (ws-{ws}.partner-firm.example [10.1.{a}.{b}])\n\tby mail.partner-firm.example (Postfix) with ESMTPSA id {id}{f};\n\t{d}",
                    ws = self.rng.below(90),
                    a = self.rng.below(250),
                    b = self.rng.below(250),
                    id = self.rng.hex(10),
                    f = for_rcpt.map(|a| format!("\n\tfor <{a}>")).unwrap_or_default(),
                    d = rfc2822(t, 60)
                )
                .unwrap();
            }
            Sender::Spam => {
                // Spam forges hops below the provider's; a forged `for` names someone.
                if let Some(forged) = spec.forged_for {
                    writeln!(
                        s,
                        "Received: from mx.example.com (mx.example.com [192.0.2.{}])\n\tby mail.example.com (Postfix) with ESMTP id {}\n\tfor <{forged}>; {}",
                        self.rng.below(250),
                        self.rng.hex(10),
                        rfc2822(t - 2, 0)
                    )
                    .unwrap();
                }
                writeln!(
                    s,
                    "Received: from User ([{}.{}.{}.{}]) by {} with SMTP id {}; {}",
                    100 + self.rng.below(100),
                    self.rng.below(250),
                    self.rng.below(250),
                    self.rng.below(250),
                    self.rng.pick(&["smtp.bulk-sender.example", "localhost"]),
                    self.rng.lhex(12),
                    rfc2822(t - 40, -300)
                )
                .unwrap();
            }
            Sender::Bounce => {
                writeln!(
                    s,
                    "Received: by mx.partner-firm.example (Postfix)\n\tid {}; {}",
                    self.rng.hex(10),
                    rfc2822(t, 60)
                )
                .unwrap();
            }
        }
        s
    }

    /// The list server's hops: its outbound relay, and its own delivery of the post to
    /// the list address with its own `X-Original-To`.
    fn list_hops(&mut self, laddr: &str, t: i64) -> String {
        let lhost = laddr.split('@').nth(1).unwrap();
        format!(
            "Received: from localhost.localdomain (localhost.localdomain [127.0.0.1])\n\tby {lhost} (Postfix) with ESMTP id {id1};\n\t{d1}\nX-Original-To: {laddr}\nDelivered-To: {laddr}\nReceived: from mail-wr1-f{n}.google.com (mail-wr1-f{n}.google.com [209.85.221.{n}])\n\t(using TLSv1.2 with cipher ECDHE-RSA-AES128-GCM-SHA256 (128/128 bits))\n\t(No client certificate requested)\n\tby {lhost} (Postfix) with ESMTPS id {id2}\n\tfor <{laddr}>; {d2}\n",
            id1 = self.rng.hex(11),
            d1 = rfc2822(t, 0),
            n = 30 + self.rng.below(40),
            id2 = self.rng.hex(11),
            d2 = rfc2822(t - 3, 0),
        )
    }

    fn client(&mut self, spec: &Spec) -> (String, String, String) {
        match spec.sender {
            Sender::Gmail => {
                let n = spec.host_n;
                (
                    format!("mail-wr1-f{n}.google.com"),
                    format!("mail-wr1-f{n}.google.com"),
                    format!("209.85.221.{n}"),
                )
            }
            Sender::Outlook => {
                let h = format!(
                    "EUR0{}-AM{}-obe.outbound.protection.outlook.com",
                    1 + self.rng.below(5),
                    5 + self.rng.below(4)
                );
                (
                    h.clone(),
                    h,
                    format!("40.107.{}.{}", self.rng.below(250), self.rng.below(250)),
                )
            }
            Sender::Corporate | Sender::Bounce => (
                "mail.partner-firm.example".into(),
                "mail.partner-firm.example".into(),
                format!("198.51.100.{}", self.rng.below(250)),
            ),
            Sender::Spam => {
                let ip = format!(
                    "{}.{}.{}.{}",
                    100 + self.rng.below(100),
                    self.rng.below(250),
                    self.rng.below(250),
                    self.rng.below(250)
                );
                (format!("[{ip}]"), "unknown".into(), ip)
            }
        }
    }

    /// The provider's delivery fields: `(top, bottom)` around sender hops and content.
    /// `rcpts` are this copy's envelope recipients; `for_rcpt` is set when the provider's
    /// SMTP transaction had exactly one recipient.
    fn delivery(
        &mut self,
        style: Style,
        spec: &Spec,
        rcpts: &[Rcpt],
        for_rcpt: Option<String>,
        t: i64,
    ) -> (String, String) {
        let (helo, rdns, ip) = if self.resending {
            let ip = format!("84.12.{}.{}", self.rng.below(250), self.rng.below(250));
            (
                "officepc.local".to_string(),
                format!("dsl-{}.dyn.isp-net.example", ip.replace('.', "-")),
                ip,
            )
        } else if let Some((host, _)) = &self.list_client {
            (host.clone(), host.clone(), "203.0.113.80".to_string())
        } else {
            self.client(spec)
        };
        let envfrom = match (&self.list_client, &spec.resent) {
            (Some((_, verp)), _) => verp.clone(),
            // A redirect (mutt's bounce, Thunderbird's redirect) is sent with the
            // redirecting user's own envelope sender.
            (None, Some((_, old, _))) if self.resending => old[0].addr.clone(),
            _ => spec.envfrom.clone(),
        };
        let rp = format!("Return-Path: <{envfrom}>\n");
        let mut top = String::new();
        let mut bottom = String::new();
        let first = rcpts.first().map(|r| r.addr.clone()).unwrap_or_default();
        match style {
            Style::Postfix | Style::Lists => {
                top.push_str(&rp);
                writeln!(top, "X-Original-To: {first}").unwrap();
                writeln!(top, "Delivered-To: examplecom@mailbox.isp-mail.net").unwrap();
                let f = for_rcpt
                    .map(|a| format!("\n\tfor <{a}>"))
                    .unwrap_or_default();
                writeln!(
                    top,
                    "Received: from {helo} ({rdns} [{ip}])\n\tby mailbox.isp-mail.net (Postfix) with ESMTPS id {}{f};\n\t{} (CET)",
                    self.rng.hex(10),
                    rfc2822(t, 60)
                )
                .unwrap();
            }
            Style::PostfixOffice => {
                top.push_str(&rp);
                writeln!(top, "Delivered-To: office@example.com").unwrap();
                writeln!(
                    top,
                    "Received: from mail.hostsrv.net\n\tby mail.hostsrv.net with LMTP\n\tid {}\n\t(envelope-from <{}>)\n\tfor <office@example.com>; {}",
                    self.rng.b64(22),
                    envfrom,
                    rfc2822(t + 1, 60)
                )
                .unwrap();
                writeln!(top, "X-Original-To: {first}").unwrap();
                let f = for_rcpt
                    .map(|a| format!("\n\tfor <{a}>"))
                    .unwrap_or_default();
                writeln!(
                    top,
                    "Received: from {helo} ({rdns} [{ip}])\n\tby mail.hostsrv.net (Postfix) with ESMTPS id {}{f};\n\t{} (CET)",
                    self.rng.hex(10),
                    rfc2822(t, 60)
                )
                .unwrap();
            }
            Style::QmailPlesk => {
                top.push_str(&rp);
                let pid = 10_000 + self.rng.below(50_000);
                if self.rng.pct(45) {
                    // .qmail-default forwards the unknown address on to the real box.
                    writeln!(top, "Delivered-To: example.com-mailbox@example.com").unwrap();
                    writeln!(
                        top,
                        "Received: (qmail {} invoked by alias); {}",
                        pid + 3,
                        qdate(t + 1)
                    )
                    .unwrap();
                }
                writeln!(top, "Delivered-To: example.com-{first}").unwrap();
                writeln!(
                    top,
                    "Received: (qmail {pid} invoked from network); {}",
                    qdate(t)
                )
                .unwrap();
                writeln!(
                    top,
                    "Received: from {rdns} (HELO {helo}) ({ip})\n  by plesk01.hoster.example with ESMTPS (ECDHE-RSA-AES256-GCM-SHA384 encrypted); {}",
                    qdate(t)
                )
                .unwrap();
            }
            Style::EximCpanel => {
                writeln!(
                    top,
                    "Received: from server204.web-hosting.example [198.54.114.21]\n\tby officepc.local with POP3 (fetchmail-6.4.37)\n\tfor <office@localhost> (single-drop); {} (CET)",
                    rfc2822(t + 3600, 60)
                )
                .unwrap();
                writeln!(top, "Return-path: <{}>", envfrom).unwrap();
                let all: Vec<&str> = rcpts.iter().map(|r| r.addr.as_str()).collect();
                writeln!(top, "Envelope-to: {}", all.join(", ")).unwrap();
                writeln!(top, "Delivery-date: {}", rfc2822(t, 60)).unwrap();
                let f = for_rcpt.map(|a| format!("\n\tfor {a}")).unwrap_or_default();
                let id = format!(
                    "{}-{}-{}",
                    self.rng.alnum(6),
                    self.rng.alnum(6),
                    self.rng.alnum(2)
                );
                writeln!(
                    top,
                    "Received: from {rdns} ([{ip}]:{port})\n\tby server204.web-hosting.example with esmtps  (TLS1.3) tls TLS_AES_256_GCM_SHA384\n\t(Exim 4.96.2)\n\t(envelope-from <{ef}>)\n\tid {id}{f};\n\t{d}",
                    port = 30_000 + self.rng.below(30_000),
                    ef = envfrom,
                    d = rfc2822(t, 60)
                )
                .unwrap();
            }
            Style::Bare => {
                top.push_str(&rp);
                let f = for_rcpt
                    .map(|a| format!("\n\tfor <{a}>"))
                    .unwrap_or_default();
                let id = format!(
                    "0{}{}",
                    self.rng.alnum(6),
                    100_000 + self.rng.below(899_999)
                );
                writeln!(
                    top,
                    "Received: from {helo} ({rdns} [{ip}])\n\tby mx.isp-net.example (8.15.2/8.15.2) with ESMTP id {id}{f};\n\t{}",
                    rfc2822(t, 60)
                )
                .unwrap();
            }
            Style::M365 => {
                let mbx = format!(
                    "AM9PR0{}MB{}",
                    1 + self.rng.below(8),
                    1000 + self.rng.below(8999)
                );
                let fe = format!("AM3PEPF0000{}", self.rng.hex(4));
                let ca = format!("AS9PR06CA0{}", self.rng.below(999));
                writeln!(top, "Received: from {mbx}.eurprd01.prod.exchangelabs.com (2603:10a6:20b:3d1::12)\n by DB9PR01MB{}.eurprd01.prod.exchangelabs.com with HTTPS; {}", 1000 + self.rng.below(8999), rfc2822(t + 1, 0)).unwrap();
                writeln!(top, "Received: from {ca}.eurprd06.prod.outlook.com (2603:10a6:20b:45b::9)\n by {mbx}.eurprd01.prod.exchangelabs.com (2603:10a6:20b:3d1::12) with\n Microsoft SMTP Server (version=TLS1_2,\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7362.31; {}", rfc2822(t, 0)).unwrap();
                writeln!(top, "Received: from {fe}.eurprd04.prod.outlook.com\n (2603:10a6:20b:45b:cafe::6b) by {ca}.outlook.office365.com\n (2603:10a6:20b:45b::9) with Microsoft SMTP Server (version=TLS1_2,\n cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id 15.20.7362.31 via Frontend\n Transport; {}", rfc2822(t, 0)).unwrap();
                writeln!(top, "Authentication-Results: spf=pass (sender IP is {ip})\n smtp.mailfrom={}; dkim=pass (signature was verified)\n header.d={};dmarc=pass action=none header.from={};", dom(&envfrom), dom(&envfrom), dom(&envfrom)).unwrap();
                writeln!(top, "Received-SPF: Pass (protection.outlook.com: domain of {} designates\n {ip} as permitted sender) receiver=protection.outlook.com;\n client-ip={ip}; helo={rdns}; pr=C", dom(&envfrom)).unwrap();
                writeln!(top, "Received: from {rdns} ({ip}) by\n {fe}.mail.protection.outlook.com (10.167.16.117) with Microsoft\n SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384) id\n 15.20.7362.31 via Frontend Transport; {}", rfc2822(t - 1, 0)).unwrap();
                let nmid = uuid(self.rng);
                writeln!(bottom, "Return-Path: {}", envfrom).unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-ExpirationStartTime: {}",
                    msdate(t)
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-ExpirationStartTimeReason: OriginalSubmit"
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-ExpirationInterval: 1:00:00:00.0000000"
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-Network-Message-Id: {nmid}"
                )
                .unwrap();
                writeln!(bottom, "X-EOPAttributedMessage: 0").unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-MessageDirectionality: Incoming"
                )
                .unwrap();
                writeln!(bottom, "X-MS-PublicTrafficType: Email").unwrap();
                writeln!(bottom, "X-MS-TrafficTypeDiagnostic: {fe}:EE_|{mbx}:EE_").unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-AuthSource: {fe}.eurprd04.prod.outlook.com"
                )
                .unwrap();
                writeln!(bottom, "X-MS-Exchange-Organization-AuthAs: Anonymous").unwrap();
                writeln!(bottom, "X-MS-Office365-Filtering-Correlation-Id: {nmid}").unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-SCL: {}",
                    if spec.sender == Sender::Spam { 5 } else { 1 }
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-CrossTenant-OriginalArrivalTime: {}",
                    msdate(t - 1)
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-CrossTenant-Network-Message-Id: {nmid}"
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-CrossTenant-Id: 84df9e7f-e9f6-40af-b435-{}",
                    self.rng.lhex(12)
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-CrossTenant-AuthSource: {fe}.eurprd04.prod.outlook.com"
                )
                .unwrap();
                writeln!(bottom, "X-MS-Exchange-CrossTenant-AuthAs: Anonymous").unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-CrossTenant-FromEntityHeader: Internet"
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Transport-CrossTenantHeadersStamped: {mbx}"
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Transport-EndToEndLatency: 00:00:0{}.{}",
                    self.rng.below(9),
                    1_000_000 + self.rng.below(8_999_999)
                )
                .unwrap();
                writeln!(
                    bottom,
                    "X-MS-Exchange-Processed-By-BccFoldering: 15.20.7362.000"
                )
                .unwrap();
                let list: Vec<&str> = rcpts.iter().map(|r| r.addr.as_str()).collect();
                let plain = list.join(";");
                let field = match self.rng.below(3) {
                    0 => format!(
                        "=?us-ascii?Q?{}?=",
                        plain.replace('@', "=40").replace(';', "=3B")
                    ),
                    1 if list.len() > 1 => format!("=?us-ascii?Q?{}?=", list.join(";")),
                    _ => plain,
                };
                writeln!(
                    bottom,
                    "X-MS-Exchange-Organization-OriginalEnvelopeRecipients: {field}"
                )
                .unwrap();
                writeln!(bottom, "X-Microsoft-Antispam-Mailbox-Delivery:\n\tucf:0;jmr:0;auth:0;dest:I;ENG:(910001)(944506478)(944626604);").unwrap();
            }
            Style::Google => {
                let lt = t + 1;
                writeln!(top, "Delivered-To: mailroom@example.com").unwrap();
                writeln!(
                    top,
                    "Received: by 2002:a05:6a10:{}:b0:{}:{}:{} with SMTP id {}csp{};\n        {}",
                    self.rng.lhex(4),
                    self.rng.lhex(3),
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    self.rng.alnum(3).to_lowercase(),
                    100_000 + self.rng.below(899_999),
                    rfc2822(lt, -480)
                )
                .unwrap();
                if self.rng.pct(50) {
                    writeln!(top, "X-Gm-Original-To: {first}").unwrap();
                }
                writeln!(
                    top,
                    "X-Received: by 2002:a17:906:{}:b0:a45:{}:{} with SMTP id {}.{};\n        {}",
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    self.rng.alnum(12).to_lowercase(),
                    lt,
                    rfc2822(lt, -480)
                )
                .unwrap();
                writeln!(top, "ARC-Seal: i=1; a=rsa-sha256; t={lt}; cv=none;\n        d=google.com; s=arc-20160816;\n        b={}", self.rng.b64(64)).unwrap();
                writeln!(top, "ARC-Authentication-Results: i=1; mx.google.com;\n       spf=pass (google.com: domain of {} designates {ip} as permitted sender) smtp.mailfrom={}", envfrom, envfrom).unwrap();
                top.push_str(&rp);
                writeln!(top, "Received: from {rdns} ({rdns}. [{ip}])\n        by mx.google.com with ESMTPS id {}.{}.{gd}\n        for <{first}>\n        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\n        {}", self.rng.alnum(14).to_lowercase(), self.rng.below(999), rfc2822(t, -480), gd = gdate(t)).unwrap();
                writeln!(top, "Received-SPF: pass (google.com: domain of {} designates {ip} as permitted sender) client-ip={ip};", envfrom).unwrap();
                writeln!(top, "Authentication-Results: mx.google.com;\n       spf=pass (google.com: domain of {} designates {ip} as permitted sender) smtp.mailfrom={}", envfrom, envfrom).unwrap();
            }
            Style::Ionos => {
                top.push_str(&rp);
                writeln!(
                    top,
                    "Received: from {helo} ([{ip}]) by mx.kundenserver.de\n (mxeue{:03} [212.227.15.41]) with ESMTPS (Nemesis) id {}-{}-{}\n for <{first}>; {}",
                    self.rng.below(120),
                    self.rng.alnum(7),
                    self.rng.alnum(12),
                    self.rng.alnum(8),
                    rfc2822(t, 60)
                )
                .unwrap();
                writeln!(bottom, "Envelope-To: {first}").unwrap();
                writeln!(
                    bottom,
                    "X-UI-Filterresults: {}:{};V03:K0:{}=:{}",
                    if spec.sender == Sender::Spam {
                        "junk"
                    } else {
                        "notjunk"
                    },
                    1,
                    self.rng.b64(11),
                    self.rng.b64(40)
                )
                .unwrap();
                writeln!(bottom, "X-Spam-Flag: NO").unwrap();
            }
            Style::Forwarded => {
                let box_addr = "acme.office.archive@gmail.com";
                let lt = t + 5;
                writeln!(top, "Delivered-To: {box_addr}").unwrap();
                writeln!(
                    top,
                    "Received: by 2002:a05:6a10:{}:b0:{}:{}:{} with SMTP id {}csp{};\n        {}",
                    self.rng.lhex(4),
                    self.rng.lhex(3),
                    self.rng.lhex(4),
                    self.rng.lhex(4),
                    self.rng.alnum(3).to_lowercase(),
                    100_000 + self.rng.below(899_999),
                    rfc2822(lt, -480)
                )
                .unwrap();
                if self.rng.pct(50) {
                    // The ISP's Postfix forwards each recipient's copy with SRS.
                    writeln!(top, "ARC-Seal: i=1; a=rsa-sha256; t={lt}; cv=none;\n        d=google.com; s=arc-20160816;\n        b={}", self.rng.b64(64)).unwrap();
                    let srs = format!(
                        "SRS0={}={}={}={}@isp-mail.net",
                        self.rng.alnum(4),
                        self.rng.alnum(2),
                        dom(&envfrom),
                        envfrom.split('@').next().unwrap_or("")
                    );
                    writeln!(top, "Return-Path: <{srs}>").unwrap();
                    writeln!(top, "Received: from mailout.isp-mail.net (mailout.isp-mail.net. [192.0.2.40])\n        by mx.google.com with ESMTPS id {}.{}.{gd}\n        for <{box_addr}>\n        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\n        {}", self.rng.alnum(14).to_lowercase(), self.rng.below(999), rfc2822(lt - 1, -480), gd = gdate(t)).unwrap();
                    writeln!(top, "Received-SPF: pass (google.com: domain of {srs} designates 192.0.2.40 as permitted sender) client-ip=192.0.2.40;").unwrap();
                    writeln!(top, "X-Original-To: {first}").unwrap();
                    writeln!(top, "Delivered-To: examplecom@mailbox.isp-mail.net").unwrap();
                    let f = for_rcpt
                        .map(|a| format!("\n\tfor <{a}>"))
                        .unwrap_or_default();
                    writeln!(top, "Received: from {helo} ({rdns} [{ip}])\n\tby mailbox.isp-mail.net (Postfix) with ESMTPS id {}{f};\n\t{} (CET)", self.rng.hex(10), rfc2822(t, 60)).unwrap();
                } else {
                    // Each person's own Google mailbox auto-forwards into the archive box.
                    writeln!(top, "X-Forwarded-To: {box_addr}").unwrap();
                    writeln!(top, "X-Forwarded-For: {first} {box_addr}").unwrap();
                    writeln!(top, "Delivered-To: {first}").unwrap();
                    writeln!(top, "Received: by 2002:a05:7300:{}:b0:{}:{}:{} with SMTP id {}csp{};\n        {}", self.rng.lhex(4), self.rng.lhex(3), self.rng.lhex(4), self.rng.lhex(4), self.rng.alnum(3).to_lowercase(), 100_000 + self.rng.below(899_999), rfc2822(t + 1, -480)).unwrap();
                    top.push_str(&rp);
                    writeln!(top, "Received: from {rdns} ({rdns}. [{ip}])\n        by mx.google.com with ESMTPS id {}.{}.{gd}\n        for <{first}>\n        (version=TLS1_3 cipher=TLS_AES_256_GCM_SHA384 bits=256/256);\n        {}", self.rng.alnum(14).to_lowercase(), self.rng.below(999), rfc2822(t, -480), gd = gdate(t)).unwrap();
                }
            }
        }
        (top, bottom)
    }
}

fn dom(addr: &str) -> &str {
    addr.rsplit('@')
        .next()
        .filter(|d| !d.is_empty() && addr.contains('@'))
        .unwrap_or("partner-firm.example")
}

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        rng.lhex(8),
        rng.lhex(4),
        rng.lhex(4),
        rng.lhex(4),
        rng.lhex(12)
    )
}

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, usize, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as usize, d)
}

struct Tm {
    wday: &'static str,
    y: i64,
    mon: &'static str,
    d: i64,
    h: i64,
    mi: i64,
    s: i64,
}

fn tm(t: i64) -> Tm {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    Tm {
        wday: DAYS[days.rem_euclid(7) as usize],
        y,
        mon: MONTHS[m - 1],
        d,
        h: secs / 3600,
        mi: secs / 60 % 60,
        s: secs % 60,
    }
}

/// RFC 5322 date at a zone offset in minutes.
fn rfc2822(t: i64, zone_min: i64) -> String {
    let x = tm(t + zone_min * 60);
    let sign = if zone_min < 0 { '-' } else { '+' };
    let z = zone_min.abs();
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} {sign}{:02}{:02}",
        x.wday,
        x.d,
        x.mon,
        x.y,
        x.h,
        x.mi,
        x.s,
        z / 60,
        z % 60
    )
}

/// qmail's own date form (`3 Mar 2020 09:12:13 -0000`).
fn qdate(t: i64) -> String {
    let x = tm(t);
    format!(
        "{} {} {} {:02}:{:02}:{:02} -0000",
        x.d, x.mon, x.y, x.h, x.mi, x.s
    )
}

/// Exchange's `03 Mar 2020 09:12:13.1234 (UTC)`.
fn msdate(t: i64) -> String {
    let x = tm(t);
    format!(
        "{:02} {} {} {:02}:{:02}:{:02}.{:04} (UTC)",
        x.d,
        x.mon,
        x.y,
        x.h,
        x.mi,
        x.s,
        (t * 7919) % 10_000
    )
}

/// The date part of a Google SMTP id (`2019.02.10.01.12.13`).
fn gdate(t: i64) -> String {
    let x = tm(t);
    let m = MONTHS.iter().position(|m| *m == x.mon).unwrap_or(0) + 1;
    format!(
        "{}.{m:02}.{:02}.{:02}.{:02}.{:02}",
        x.y, x.d, x.h, x.mi, x.s
    )
}

/// The mbox `From ` line date.
fn asctime(t: i64) -> String {
    let x = tm(t);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        x.wday, x.mon, x.d, x.h, x.mi, x.s, x.y
    )
}

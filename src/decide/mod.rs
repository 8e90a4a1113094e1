//! Stage 3 (decide recipients): a pure function from evidence to users and a confidence.
//!
//! Evidence is tried in groups, strongest first: envelope fields by rank, then trusted
//! Received `for` clauses, then To/Cc-style fields; inference from other messages of the
//! mailbox comes last and is always `low`. The first group that names at least one
//! user decides alone; weaker groups are reported as superseded. This is what keeps a
//! per-recipient copy (X-Original-To: alice) away from everyone else in its To/Cc.

pub mod corrections;
pub mod directory;
pub(crate) mod inference;
pub mod profile;

use crate::decide::directory::{Directory, Resolved};
use crate::decide::profile::Profile;
use crate::evidence::address::{ascii_lowercase, lowercase, rsplit_ascii};
use crate::evidence::{Evidence, Facts, Kind, Place};
use std::sync::Arc;

/// How sure popsplit is that a copy reached the right person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Confidence {
    /// An envelope field or a trusted Received `for` named the user.
    High,
    /// A To/Cc-style field named the user.
    Medium,
    /// The user was inferred or salvaged from a damaged field.
    Low,
    /// Nothing named a user: the message is unassigned.
    None,
    /// A person decided it (`--corrections`); never given by [`decide`] itself.
    Reviewed,
}

impl Confidence {
    /// Every level: those [`decide`] gives, strongest first, then a person's.
    pub const ALL: [Confidence; 5] = [
        Confidence::High,
        Confidence::Medium,
        Confidence::Low,
        Confidence::None,
        Confidence::Reviewed,
    ];

    /// Position in [`Confidence::ALL`], for per-level counts and keyword letters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The level's name as used in headers, keywords and the report.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
            Confidence::None => "none",
            Confidence::Reviewed => "reviewed",
        }
    }
}

/// What the decision made of one piece of evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// It named the users the message went to.
    Decisive,
    /// It named a user, but a stronger group had already decided.
    Superseded,
    /// It sits below the ISP's own Received fields, where a sender can forge it.
    Untrusted,
    /// It belongs to an earlier delivery (a list server's, a forwarder's, a resent
    /// message's old header): history, not this box's envelope.
    Earlier,
    /// A local address that is no user (not in the directory: departed or guessed).
    NotAUser,
    /// The shared POP box itself, never a person.
    SharedBox,
    /// A To/Cc field of mailing-list mail: it names the list, not the reader.
    ListMail,
    /// A field that is not this mailbox's envelope field (learned or `--envelope-header`).
    Ignored,
    /// Not at one of the office's domains.
    NotLocal,
    /// The field held no usable address.
    NoAddress,
    /// The message names more local addresses than [`MASS_MAILING`]: a mass mailing.
    MassMailing,
}

/// A message whose evidence names more distinct local addresses than this is a mass
/// mailing (a spammer's dictionary run, a harvested list): nobody's in particular, and
/// without a directory it would make a folder of each.
pub const MASS_MAILING: usize = 100;

impl Verdict {
    /// One sentence for `--explain`.
    pub fn explain(self) -> &'static str {
        match self {
            Verdict::Decisive => "decisive: names the users the message went to",
            Verdict::Superseded => "superseded: names a user, but stronger evidence decided",
            Verdict::Untrusted => {
                "untrusted: below the ISP's own Received fields (or not the provider's own field), where a sender can forge it"
            }
            Verdict::Earlier => {
                "earlier delivery: a list server's, a forwarder's or a resent message's old trace"
            }
            Verdict::NotAUser => {
                "not a user: a local address that maps to nobody (departed, or a guess)"
            }
            Verdict::SharedBox => "the shared box itself: never a person",
            Verdict::ListMail => "mailing-list mail: To/Cc name the list, not the reader",
            Verdict::Ignored => "ignored: not this mailbox's envelope field",
            Verdict::NotLocal => "not local: not at one of the office's domains",
            Verdict::NoAddress => "no address in the field",
            Verdict::MassMailing => "mass mailing: the message names more than 100 local addresses",
        }
    }
}

/// Settings of the decision that the admin may change.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Without learned relays: envelope fields and Received `for` clauses count only when
    /// fewer than this many Received fields stand above them.
    pub trusted_hops: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { trusted_hops: 3 }
    }
}

/// Everything a decision depends on besides the message.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The office's domains and users.
    pub dir: &'a Directory,
    /// What was learned about the mailbox.
    pub profile: &'a Profile,
    /// The admin's settings.
    pub policy: &'a Policy,
}

/// Users suggested by other messages, used only when a message's own evidence names none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hints {
    /// The one user that earlier messages of the same thread came from or went to.
    pub thread: Option<String>,
    /// The one user whose envelope evidence received this list's other messages.
    pub list: Option<String>,
}

/// The outcome for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Users the message goes to, sorted, no repeats; empty means unassigned.
    pub users: Vec<String>,
    /// How strong the deciding evidence was.
    pub confidence: Confidence,
    /// What was made of each evidence item, in the same order.
    pub judged: Vec<Judgement>,
    /// How the users were inferred, when no evidence named them.
    pub inferred: Option<String>,
    /// Why the confidence is lower than the evidence kind would give.
    pub lowered: Option<&'static str>,
}

/// What the decision made of one evidence item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Judgement {
    /// Its verdict.
    pub verdict: Verdict,
    /// Its canonical local address, where it had one.
    pub canonical: Option<String>,
}

impl Decision {
    /// The verdicts, in evidence order.
    #[cfg(test)]
    fn verdicts(&self) -> Vec<Verdict> {
        self.judged.iter().map(|j| j.verdict).collect()
    }

    /// `Header: address` of each decisive item (or the inference), for the added header
    /// and the report.
    pub fn decisive_summary(&self, evidence: &[Evidence]) -> String {
        if let Some(how) = &self.inferred {
            return format!("inferred: {how}");
        }
        let parts: Vec<String> = evidence
            .iter()
            .zip(&self.judged)
            .filter(|(_, j)| j.verdict == Verdict::Decisive)
            .map(|(e, _)| {
                let salvaged = if e.salvaged { " (salvaged)" } else { "" };
                format!(
                    "{}: {}{salvaged}",
                    e.header,
                    e.address.as_deref().unwrap_or("")
                )
            })
            .collect();
        match (parts.is_empty(), self.lowered) {
            (true, Some(why)) => format!("none [{why}]"),
            (true, _) => "none (no evidence names a user)".to_string(),
            (false, Some(why)) => format!("{} [{why}]", parts.join("; ")),
            (false, None) => parts.join("; "),
        }
    }
}

/// Group order: fields naming the address the sender used (learned fields rank with the
/// second), then the topmost trusted Received `for` (the RCPT TO the receiving side was
/// given), then Delivered-To (where the provider put it, after aliases), then lower `for`
/// clauses, then content fields.
fn group(kind: Kind) -> u8 {
    match kind {
        Kind::Envelope(rank) if rank < 2 => rank,
        Kind::Other => 1,
        Kind::ReceivedFor => 2,
        Kind::Envelope(_) => 3,
        Kind::Content => 20,
    }
}

/// What one evidence item is to the office, before any group decides.
struct Item {
    /// `Superseded` for every candidate.
    verdict: Verdict,
    /// What its address is to the office (its canonical form and users), shared with the
    /// directory's cache: copying the user list out for every item was 1% of a run.
    found: Option<Arc<Resolved>>,
}

impl Item {
    /// The users it names.
    fn named(&self) -> &[String] {
        self.found.as_ref().map_or(&[], |r| &r.users)
    }
}

/// What each piece of evidence is to the office, before any group decides.
struct Judged {
    /// One item per evidence item, in the same order.
    items: Vec<Item>,
    /// Envelope fields of an earlier delivery, or below the trusted hops, named a user.
    history_user: bool,
    /// ... or a local address that is nobody.
    history_nobody: bool,
}

/// Judges every piece of evidence on its own: who wrote it, for which delivery, and
/// whom it names.
fn judge(facts: &Facts, ctx: &Context<'_>) -> Judged {
    let evidence = &facts.evidence;
    let trusted = ctx
        .profile
        .trusted_hops(&facts.hops, ctx.policy.trusted_hops);
    let resolve = |a: &str| ctx.dir.resolve(a, ctx.profile.rewrite(a));
    // List mail whose To/Cc name someone outside the office (the list): To/Cc is no
    // evidence of who read it. A newsletter addressed to the reader alone still counts.
    let list_blind = facts.is_list
        && evidence.iter().any(|e| {
            e.kind == Kind::Content
                && e.place == Place::Current
                && e.address.as_deref().is_some_and(|a| resolve(a).is_none())
        });
    let mut judged = Judged {
        items: Vec::with_capacity(evidence.len()),
        history_user: false,
        history_nobody: false,
    };
    for e in evidence {
        let found = e.address.as_deref().and_then(resolve);
        let users = found.as_ref().map_or(&[][..], |r| &r.users);
        let envelope_kind = matches!(e.kind, Kind::Envelope(_) | Kind::Other);
        let trace = envelope_kind || e.kind == Kind::ReceivedFor;
        let is_box = |a: &str| {
            ctx.profile.is_box(a)
                || found
                    .as_ref()
                    .is_some_and(|r| ctx.profile.is_box(&r.canonical.to_address()))
        };
        let verdict = match (e.address.as_deref(), &found) {
            (None, _) => Verdict::NoAddress,
            _ if envelope_kind && !ctx.profile.is_envelope(e.kind, &e.header) => Verdict::Ignored,
            _ if e.place == Place::Earlier => Verdict::Earlier,
            _ if e.place == Place::Bottom
                && !ctx.profile.is_bottom_field(&e.header, &facts.hops) =>
            {
                Verdict::Untrusted
            }
            // Only a trace of the delivery can name the box; mail `To:` the general address
            // still belongs to whoever reads it.
            (Some(a), _) if trace && is_box(a) => Verdict::SharedBox,
            (Some(_), None) => Verdict::NotLocal,
            _ if trace
                && e.place == Place::Current
                && e.depth >= trusted
                && !facts.hops.is_empty() =>
            {
                Verdict::Untrusted
            }
            _ if e.kind == Kind::Content && list_blind => Verdict::ListMail,
            _ if users.is_empty() => Verdict::NotAUser,
            _ => Verdict::Superseded,
        };
        // Envelope fields only: a Received `for` in old history is as easily a sender's.
        // Untrusted ones too: they can only withhold a message, never deliver one.
        if matches!(verdict, Verdict::Earlier | Verdict::Untrusted)
            && envelope_kind
            && found.is_some()
            && !e.address.as_deref().is_some_and(is_box)
        {
            judged.history_user |= !users.is_empty();
            judged.history_nobody |= users.is_empty();
        }
        judged.items.push(Item { verdict, found });
    }
    judged
}

/// Each item's group; of several Received `for` clauses, the topmost is the latest hop's
/// word, and the lower ones (before an alias was expanded) rank below Delivered-To.
fn groups(evidence: &[Evidence], items: &[Item]) -> Vec<u8> {
    let top_for = evidence
        .iter()
        .zip(items)
        .position(|(e, it)| e.kind == Kind::ReceivedFor && counts(it.verdict));
    evidence
        .iter()
        .enumerate()
        .map(|(i, e)| match e.kind {
            Kind::ReceivedFor if Some(i) != top_for => group(e.kind) + 2,
            kind => group(kind),
        })
        .collect()
}

/// Whether a verdict names a local address that may decide (a user, or nobody).
fn counts(v: Verdict) -> bool {
    matches!(v, Verdict::Superseded | Verdict::NotAUser)
}

/// The deciding group: the strongest trace of the delivery that names a local address,
/// users or not (an envelope naming only nobody sends the copy to nobody, whatever To/Cc
/// say); else To/Cc when they name a user.
fn winner(evidence: &[Evidence], items: &[Item], groups: &[u8]) -> Option<u8> {
    evidence
        .iter()
        .zip(items)
        .zip(groups)
        .filter(|((e, it), _)| counts(it.verdict) && e.kind != Kind::Content)
        .map(|(_, g)| *g)
        .min()
        .or_else(|| {
            evidence
                .iter()
                .zip(items)
                .any(|(e, it)| it.verdict == Verdict::Superseded && e.kind == Kind::Content)
                .then_some(group(Kind::Content))
        })
}

/// Why To/Cc, having named one user, must not deliver the message; `None` when they may.
fn withhold(
    facts: &Facts,
    ctx: &Context<'_>,
    judged: &Judged,
    users: &[String],
) -> Option<&'static str> {
    let evidence = &facts.evidence;
    // An earlier delivery never delivers, but one that was for local addresses that are
    // nobody (a role account or a guess, forwarded into this box) says the message was not
    // for whoever To/Cc name; Resent-To is the resender's own word and still counts.
    // Withholding is safe where delivering is not: so untrusted fields count here.
    let resent = |e: &Evidence| {
        e.header
            .get(..7)
            .is_some_and(|p| p.eq_ignore_ascii_case("resent-"))
    };
    let by_resent = evidence
        .iter()
        .zip(&judged.items)
        .any(|(e, it)| it.verdict == Verdict::Decisive && resent(e));
    if judged.history_nobody && !judged.history_user && !by_resent {
        return Some(
            "an earlier or untrusted envelope field names only a local address that is no user",
        );
    }
    // An ISP that writes `for` on single-recipient deliveries wrote none here: the envelope
    // held several local addresses, while To/Cc name one. Bcc, or spam to guessed
    // addresses with a colleague's name in To. From a sender whose other mail the envelope
    // showed was for a user here, it is the first; from a stranger, To/Cc do not deliver.
    let known_sender = facts
        .from_address
        .as_deref()
        .and_then(|a| rsplit_ascii(a, b'@'))
        .is_some_and(|(_, d)| {
            ctx.profile
                .correspondents
                .contains(ascii_lowercase(d).as_ref())
        });
    let no_for = !evidence
        .iter()
        .any(|e| e.kind == Kind::ReceivedFor && e.place == Place::Current);
    (ctx.profile.for_when_single && !known_sender && users.len() == 1 && no_for).then_some(
        "the ISP's hop has no `for`, so its envelope held several local addresses, To/Cc name one, and the sender never wrote to a user here: spam to guessed addresses, or Bcc",
    )
}

/// A box that kept one copy of a message for several recipients (Gmail keeps one per
/// Message-ID) holds the envelope of one of them: the colleagues in To/Cc lost theirs and
/// are added. Whether any was.
fn add_colleagues(evidence: &[Evidence], judged: &mut Judged, users: &mut Vec<String>) -> bool {
    let mut added = false;
    for (e, it) in evidence.iter().zip(&mut judged.items) {
        if e.kind == Kind::Content
            && it.verdict == Verdict::Superseded
            && it.named().iter().any(|u| !users.contains(u))
        {
            it.verdict = Verdict::Decisive;
            users.extend(it.named().iter().cloned());
            added = true;
        }
    }
    users.sort();
    users.dedup();
    added
}

/// Decides the users of one message from its facts; `hints` count only when the message's
/// own evidence names nobody and nothing says it was for someone who is not a user.
pub fn decide(facts: &Facts, ctx: &Context<'_>, hints: &Hints) -> Decision {
    let evidence = &facts.evidence;
    if let Some(d) = mass_mailing(facts, ctx) {
        return d;
    }
    let mut judged = judge(facts, ctx);
    let groups = groups(evidence, &judged.items);
    let winner = winner(evidence, &judged.items, &groups);
    let mut users = Vec::new();
    let (mut all_salvaged, mut expanded) = (true, false);
    if let Some(g) = winner {
        for ((e, it), group) in evidence.iter().zip(&mut judged.items).zip(&groups) {
            if it.verdict == Verdict::Superseded && *group == g {
                it.verdict = Verdict::Decisive;
                users.extend(it.named().iter().cloned());
                all_salvaged &= e.salvaged;
                expanded |= it.named().len() > 1;
            }
        }
    }
    users.sort();
    users.dedup();
    let mut winner = winner.filter(|_| !users.is_empty());
    let withheld = match winner {
        Some(g) if g == group(Kind::Content) => withhold(facts, ctx, &judged, &users),
        None if judged.history_nobody && !judged.history_user => Some(
            "an earlier or untrusted envelope field names only a local address that is no user",
        ),
        _ => None,
    };
    if withheld.is_some() {
        winner = None;
        users.clear();
        for it in judged
            .items
            .iter_mut()
            .filter(|it| it.verdict == Verdict::Decisive)
        {
            it.verdict = Verdict::Superseded;
        }
    }
    // To/Cc naming a local address that is nobody (a guess, or someone who left) is what
    // spam looks like.
    let spam_shaped = evidence
        .iter()
        .zip(&judged.items)
        .any(|(e, it)| e.kind == Kind::Content && it.verdict == Verdict::NotAUser);
    let (mut confidence, mut lowered) = match winner {
        None => (Confidence::None, withheld),
        Some(_) if all_salvaged => (Confidence::Low, Some("salvaged from a malformed field")),
        Some(_) if expanded => (Confidence::Low, Some("distribution list: members inferred")),
        Some(g) if g < group(Kind::Content) => (Confidence::High, None),
        Some(_) if spam_shaped => (
            Confidence::Low,
            Some("To/Cc also names a local address that is no user"),
        ),
        Some(_) => (Confidence::Medium, None),
    };
    if ctx.profile.one_copy.kept_one
        && winner.is_some_and(|g| g < group(Kind::Content))
        && !spam_shaped
        && add_colleagues(evidence, &mut judged, &mut users)
        && confidence == Confidence::High
    {
        confidence = Confidence::Medium;
        lowered = Some("this box kept one copy per Message-ID: To/Cc colleagues added");
    }
    let mut decision = Decision {
        users,
        confidence,
        judged: judged
            .items
            .into_iter()
            .map(|it| Judgement {
                verdict: it.verdict,
                canonical: it.found.map(|r| r.canonical.to_address()),
            })
            .collect(),
        inferred: None,
        lowered,
    };
    if winner.is_none() && withheld.is_none() {
        infer(&mut decision, evidence, hints);
    }
    decision
}

/// The decision for a mass mailing, or `None`: counted before anything else is resolved,
/// so that a message naming a million addresses costs one pass over them.
fn mass_mailing(facts: &Facts, ctx: &Context<'_>) -> Option<Decision> {
    let mut local = std::collections::HashSet::new();
    for e in &facts.evidence {
        let Some((l, d)) = e.address.as_deref().and_then(|a| rsplit_ascii(a, b'@')) else {
            continue;
        };
        if ctx.dir.domains.iter().any(|ld| ld.eq_ignore_ascii_case(d)) {
            local.insert(lowercase(l));
        }
        if local.len() > MASS_MAILING {
            let n = facts.evidence.len();
            return Some(Decision {
                users: Vec::new(),
                confidence: Confidence::None,
                judged: vec![
                    Judgement {
                        verdict: Verdict::MassMailing,
                        canonical: None,
                    };
                    n
                ],
                inferred: None,
                lowered: Some("mass mailing: more than 100 local addresses named"),
            });
        }
    }
    None
}

/// Fills in users from other messages, marked `low`. Not when trusted evidence said the
/// message was for a local address that is no user: that mail belongs to nobody here.
fn infer(decision: &mut Decision, evidence: &[Evidence], hints: &Hints) {
    let for_departed = evidence
        .iter()
        .zip(&decision.judged)
        .any(|(e, j)| e.kind != Kind::Content && j.verdict == Verdict::NotAUser);
    if for_departed {
        return;
    }
    let (user, how) = match (&hints.list, &hints.thread) {
        (Some(u), _) => (u.clone(), format!("this list's other messages went to {u}")),
        (None, Some(u)) => (u.clone(), format!("reply in a thread of {u}'s mail")),
        (None, None) => return,
    };
    decision.users = vec![user];
    decision.confidence = Confidence::Low;
    decision.inferred = Some(how);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::Hop;

    fn ev(header: &str, addr: &str, kind: Kind, depth: usize) -> Evidence {
        Evidence {
            header: header.to_string().into(),
            address: Some(addr.into()),
            kind,
            depth,
            salvaged: false,
            place: Place::Current,
        }
    }

    fn office() -> Directory {
        Directory::from_rows(
            &[
                ("alice@example.com", "alice"),
                ("bob@example.com", "bob"),
                ("boss@example.com", "bob"),
                ("team@example.com", "alice"),
                ("team@example.com", "bob"),
                ("office@example.com", "alice"),
                ("lists+a@example.com", "alice"),
                ("lists+b@example.com", "bob"),
                ("judy@example.com", "judy"),
            ],
            &["example.com".into()],
        )
        .expect("dir")
    }

    fn facts(evidence: &[Evidence]) -> Facts {
        Facts {
            evidence: evidence.to_vec(),
            ..Facts::default()
        }
    }

    fn with(f: &Facts, profile: &Profile, hints: &Hints) -> Decision {
        let dir = office();
        let policy = Policy::default();
        decide(
            f,
            &Context {
                dir: &dir,
                profile,
                policy: &policy,
            },
            hints,
        )
    }

    fn run(e: &[Evidence]) -> (Vec<String>, Confidence, Vec<Verdict>) {
        let d = with(&facts(e), &Profile::default(), &Hints::default());
        let verdicts = d.verdicts();
        (d.users, d.confidence, verdicts)
    }

    use Verdict::*;

    #[test]
    fn envelope_beats_content_for_per_recipient_copies() {
        let (u, c, v) = run(&[
            ev("Delivered-To", "box@isp.net", Kind::Envelope(2), 0),
            ev("X-Original-To", "alice@example.com", Kind::Envelope(0), 0),
            ev("To", "alice@example.com", Kind::Content, 2),
            ev("Cc", "bob@example.com", Kind::Content, 2),
        ]);
        assert_eq!(u, vec!["alice"]);
        assert_eq!(c, Confidence::High);
        assert_eq!(v, vec![NotLocal, Decisive, Superseded, Superseded]);
    }

    #[test]
    fn trusted_received_for_is_high_and_forged_one_is_ignored() {
        let mut f = facts(&[
            ev("Received", "bob@example.com", Kind::ReceivedFor, 0),
            ev("Received", "alice@example.com", Kind::ReceivedFor, 5),
        ]);
        f.hops = vec![Hop::default(); 6];
        let d = with(&f, &Profile::default(), &Hints::default());
        assert_eq!(d.verdicts(), vec![Decisive, Untrusted]);
        assert_eq!(
            (d.users, d.confidence),
            (vec!["bob".to_string()], Confidence::High)
        );
        let mut f = facts(&[ev("Received", "alice@example.com", Kind::ReceivedFor, 3)]);
        f.hops = vec![Hop::default(); 4];
        let d = with(&f, &Profile::default(), &Hints::default());
        assert!(d.users.is_empty());
        assert_eq!(d.confidence, Confidence::None);
    }

    #[test]
    fn learned_relays_set_the_trust_boundary() {
        let hop = |by: &str| Hop {
            by: Some(by.into()),
        };
        let profile = Profile {
            relays: vec!["mx.isp.net".into()],
            ..Profile::default()
        };
        let mut f = facts(&[
            ev("Received", "alice@example.com", Kind::ReceivedFor, 0),
            ev("Received", "bob@example.com", Kind::ReceivedFor, 1),
        ]);
        f.hops = vec![hop("mx.isp.net"), hop("evil.example.biz")];
        let d = with(&f, &profile, &Hints::default());
        assert_eq!(d.users, vec!["alice"]);
        assert_eq!(d.verdicts(), vec![Decisive, Untrusted]);
        // Three relays deep, a fourth line from elsewhere: only the top three count.
        let mut deep = facts(&[ev("Received", "bob@example.com", Kind::ReceivedFor, 3)]);
        deep.hops = vec![
            hop("mx.isp.net"),
            hop("mx.isp.net"),
            hop("mx.isp.net"),
            hop("evil.example.biz"),
        ];
        assert_eq!(
            with(&deep, &profile, &Hints::default()).confidence,
            Confidence::None
        );
        deep.evidence[0].depth = 2;
        assert_eq!(with(&deep, &profile, &Hints::default()).users, vec!["bob"]);
    }

    #[test]
    fn content_fields_are_medium_and_aliases_resolve() {
        let (u, c, _) = run(&[
            ev("Cc", "Boss+urgent@Example.com", Kind::Content, 1),
            ev("Cc", "friend@else.org", Kind::Content, 1),
        ]);
        assert_eq!(u, vec!["bob"]);
        assert_eq!(c, Confidence::Medium);
    }

    #[test]
    fn distribution_list_members_are_inferred_low() {
        let (u, c, _) = run(&[ev(
            "X-Original-To",
            "team@example.com",
            Kind::Envelope(0),
            0,
        )]);
        assert_eq!(u, vec!["alice", "bob"]);
        assert_eq!(c, Confidence::Low);
    }

    #[test]
    fn spam_shaped_to_is_never_medium() {
        let (u, c, v) = run(&[
            ev("To", "alice@example.com", Kind::Content, 1),
            ev("To", "guess123@example.com", Kind::Content, 1),
        ]);
        assert_eq!(u, vec!["alice"]);
        assert_eq!(c, Confidence::Low);
        assert_eq!(v, vec![Decisive, NotAUser]);
    }

    #[test]
    fn departed_user_is_unassigned_even_with_hints() {
        let hints = Hints {
            thread: Some("alice".into()),
            list: None,
        };
        let d = with(
            &facts(&[
                ev("X-Original-To", "carol@example.com", Kind::Envelope(0), 0),
                ev("To", "carol@example.com", Kind::Content, 1),
            ]),
            &Profile::default(),
            &hints,
        );
        assert!(d.users.is_empty());
        assert_eq!(d.confidence, Confidence::None);
        assert_eq!(d.verdicts(), vec![NotAUser, NotAUser]);
    }

    #[test]
    fn mailing_list_to_is_no_evidence_but_list_and_thread_hints_are_low() {
        let mut f = facts(&[
            ev("To", "rust@lists.example.org", Kind::Content, 1),
            ev("Cc", "alice@example.com", Kind::Content, 1),
        ]);
        f.is_list = true;
        let d = with(&f, &Profile::default(), &Hints::default());
        assert_eq!(d.verdicts(), vec![NotLocal, ListMail]);
        assert!(d.users.is_empty());
        let hinted = Hints {
            thread: Some("alice".into()),
            list: Some("bob".into()),
        };
        let d = with(&f, &Profile::default(), &hinted);
        assert_eq!(
            (d.users, d.confidence),
            (vec!["bob".to_string()], Confidence::Low)
        );
        assert!(d.inferred.expect("inferred").contains("list"));
        // A newsletter addressed to the reader alone still counts.
        let mut n = facts(&[ev("To", "alice@example.com", Kind::Content, 1)]);
        n.is_list = true;
        assert_eq!(
            with(&n, &Profile::default(), &Hints::default()).confidence,
            Confidence::Medium
        );
    }

    #[test]
    fn shared_box_and_prefix_rewrite_from_the_profile() {
        let profile = Profile {
            boxes: vec![crate::decide::profile::Share {
                name: "office@example.com".into(),
                messages: 9,
            }],
            rewrites: vec![crate::decide::profile::Rewrite {
                affix: crate::decide::profile::Affix::Prefix("acmepop-".into()),
                domain: Some("isp.net".into()),
                target: "example.com".into(),
            }],
            ..Profile::default()
        };
        let f = facts(&[
            ev("Delivered-To", "Office@example.com", Kind::Envelope(2), 0),
            ev("Delivered-To", "acmepop-bob@isp.net", Kind::Envelope(2), 0),
        ]);
        let d = with(&f, &profile, &Hints::default());
        assert_eq!(d.verdicts(), vec![SharedBox, Decisive]);
        assert_eq!(d.users, vec!["bob"]);
    }

    #[test]
    fn unknown_x_fields_count_only_when_learned() {
        let f = facts(&[ev("X-Rcpt-Info", "alice@example.com", Kind::Other, 0)]);
        assert_eq!(
            with(&f, &Profile::default(), &Hints::default()).verdicts(),
            vec![Ignored]
        );
        let learned = Profile {
            learned_headers: vec!["x-rcpt-info".into()],
            ..Profile::default()
        };
        let d = with(&f, &learned, &Hints::default());
        assert_eq!(
            (d.users, d.confidence),
            (vec!["alice".to_string()], Confidence::High)
        );
    }

    #[test]
    fn salvaged_only_is_low_and_empty_is_none() {
        let mut e = ev("To", "alice@example.com", Kind::Content, 0);
        e.salvaged = true;
        assert_eq!(run(&[e]).1, Confidence::Low);
        let blank = Evidence {
            header: "To".into(),
            address: None,
            kind: Kind::Content,
            depth: 0,
            salvaged: false,
            place: Place::Current,
        };
        assert_eq!(run(&[blank]), (vec![], Confidence::None, vec![NoAddress]));
    }

    fn at(mut e: Evidence, place: Place) -> Evidence {
        e.place = place;
        e
    }

    /// Rule 1: the catch-all account may be a person's address; Delivered-To naming it is
    /// a routing target that yields to X-Original-To of the same delivery.
    #[test]
    fn the_catch_all_account_yields_to_the_original_recipient() {
        let (u, c, v) = run(&[
            ev("Delivered-To", "office@example.com", Kind::Envelope(2), 0),
            ev("X-Original-To", "bob@example.com", Kind::Envelope(0), 0),
            ev("To", "office@example.com", Kind::Content, 1),
        ]);
        assert_eq!((u, c), (vec!["bob".to_string()], Confidence::High));
        assert_eq!(v, vec![Superseded, Decisive, Superseded]);
        // Mail To: the general address still belongs to its reader.
        let (u, c, _) = run(&[ev("To", "office@example.com", Kind::Content, 1)]);
        assert_eq!((u, c), (vec!["alice".to_string()], Confidence::Medium));
    }

    /// Rule 5: an envelope naming only someone who is no user decides: nobody.
    #[test]
    fn an_envelope_naming_nobody_is_not_overruled_by_to() {
        let (u, c, v) = run(&[
            ev("Delivered-To", "office@example.com", Kind::Envelope(2), 0),
            ev("X-Original-To", "mail@example.com", Kind::Envelope(0), 0),
            ev("To", "alice@example.com", Kind::Content, 1),
        ]);
        assert!(u.is_empty());
        assert_eq!(c, Confidence::None);
        assert_eq!(v, vec![Superseded, NotAUser, Superseded]);
        let mut f = facts(&[
            ev("Received", "mail@example.com", Kind::ReceivedFor, 0),
            ev("Received", "bob@example.com", Kind::ReceivedFor, 1),
            ev("To", "bob@example.com", Kind::Content, 2),
        ]);
        f.hops = vec![Hop::default(); 3];
        let hints = Hints {
            thread: Some("bob".into()),
            list: None,
        };
        let d = with(&f, &Profile::default(), &hints);
        assert!(d.users.is_empty(), "{d:?}");
    }

    /// Rule 2: an address the directory names exactly is looked up as written first.
    #[test]
    fn exact_addresses_before_rewrites() {
        let (u, c, _) = run(&[ev(
            "X-Original-To",
            "Lists+B@example.com",
            Kind::Envelope(0),
            0,
        )]);
        assert_eq!((u, c), (vec!["bob".to_string()], Confidence::High));
        let (u, _, _) = run(&[ev(
            "X-Original-To",
            "lists+a@example.com",
            Kind::Envelope(0),
            0,
        )]);
        assert_eq!(u, vec!["alice"]);
        let (u, _, _) = run(&[ev(
            "To",
            "prvs=1a2b3c4d5=judy@example.com",
            Kind::Content,
            0,
        )]);
        assert_eq!(u, vec!["judy"]);
    }

    /// Rule 4: what an earlier delivery wrote is history; a resent message goes to its
    /// Resent-To.
    #[test]
    fn earlier_deliveries_never_deliver() {
        let (u, c, v) = run(&[
            ev("Delivered-To", "box@gmail.example", Kind::Envelope(2), 0),
            at(
                ev("Delivered-To", "alice@example.com", Kind::Envelope(2), 2),
                Place::Earlier,
            ),
            at(
                ev("Received", "alice@example.com", Kind::ReceivedFor, 2),
                Place::Earlier,
            ),
        ]);
        assert!(u.is_empty());
        assert_eq!(c, Confidence::None);
        assert_eq!(v, vec![NotLocal, Earlier, Earlier]);
        let (u, c, v) = run(&[
            ev("Resent-To", "bob@example.com", Kind::Content, 1),
            at(
                ev("X-Original-To", "alice@example.com", Kind::Envelope(0), 1),
                Place::Earlier,
            ),
            at(
                ev("To", "alice@example.com", Kind::Content, 2),
                Place::Earlier,
            ),
        ]);
        assert_eq!((u, c), (vec!["bob".to_string()], Confidence::Medium));
        assert_eq!(v, vec![Decisive, Earlier, Earlier]);
    }

    /// Rule 3: a provider's field below every hop counts only when that provider's relay is
    /// on top and the mailbox shows the field there on many messages; Exchange's own
    /// organisation fields count below a Microsoft hop without learning.
    #[test]
    fn bottom_fields_count_by_provenance() {
        let hop = |by: &str| Hop {
            by: Some(by.to_string()),
        };
        let mut f = facts(&[
            at(
                ev("Envelope-To", "alice@example.com", Kind::Envelope(1), 2),
                Place::Bottom,
            ),
            ev("To", "bob@example.com", Kind::Content, 2),
        ]);
        f.hops = vec![hop("mxint01.kundenserver.de"), hop("s.example.org")];
        let learned = Profile {
            relays: vec!["kundenserver.de".into()],
            bottom_fields: vec![crate::decide::profile::Share {
                name: "envelope-to".into(),
                messages: 50,
            }],
            ..Profile::default()
        };
        let d = with(&f, &learned, &Hints::default());
        assert_eq!(
            (d.users, d.confidence),
            (vec!["alice".to_string()], Confidence::High)
        );
        let not_learned = Profile {
            relays: vec!["kundenserver.de".into()],
            ..Profile::default()
        };
        let d = with(&f, &not_learned, &Hints::default());
        assert_eq!(d.verdicts(), vec![Untrusted, Decisive]);
        f.hops[0] = hop("mx.elsewhere.example");
        let d = with(&f, &learned, &Hints::default());
        assert_eq!(d.verdicts(), vec![Untrusted, Decisive]);
        let exchange = "X-MS-Exchange-Organization-OriginalEnvelopeRecipients";
        f.evidence[0].header = exchange.into();
        let d = with(&f, &Profile::default(), &Hints::default());
        assert_eq!(d.verdicts(), vec![Untrusted, Decisive]);
        f.hops[0] = hop("am0pr01mb1.eurprd01.prod.outlook.com");
        let d = with(&f, &Profile::default(), &Hints::default());
        assert_eq!(
            (d.users, d.confidence),
            (vec!["alice".to_string()], Confidence::High)
        );
    }

    /// Rule 3: a Received field that names no host neither ends nor extends the run.
    #[test]
    fn hostless_hops_never_extend_the_trusted_run() {
        let hop = |by: Option<&str>| Hop {
            by: by.map(str::to_string),
        };
        let profile = Profile {
            relays: vec!["isp.net".into()],
            ..Profile::default()
        };
        let mut f = facts(&[
            ev("Received", "alice@example.com", Kind::ReceivedFor, 2),
            ev("Received", "bob@example.com", Kind::ReceivedFor, 3),
        ]);
        f.hops = vec![
            hop(None),
            hop(Some("mx.isp.net")),
            hop(None),
            hop(Some("evil.example.biz")),
        ];
        let d = with(&f, &profile, &Hints::default());
        assert_eq!(d.verdicts(), vec![Untrusted, Untrusted]);
        f.evidence[0].depth = 1;
        let d = with(&f, &profile, &Hints::default());
        assert_eq!(d.users, vec!["alice"]);
    }

    /// Rule 6: in a box that kept one copy per Message-ID, To/Cc colleagues are added at
    /// medium; in a box with a copy per recipient they are not.
    #[test]
    fn one_copy_boxes_add_the_colleagues_at_medium() {
        let e = [
            ev("X-Original-To", "alice@example.com", Kind::Envelope(0), 0),
            ev("To", "alice@example.com", Kind::Content, 1),
            ev("Cc", "bob@example.com", Kind::Content, 1),
            ev("Cc", "friend@else.org", Kind::Content, 1),
        ];
        let d = with(&facts(&e), &Profile::default(), &Hints::default());
        assert_eq!(
            (d.users, d.confidence),
            (vec!["alice".to_string()], Confidence::High)
        );
        let one = Profile {
            one_copy: crate::decide::profile::OneCopy {
                candidates: 40,
                with_twin: 0,
                kept_one: true,
            },
            ..Profile::default()
        };
        let d = with(&facts(&e), &one, &Hints::default());
        assert_eq!(
            (d.users.clone(), d.confidence),
            (
                vec!["alice".to_string(), "bob".to_string()],
                Confidence::Medium
            )
        );
        assert_eq!(d.verdicts(), vec![Decisive, Superseded, Decisive, NotLocal]);
        assert!(d.decisive_summary(&e).contains("one copy"));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]
        /// Hostile header blocks built from the field shapes the rules read: gathering,
        /// learning and deciding never panic, and every user is a safe folder name.
        #[test]
        fn any_header_block_is_decided_without_panic(
            lines in proptest::collection::vec(
                (
                    proptest::sample::select(vec![
                        "Delivered-To", "X-Original-To", "Envelope-To", "To", "Cc", "Resent-To",
                        "Received", "X-Forwarded-For", "X-MS-Exchange-Organization-OriginalEnvelopeRecipients",
                        "List-Id", "From", "Message-ID", "X-Rcpt", " ",
                    ]),
                    "[ -~\u{80}-\u{2fff}]{0,40}",
                    proptest::sample::select(vec![
                        "alice@example.com", "prvs=1=bob@example.com", "SRS0=a=b=example.com=x@f.org",
                        "example.com-carol@example.com", "(qmail 1 invoked by alias)", "by mx.isp.net for <a@example.com>",
                        "=?us-ascii?Q?x=40example.com?=", "", ";", "by 2002:a05::1",
                    ]),
                ),
                0..12,
            )
        ) {
            let mut msg = String::new();
            for (name, noise, tail) in &lines {
                msg.push_str(&format!("{name}: {noise} {tail}\n"));
            }
            msg.push('\n');
            let dir = office();
            let facts = crate::evidence::gather(msg.as_bytes());
            let mut stats = crate::decide::profile::Stats::default();
            stats.add(&facts, &dir);
            let profile = stats.learn(&dir, &crate::decide::profile::Overrides::default());
            let d = with(&facts, &profile, &Hints { thread: Some("alice".into()), list: None });
            proptest::prop_assert_eq!(d.judged.len(), facts.evidence.len());
            for u in &d.users {
                proptest::prop_assert_eq!(&crate::text::folder_name(u), u);
            }
            let summary = d.decisive_summary(&facts.evidence);
            proptest::prop_assert!(!summary.contains('\n'));
        }
    }

    #[test]
    fn without_directory_local_parts_are_users() {
        let dir = Directory::open(&["example.com".into()]);
        let d = decide(
            &facts(&[ev("Envelope-To", "Dave@example.com", Kind::Envelope(1), 0)]),
            &Context {
                dir: &dir,
                profile: &Profile::default(),
                policy: &Policy::default(),
            },
            &Hints::default(),
        );
        assert_eq!(d.users, vec!["dave"]);
        assert_eq!(d.judged[0].canonical.as_deref(), Some("dave@example.com"));
        assert_eq!(d.judged.len(), 1);
    }
}

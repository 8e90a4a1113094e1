//! Stage 3 (decide recipients): a pure function from evidence to users and a confidence.
//!
//! Evidence is tried in groups, strongest first: envelope fields by rank, then trusted
//! Received `for` clauses, then To/Cc-style fields. The first group that names at least one
//! user decides alone; weaker groups are reported as superseded. This is what keeps a
//! per-recipient copy (X-Original-To: alice) away from everyone else in its To/Cc.

use crate::address::localize;
use crate::directory::Directory;
use crate::evidence::{Evidence, Kind};

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
}

impl Confidence {
    /// Every level, strongest first.
    pub const ALL: [Confidence; 4] = [
        Confidence::High,
        Confidence::Medium,
        Confidence::Low,
        Confidence::None,
    ];

    /// The level's name as used in headers, keywords and the report.
    pub fn name(self) -> &'static str {
        match self {
            Confidence::High => "high",
            Confidence::Medium => "medium",
            Confidence::Low => "low",
            Confidence::None => "none",
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
    /// It sits below the trusted hops, where a sender can forge it.
    Untrusted,
    /// A local address that is no user (not in the directory: departed or guessed).
    NotAUser,
    /// Not at one of the office's domains.
    NotLocal,
    /// The field held no usable address.
    NoAddress,
}

/// Settings of the decision that the admin may change.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Envelope fields and Received `for` clauses count only when fewer than this many
    /// Received fields stand above them (the ISP's and the downloader's own hops).
    pub trusted_hops: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy { trusted_hops: 3 }
    }
}

/// The outcome for one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Users the message goes to, sorted, no repeats; empty means unassigned.
    pub users: Vec<String>,
    /// How strong the deciding evidence was.
    pub confidence: Confidence,
    /// One verdict per evidence item, in the same order.
    pub verdicts: Vec<Verdict>,
    /// Canonical local address of each evidence item, where it had one.
    pub canonical: Vec<Option<String>>,
}

impl Decision {
    /// `Header: address` of each decisive item, for the added header and the report.
    pub fn decisive_summary(&self, evidence: &[Evidence]) -> String {
        let parts: Vec<String> = evidence
            .iter()
            .zip(&self.verdicts)
            .filter(|(_, v)| **v == Verdict::Decisive)
            .map(|(e, _)| {
                let salvaged = if e.salvaged { " (salvaged)" } else { "" };
                format!(
                    "{}: {}{salvaged}",
                    e.header,
                    e.address.as_deref().unwrap_or("")
                )
            })
            .collect();
        if parts.is_empty() {
            "none (no evidence names a user)".to_string()
        } else {
            parts.join("; ")
        }
    }
}

/// Group order: envelope ranks, then Received, then content fields.
fn group(kind: Kind) -> u8 {
    match kind {
        Kind::Envelope(rank) => rank,
        Kind::ReceivedFor => 10,
        Kind::Content => 20,
    }
}

/// Decides the users of one message from its evidence.
pub fn decide(evidence: &[Evidence], dir: &Directory, policy: &Policy) -> Decision {
    let mut verdicts = Vec::with_capacity(evidence.len());
    let mut canonical = Vec::with_capacity(evidence.len());
    let mut named: Vec<Vec<String>> = Vec::with_capacity(evidence.len());
    for e in evidence {
        let local = e.address.as_deref().and_then(|a| localize(a, &dir.domains));
        canonical.push(local.as_ref().map(|l| l.to_address()));
        let users = local.as_ref().map(|l| dir.users(l)).unwrap_or_default();
        let verdict = match (&e.address, &local) {
            (None, _) => Verdict::NoAddress,
            (Some(_), None) => Verdict::NotLocal,
            _ if e.kind != Kind::Content && e.depth >= policy.trusted_hops => Verdict::Untrusted,
            _ if users.is_empty() => Verdict::NotAUser,
            _ => Verdict::Superseded,
        };
        verdicts.push(verdict);
        named.push(users);
    }
    let winner = evidence
        .iter()
        .zip(&verdicts)
        .filter(|(_, v)| **v == Verdict::Superseded)
        .map(|(e, _)| group(e.kind))
        .min();
    let mut users = Vec::new();
    let mut all_salvaged = true;
    if let Some(g) = winner {
        for (i, e) in evidence.iter().enumerate() {
            if verdicts[i] == Verdict::Superseded && group(e.kind) == g {
                verdicts[i] = Verdict::Decisive;
                users.extend(named[i].iter().cloned());
                all_salvaged &= e.salvaged;
            }
        }
    }
    users.sort();
    users.dedup();
    let confidence = match winner {
        None => Confidence::None,
        Some(_) if all_salvaged => Confidence::Low,
        Some(g) if g < group(Kind::Content) => Confidence::High,
        Some(_) => Confidence::Medium,
    };
    Decision {
        users,
        confidence,
        verdicts,
        canonical,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn ev(header: &str, addr: &str, kind: Kind, depth: usize) -> Evidence {
        Evidence {
            header: header.into(),
            address: Some(addr.into()),
            kind,
            depth,
            salvaged: false,
        }
    }

    fn office() -> Directory {
        let mut f = tempfile::NamedTempFile::new().expect("tmp");
        f.write_all(b"address,user\nalice@example.com,alice\nbob@example.com,bob\nboss@example.com,bob\nteam@example.com,alice\nteam@example.com,bob\n")
            .expect("write");
        Directory::from_csv(&["example.com".into()], f.path()).expect("dir")
    }

    fn run(e: &[Evidence]) -> (Vec<String>, Confidence, Vec<Verdict>) {
        let d = decide(e, &office(), &Policy::default());
        (d.users, d.confidence, d.verdicts)
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
        let (u, c, v) = run(&[
            ev("Received", "bob@example.com", Kind::ReceivedFor, 0),
            ev("Received", "alice@example.com", Kind::ReceivedFor, 5),
        ]);
        assert_eq!((u, c), (vec!["bob".to_string()], Confidence::High));
        assert_eq!(v, vec![Decisive, Untrusted]);
        let (u, c, _) = run(&[ev("Received", "alice@example.com", Kind::ReceivedFor, 3)]);
        assert!(u.is_empty());
        assert_eq!(c, Confidence::None);
    }

    #[test]
    fn content_fields_are_medium_and_expand_lists_and_aliases() {
        let (u, c, _) = run(&[
            ev("To", "team@example.com", Kind::Content, 1),
            ev("Cc", "Boss+urgent@Example.com", Kind::Content, 1),
            ev("Cc", "friend@else.org", Kind::Content, 1),
        ]);
        assert_eq!(u, vec!["alice", "bob"]);
        assert_eq!(c, Confidence::Medium);
    }

    #[test]
    fn departed_user_falls_through_and_alone_is_unassigned() {
        let (u, c, v) = run(&[
            ev("X-Original-To", "carol@example.com", Kind::Envelope(0), 0),
            ev("To", "carol@example.com", Kind::Content, 1),
        ]);
        assert!(u.is_empty());
        assert_eq!(c, Confidence::None);
        assert_eq!(v, vec![NotAUser, NotAUser]);
        let (u, c, _) = run(&[
            ev("X-Original-To", "carol@example.com", Kind::Envelope(0), 0),
            ev("Cc", "alice@example.com", Kind::Content, 1),
        ]);
        assert_eq!((u, c), (vec!["alice".to_string()], Confidence::Medium));
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
        };
        assert_eq!(run(&[blank]), (vec![], Confidence::None, vec![NoAddress]));
    }

    #[test]
    fn forged_envelope_field_below_the_trusted_hops_does_not_count() {
        let (u, _, v) = run(&[ev("X-Original-To", "bob@example.com", Kind::Envelope(0), 4)]);
        assert!(u.is_empty());
        assert_eq!(v, vec![Untrusted]);
    }

    #[test]
    fn without_directory_local_parts_are_users() {
        let d = decide(
            &[ev("Envelope-To", "Dave@example.com", Kind::Envelope(1), 0)],
            &Directory::open(&["example.com".into()]),
            &Policy::default(),
        );
        assert_eq!(d.users, vec!["dave"]);
        assert_eq!(d.canonical, vec![Some("dave@example.com".to_string())]);
    }
}

//! Stage 5 (report): the JSON Lines audit trail and the end-of-run summary table.

use crate::text::count;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::decide::{Confidence, Decision, Verdict};
use crate::evidence::{Evidence, Kind, Place};
use crate::text::one_line;

/// One piece of evidence and what the decision made of it.
#[derive(Debug, Serialize)]
pub struct EvidenceRow<'a> {
    /// Field name.
    pub header: &'a str,
    /// Address as found.
    pub address: Option<&'a str>,
    /// Canonical local address, when at a local domain.
    pub canonical: Option<&'a str>,
    /// Kind of claim: `envelope-1` to `envelope-3` (the README's groups), `received-for`,
    /// `content` or `other`; always a string.
    #[serde(serialize_with = "kind_name")]
    pub kind: Kind,
    /// Received fields above it.
    pub depth: usize,
    /// Which delivery it belongs to.
    pub place: Place,
    /// Picked out of a field the address parser rejected.
    pub salvaged: bool,
    /// What the decision made of it.
    pub verdict: Verdict,
}

/// Where a duplicate was first seen.
#[derive(Debug, Clone, Serialize)]
pub struct FirstSeen {
    /// Input file of the first copy.
    pub source: String,
    /// Its 1-based index in that file.
    pub index: usize,
}

/// One line of the `--report` file: everything known about one input message.
#[derive(Debug, Serialize)]
pub struct Row<'a> {
    /// Input file.
    pub source: &'a str,
    /// Byte offset of the message's `From ` line.
    pub offset: usize,
    /// 1-based index of the message in its file.
    pub index: usize,
    /// Message-ID field.
    pub message_id: Option<&'a str>,
    /// From field.
    pub from: &'a str,
    /// Subject field.
    pub subject: &'a str,
    /// Arrival time used as the files' mtime (seconds since the epoch).
    pub arrival: Option<i64>,
    /// Users the evidence names (before duplicates are set aside).
    pub decided: &'a [String],
    /// Folders the message went to (the unassigned folder included).
    pub delivered_to: Vec<&'a str>,
    /// Of those, folders that already held this copy from an earlier run.
    pub already: Vec<&'a str>,
    /// First copy of this message in the input, when some destination already had it.
    pub duplicate_of: Option<FirstSeen>,
    /// Confidence level.
    pub confidence: Confidence,
    /// The decisive evidence, as in the X-Popsplit-Evidence header.
    pub decisive: &'a str,
    /// Why the mbox split around this message is uncertain, when it is.
    pub split_note: Option<&'a str>,
    /// Every piece of evidence considered.
    pub evidence: Vec<EvidenceRow<'a>>,
    /// Files written, relative to `--out` (empty in a dry run).
    pub files: Vec<String>,
    /// Copies an earlier run wrote into a folder the decisions no longer give them, moved
    /// (renamed) into a folder that now gets them.
    pub moved: Vec<Moved<'a>>,
    /// Such copies removed, because their right folder had them already.
    pub removed: Vec<&'a str>,
}

/// One earlier copy moved, paths relative to `--out`.
#[derive(Debug, Serialize)]
pub struct Moved<'a> {
    /// Where it was.
    pub from: &'a str,
    /// Where it is now.
    pub to: &'a str,
}

fn kind_name<S: serde::Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
    match kind {
        Kind::Envelope(rank) => s.serialize_str(&format!("envelope-{}", rank + 1)),
        Kind::ReceivedFor => s.serialize_str("received-for"),
        Kind::Content => s.serialize_str("content"),
        Kind::Other => s.serialize_str("other"),
    }
}

/// Pairs each piece of evidence with its verdict.
pub fn evidence_rows<'a>(evidence: &'a [Evidence], decision: &'a Decision) -> Vec<EvidenceRow<'a>> {
    evidence
        .iter()
        .zip(&decision.judged)
        .map(|(e, j)| EvidenceRow {
            header: &e.header,
            address: e.address.as_deref(),
            canonical: j.canonical.as_deref(),
            kind: e.kind,
            depth: e.depth,
            place: e.place,
            salvaged: e.salvaged,
            verdict: j.verdict,
        })
        .collect()
}

/// A message a person should look at: unassigned, or delivered at `low` or `medium`, or
/// decided by a person before (to be changed again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReviewRow {
    /// How `--corrections` names it: its Message-ID, else `source:index`.
    pub key: String,
    /// Arrival time.
    pub arrival: Option<i64>,
    /// From field (made safe).
    pub from: String,
    /// Subject field (made safe).
    pub subject: String,
    /// Folders it went to.
    pub folders: Vec<String>,
    /// Its confidence.
    pub confidence: Confidence,
    /// Why it went there.
    pub why: String,
    /// Input and index, to find it in the report.
    pub source: String,
    /// 1-based index in the input.
    pub index: usize,
    /// Each address field a reviewer needs (To/Cc, envelope fields, Received `for`):
    /// `field: address (verdict)`, made safe.
    pub evidence: Vec<String>,
    /// Its List-Id, when it has one.
    pub list: Option<String>,
    /// The first lines of its text, made safe (the page shows them as text).
    pub body: String,
}

/// Most review rows kept for the HTML page (the page pages through them); the report has
/// them all.
pub const REVIEW_ROWS: usize = 100_000;

/// What the audit page needs beyond the counts.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    /// Decisive evidence kinds (field names, `inferred`, `none`) and how many messages each decided.
    pub evidence_kinds: BTreeMap<String, u64>,
    /// The first [`REVIEW_ROWS`] messages to review, in input order.
    pub review: Vec<ReviewRow>,
    /// How many messages there are to review in all.
    pub review_total: u64,
}

/// Counts for the summary, kept as the run goes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Messages read from the inputs.
    pub read: u64,
    /// Messages that reached at least one user.
    pub delivered: u64,
    /// Messages that went to the unassigned folder.
    pub unassigned: u64,
    /// Messages whose every destination already had the message (kept in `_duplicates`).
    pub duplicates: u64,
    /// Copies the messages went to, those already there from an earlier run included.
    pub copies: u64,
    /// Copies already in the output from an earlier run (not written again).
    pub previously: u64,
    /// Earlier copies moved into the folder the decisions now give them.
    pub moved: u64,
    /// Earlier copies removed, their right folder having them already.
    pub removed: u64,
    /// Messages whose split from their neighbours is uncertain (see the report).
    pub uncertain_splits: u64,
    /// Copies per user, by confidence in [`Confidence::ALL`] order.
    pub per_user: BTreeMap<String, [u64; 5]>,
    /// Bytes and dates per user (the copies are in `per_user`).
    pub figures: BTreeMap<String, Figures>,
}

/// What one folder received, beside its copies by confidence.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Figures {
    /// Bytes of the original messages (popsplit's added fields not counted).
    pub bytes: u64,
    /// Earliest arrival (seconds since the epoch), when any copy has one.
    pub first: Option<i64>,
    /// Latest arrival.
    pub last: Option<i64>,
}

impl Figures {
    /// Counts one copy of `bytes` that arrived at `arrival`.
    pub fn add(&mut self, bytes: u64, arrival: Option<i64>) {
        self.bytes += bytes;
        if let Some(t) = arrival {
            self.first = Some(self.first.map_or(t, |f| f.min(t)));
            self.last = Some(self.last.map_or(t, |l| l.max(t)));
        }
    }
}

/// `YYYY-MM-DD` (UTC) of `t` seconds since the epoch, or `-`.
pub fn day(t: Option<i64>) -> String {
    match t {
        Some(t) => {
            let (y, m, d) = crate::input::mbox::civil(t.div_euclid(86_400));
            format!("{y:04}-{m:02}-{d:02}")
        }
        None => "-".to_string(),
    }
}

impl Summary {
    /// Whether every message read is accounted for exactly once.
    pub fn conserved(&self) -> bool {
        self.read == self.delivered + self.unassigned + self.duplicates
            && self.copies == self.per_user.values().flat_map(|c| c.iter()).sum::<u64>()
    }

    /// Lists the users of the directory that received nothing, with 0: a person missing
    /// from the output is a finding.
    pub fn list_absent(&mut self, users: impl IntoIterator<Item = String>) {
        for u in users {
            self.per_user.entry(u).or_default();
        }
    }

    /// The width of the folder column: the longest folder name, at least 4.
    fn folder_width(&self) -> usize {
        self.per_user
            .keys()
            .map(|k| k.chars().count())
            .max()
            .unwrap_or(4)
            .max(4)
    }

    /// Per folder: messages, bytes, first and last arrival, one line each.
    pub fn figures_table(&self) -> String {
        let mut t = String::new();
        let width = self.folder_width();
        let _ = writeln!(
            t,
            "{:<width$}  {:>8}  {:>12}  {:<10}  last",
            "user", "messages", "bytes", "first"
        );
        for (user, c) in &self.per_user {
            let f = self.figures.get(user).copied().unwrap_or_default();
            let _ = writeln!(
                t,
                "{:<width$}  {:>8}  {:>12}  {:<10}  {}",
                one_line(user),
                c.iter().sum::<u64>(),
                f.bytes,
                day(f.first),
                day(f.last)
            );
        }
        t
    }

    /// Copies this run wrote: neither there before nor moved from another folder.
    pub fn written(&self) -> u64 {
        self.copies
            .saturating_sub(self.previously)
            .saturating_sub(self.moved)
    }

    /// The table printed at the end of a run; the `reviewed` column only when a person
    /// decided some message, so that a run without corrections reads as before.
    pub fn table(&self, dry_run: bool) -> String {
        let mut t = String::new();
        let width = self.folder_width();
        let reviewed = Confidence::Reviewed.index();
        let levels = match self.per_user.values().any(|c| c[reviewed] > 0) {
            true => Confidence::ALL.len(),
            false => reviewed,
        };
        // Seven wide, as the numbers of a large archive need; `reviewed` is one more.
        let cell = |name: &str| name.len().max(7);
        let _ = write!(t, "{:<width$}", "user");
        for c in &Confidence::ALL[..levels] {
            let _ = write!(t, "  {:>w$}", c.name(), w = cell(c.name()));
        }
        let _ = writeln!(t, "  {:>7}", "total");
        for (user, c) in &self.per_user {
            let _ = write!(t, "{:<width$}", one_line(user));
            for (n, level) in c[..levels].iter().zip(Confidence::ALL) {
                let _ = write!(t, "  {n:>w$}", w = cell(level.name()));
            }
            let _ = writeln!(t, "  {:>7}", c.iter().sum::<u64>());
        }
        let verb = if dry_run {
            "would be written"
        } else {
            "written"
        };
        let _ = writeln!(
            t,
            "messages read: {} = {} delivered to users + {} unassigned + {} set aside{}; {} {verb}, {} already there from an earlier run",
            self.read,
            self.delivered,
            self.unassigned,
            count(self.duplicates, "duplicate", "duplicates"),
            if self.conserved() { "" } else { "  MISMATCH" },
            count(self.written(), "copy", "copies"),
            self.previously,
        );
        if self.moved + self.removed > 0 {
            let (moved, removed) = match dry_run {
                true => ("would be moved", "would be removed"),
                false => ("moved", "removed"),
            };
            let _ = writeln!(
                t,
                "earlier copies in folders the decisions no longer give them: {} {moved} to their folder, {} {removed} (their folder had them already)",
                self.moved, self.removed
            );
        }
        if self.uncertain_splits > 0 {
            let _ = writeln!(
                t,
                "{} split from {} neighbours with doubt (a damaged mbox); see split_note in the report",
                count(self.uncertain_splits, "message was", "messages were"),
                if self.uncertain_splits == 1 {
                    "its"
                } else {
                    "their"
                }
            );
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conservation_holds_only_when_counts_add_up() {
        let mut s = Summary {
            read: 3,
            delivered: 1,
            unassigned: 1,
            duplicates: 1,
            copies: 3,
            ..Summary::default()
        };
        s.per_user.insert("alice".into(), [2, 0, 0, 0, 0]);
        s.per_user.insert("_unassigned".into(), [0, 0, 0, 1, 0]);
        assert!(s.conserved());
        let table = s.table(false);
        assert!(
            table.contains("messages read: 3 = 1 delivered to users + 1 unassigned + 1 duplicate"),
            "{table}"
        );
        assert!(table.contains("; 3 copies written"), "{table}");
        assert!(!table.contains("MISMATCH"));
        s.read = 4;
        assert!(!s.conserved());
        assert!(s.table(false).contains("MISMATCH"));
    }

    #[test]
    fn one_of_a_thing_is_said_in_the_singular() {
        let s = Summary {
            read: 2,
            delivered: 0,
            unassigned: 0,
            duplicates: 2,
            copies: 1,
            uncertain_splits: 1,
            ..Summary::default()
        };
        let table = s.table(false);
        assert!(
            table.contains("+ 2 duplicates set aside  MISMATCH; 1 copy written,"),
            "{table}"
        );
        assert!(
            table.contains("1 message was split from its neighbours with doubt"),
            "{table}"
        );
        assert_eq!(count(0, "copy", "copies"), "0 copies");
    }
}

//! What each delivered message adds to the summary, the audit page and the report.

use crate::config::Config;
use crate::decide::Confidence;
use crate::output::report::{Audit, Moved, REVIEW_ROWS, ReviewRow, Row, Summary, evidence_rows};
use crate::run::analyse::Decided;
use crate::run::duplicates::{Plan, user_of};
use crate::run::error::{SplitError, report_err};
use crate::run::rehome::Rehomed;
use crate::text::one_line;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// One message of a written batch: what its accounting and report row need.
pub(crate) struct Written<'a> {
    pub(crate) work: Decided<'a>,
    pub(crate) plan: Plan,
    /// The files written, for the report.
    pub(crate) files: Vec<PathBuf>,
    /// The planned folders that held the copy before this run.
    pub(crate) already: Vec<String>,
    pub(crate) rehomed: Rehomed,
}

/// Counts what decided the message, and lists it for review when it is unassigned or low.
pub(crate) fn note_audit(audit: &mut Audit, w: &Decided<'_>, p: &Plan) {
    let kind: Cow<'_, str> = if w.decision.confidence == Confidence::Reviewed {
        Cow::Borrowed("a person (--corrections)")
    } else if w.decision.inferred.is_some() {
        Cow::Borrowed("inferred from a thread or a list")
    } else if w.decision.users.is_empty() {
        Cow::Borrowed("nothing (unassigned)")
    } else {
        let mut names: Vec<&str> = w
            .facts
            .evidence
            .iter()
            .zip(&w.decision.judged)
            .filter(|(_, j)| j.verdict == crate::decide::Verdict::Decisive)
            .map(|(e, _)| {
                if e.kind == crate::evidence::Kind::ReceivedFor {
                    "Received for"
                } else {
                    &e.header
                }
            })
            .collect();
        names.sort();
        names.dedup();
        match names.as_slice() {
            [one] => Cow::Borrowed(*one),
            _ => Cow::Owned(names.join(" + ")),
        }
    };
    // Copied only for a kind not counted yet: a few kinds cover every message.
    match audit.evidence_kinds.get_mut(kind.as_ref()) {
        Some(n) => *n += 1,
        None => {
            audit.evidence_kinds.insert(kind.into_owned(), 1);
        }
    }
    if !p.set_aside && w.preview.is_some() {
        audit.review_total += 1;
        if audit.review.len() < REVIEW_ROWS {
            let evidence = w
                .facts
                .evidence
                .iter()
                .zip(&w.decision.judged)
                .map(|(e, j)| {
                    let field = match e.kind {
                        crate::evidence::Kind::ReceivedFor => "Received for",
                        _ => &e.header,
                    };
                    let verdict = serde_json::to_value(j.verdict)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    one_line(&format!(
                        "{field}: {} ({verdict})",
                        e.address.as_deref().unwrap_or("-")
                    ))
                })
                .collect();
            audit.review.push(ReviewRow {
                key: match &w.facts.message_id {
                    Some(id) => id.clone(),
                    None => format!("{}:{}", w.source, w.number),
                },
                arrival: w.arrival,
                from: w.facts.from.clone(),
                subject: w.facts.subject.clone(),
                folders: p.copies.iter().map(|(f, _)| f.clone()).collect(),
                confidence: w.decision.confidence,
                why: w.decisive.clone(),
                source: w.source.to_string(),
                index: w.number,
                evidence,
                list: w.facts.list_id.as_deref().map(one_line),
                body: w.preview.clone().unwrap_or_default(),
            });
        }
    }
}

pub(crate) fn account(summary: &mut Summary, m: &Written<'_>) {
    let (w, p, already, r) = (&m.work, &m.plan, m.already.len(), &m.rehomed);
    summary.read += 1;
    if p.set_aside {
        summary.duplicates += 1;
    } else if w.decision.users.is_empty() {
        summary.unassigned += 1;
    } else {
        summary.delivered += 1;
    }
    summary.uncertain_splits += u64::from(w.split_note.is_some());
    let level = w.decision.confidence.index();
    for (f, _) in &p.copies {
        summary.copies += 1;
        let user = user_of(f);
        summary.per_user.entry(user.to_string()).or_default()[level] += 1;
        summary
            .figures
            .entry(user.to_string())
            .or_default()
            .add(w.size, w.arrival);
    }
    summary.previously += already as u64;
    summary.moved += r.moved.len() as u64;
    summary.removed += r.removed.len() as u64;
}

pub(crate) fn write_row(out: &mut impl Write, m: &Written<'_>, root: &Path) -> io::Result<()> {
    let (w, p) = (&m.work, &m.plan);
    let (files, already, rehomed) = (&m.files, &m.already, &m.rehomed);
    let row = Row {
        source: &w.source,
        offset: w.offset,
        index: w.number,
        message_id: w.facts.message_id.as_deref(),
        from: &w.facts.from,
        subject: &w.facts.subject,
        arrival: w.arrival,
        decided: &w.decision.users,
        delivered_to: p.copies.iter().map(|(f, _)| f.as_str()).collect(),
        already: already.iter().map(String::as_str).collect(),
        duplicate_of: p.duplicate_of.clone(),
        confidence: w.decision.confidence,
        decisive: &w.decisive,
        split_note: w.split_note,
        evidence: evidence_rows(&w.facts.evidence, &w.decision),
        files: files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
            .collect(),
        moved: rehomed
            .moved
            .iter()
            .map(|(from, to)| Moved { from, to })
            .collect(),
        removed: rehomed.removed.iter().map(String::as_str).collect(),
    };
    serde_json::to_writer(&mut *out, &row)?;
    out.write_all(b"\n")
}

pub(crate) fn flush_report(
    report: &mut Option<BufWriter<File>>,
    config: &Config,
) -> Result<(), SplitError> {
    match (report.as_mut(), &config.report) {
        (Some(w), Some(p)) => w
            .flush()
            .and_then(|_| w.get_ref().sync_all())
            .map_err(|e| report_err(p, e)),
        _ => Ok(()),
    }
}

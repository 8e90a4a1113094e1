//! One message of pass 3, on a worker thread: gather its evidence, decide, apply a
//! person's correction, and keep what delivery and the report need.

use crate::decide::corrections::Corrections;
use crate::decide::inference::Inference;
use crate::decide::{Confidence, Context, Decision, decide};
use crate::evidence::{Facts, date, gather, identity};
use crate::input::mbox::FromLine;
use crate::input::{Message, Source};
use std::borrow::Cow;

/// One message after the parallel analysis.
pub(crate) struct Decided<'a> {
    /// The input, or the message's own file for Maildir and `.eml` sources.
    pub(crate) source: Cow<'a, str>,
    pub(crate) number: usize,
    pub(crate) offset: usize,
    pub(crate) content: Cow<'a, [u8]>,
    pub(crate) from_line: FromLine,
    pub(crate) facts: Facts,
    pub(crate) decision: Decision,
    /// The decisive evidence in words, for the added header, the report and the audit.
    pub(crate) decisive: String,
    /// Maildir flags: the source's own and those the mbox headers record.
    pub(crate) flags: String,
    pub(crate) arrival: Option<i64>,
    /// The message's size in bytes, as read (kept after its bytes are let go).
    pub(crate) size: u64,
    /// For a message the audit page lists for review, the first lines of its text.
    pub(crate) preview: Option<String>,
    /// Same message, whatever trace fields the copy carries (see [`identity`]).
    pub(crate) identity: [u8; 16],
    pub(crate) split_note: Option<&'static str>,
}

/// Gathers evidence (unless pass 1 `kept` it) and decides, for one message (runs on a
/// worker thread); `review`: keep the first lines of the text of a message to review (for
/// the audit page).
#[allow(clippy::too_many_arguments)]
pub(crate) fn analyse<'a>(
    source: &'a Source,
    m: Message<'a>,
    kept: Option<Facts>,
    mtime_is_arrival: bool,
    ctx: &Context<'_>,
    index: &Inference,
    corrections: Option<&Corrections>,
    review: bool,
) -> Decided<'a> {
    let facts = kept.unwrap_or_else(|| gather(&m.content));
    let mut decision = decide(&facts, ctx, &index.hints(&facts));
    let mut decisive = decision.decisive_summary(&facts.evidence);
    let name = || match m.file {
        Some(f) => f.display().to_string(),
        None => source.name.clone(),
    };
    let corrected = corrections
        .and_then(|c| Some((c, c.find(&name(), m.number, facts.message_id.as_deref())?)));
    if let Some((c, at)) = corrected {
        // A person's word replaces popsplit's; the evidence rows still say what the
        // header fields claimed, so the report shows both.
        if let Some(line) = c.get(at) {
            decision.users = line.users.clone();
            decision.confidence = Confidence::Reviewed;
            decision.inferred = None;
            decisive = c.evidence(at);
        }
    }
    let mut flags: Vec<char> = m.flags.chars().chain(facts.flags.chars()).collect();
    flags.sort_unstable();
    flags.dedup();
    // A Maildir file's mtime is when it arrived; an exported .eml's is when it was saved.
    let date = || date(&m.content);
    let arrival = match mtime_is_arrival {
        true => m.arrival.or_else(date),
        false => m.from_line.time.or_else(date).or(m.arrival),
    };
    Decided {
        source: match m.file {
            Some(f) => Cow::Owned(f.display().to_string()),
            None => Cow::Borrowed(source.name.as_str()),
        },
        number: m.number,
        offset: m.offset,
        identity: identity(&m.content, &facts),
        size: m.content.len() as u64,
        preview: (review && for_review(decision.confidence))
            .then(|| crate::output::html::preview(&m.content, facts.body_start)),
        content: m.content,
        from_line: m.from_line,
        facts,
        decisive,
        decision,
        flags: flags.into_iter().collect(),
        arrival,
        split_note: m.split_note,
    }
}

/// Whether the audit page lists a message of this confidence for review.
pub(crate) fn for_review(c: Confidence) -> bool {
    !matches!(c, Confidence::High)
}

//! `popsplit explain`: everything popsplit considered for one message, in words.

use crate::config::Config;
use crate::evidence::gather;
use crate::input::{Source, Unit};
use crate::run::analyse::analyse;
use crate::run::error::SplitError;
use crate::run::index::index;
use crate::run::learn::{Learned, corrections_for, learn_inputs};
use crate::text::count;
use crate::text::one_line;

/// Which message `explain` is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    /// Message `index` (1-based) of the input named `source` (`None`: the first input).
    /// The name is a report row's `source`: an input, or a Maildir or `.eml` message file.
    Number {
        /// The input or message file, by name.
        source: Option<String>,
        /// The message's position in its input.
        index: usize,
    },
    /// The first message with this Message-ID (with its angle brackets).
    MessageId(String),
}

/// Whether `wanted`, as the admin typed it, names the same file as `name`.
pub(crate) fn same_path(name: &str, wanted: &str) -> bool {
    name == wanted
        || std::fs::canonicalize(name)
            .ok()
            .is_some_and(|a| std::fs::canonicalize(wanted).ok() == Some(a))
}

/// The source and unit `which` names.
pub(crate) fn find<'s>(
    sources: &'s [Source],
    which: &Which,
) -> Result<(&'s Source, Unit), SplitError> {
    match which {
        Which::Number { source, index } => {
            let found = match source {
                None => sources.first(),
                Some(name) => sources.iter().find(|s| {
                    same_path(&s.name, name) || same_path(&s.message_name(*index), name)
                }),
            }
            .ok_or_else(|| {
                SplitError::Usage(format!(
                    "explain: no input is named {}; give a report row's `source` and `index` as FILE:N",
                    source.as_deref().unwrap_or("-")
                ))
            })?;
            let unit = found.units().nth(index.saturating_sub(1)).ok_or_else(|| {
                SplitError::Usage(format!("{} has no message {index}", found.name))
            })?;
            Ok((found, unit))
        }
        Which::MessageId(id) => {
            for source in sources {
                for unit in source.units() {
                    let head = source.read_head(&unit)?;
                    // Parsing every header block would be slow on a big box: only those
                    // holding the id's bytes are parsed.
                    if memchr::memmem::find(&head, id.as_bytes()).is_some()
                        && gather(&head).message_id.as_deref() == Some(id.as_str())
                    {
                        return Ok((source, unit));
                    }
                }
            }
            Err(SplitError::Usage(format!(
                "explain: no message has the Message-ID {}",
                one_line(id)
            )))
        }
    }
}

/// How a kind of evidence is called in `explain`.
pub(crate) fn kind_words(kind: crate::evidence::Kind) -> &'static str {
    use crate::evidence::Kind;
    match kind {
        Kind::Envelope(_) => "envelope field",
        Kind::ReceivedFor => "Received \"for\" clause",
        Kind::Content => "addressee field",
        Kind::Other => "X- field, envelope evidence only where the profile learned it",
    }
}

/// Everything popsplit considered for one message, and why it went where it went.
pub fn explain(config: &Config, which: Which) -> Result<String, SplitError> {
    use std::fmt::Write as _;
    let noop = |_: &'static str, _: u64| {};
    let Learned {
        sources,
        folders,
        profile,
        marks,
        kept,
        ..
    } = learn_inputs(config, &noop)?;
    let (source, unit) = find(&sources, &which)?;
    let folder = sources
        .iter()
        .position(|s| std::ptr::eq(s, source))
        .and_then(|at| folders.get(at))
        .filter(|f| !f.is_empty());
    let ctx = config.context(&profile);
    let corrections = corrections_for(config, &sources)?;
    let index = index(&sources, &ctx, &marks, &kept, &noop)?;
    let w = analyse(
        source,
        source.read(&unit)?,
        kept.get(&source.name, unit.position()).cloned(),
        source.mtime_is_arrival(),
        &ctx,
        &index,
        corrections.as_ref(),
        false,
    );
    let trusted = profile.trusted_hops(&w.facts.hops, config.policy.trusted_hops);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "message {} of {} (byte offset {})",
        w.number, w.source, w.offset
    );
    let _ = writeln!(
        t,
        "  Message-ID: {}",
        w.facts.message_id.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(t, "  From: {}", w.facts.from);
    let _ = writeln!(t, "  Subject: {}", w.facts.subject);
    if let Some(note) = w.split_note {
        let _ = writeln!(t, "  split: {note}");
    }
    let hosts: Vec<&str> = w
        .facts
        .hops
        .iter()
        .map(|h| h.by.as_deref().unwrap_or("(no host)"))
        .collect();
    let _ = writeln!(
        t,
        "  Received by (top first): {}",
        one_line(&hosts.join(", "))
    );
    let basis = if profile.relays.is_empty() {
        "fixed depth, no relays learned".to_string()
    } else {
        format!("relays: {}", profile.relays.join(", "))
    };
    let _ = writeln!(t, "  trusted Received fields: the top {trusted} ({basis})");
    if w.facts.is_list {
        let _ = writeln!(
            t,
            "  mailing-list mail (List-Id: {})",
            w.facts.list_id.as_deref().unwrap_or("-")
        );
    }
    let _ = writeln!(t, "  evidence:");
    if w.facts.evidence.is_empty() {
        let _ = writeln!(t, "    none");
    }
    for (e, j) in w.facts.evidence.iter().zip(&w.decision.judged) {
        let canonical = j
            .canonical
            .as_deref()
            .map(|c| format!(" = {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "    {}: {}{canonical}  [{}, {} above{}]\n      → {}",
            e.header,
            e.address.as_deref().unwrap_or("(no address)"),
            kind_words(e.kind),
            count(e.depth as u64, "Received field", "Received fields"),
            if e.salvaged { ", salvaged" } else { "" },
            j.verdict.explain()
        );
    }
    let dest = if w.decision.users.is_empty() {
        config.unassigned.as_str().to_string()
    } else {
        w.decision.users.join(", ")
    };
    let _ = writeln!(
        t,
        "  decision: {dest} (confidence {})",
        w.decision.confidence.name()
    );
    let _ = writeln!(t, "  because: {}", one_line(&w.decisive));
    if let Some(levels) = folder {
        let _ = writeln!(
            t,
            "  folder: {} (`{}` in each Maildir; INBOX with --flatten)",
            one_line(&levels.join("/")),
            crate::folders::maildir_name(levels)
        );
    }
    Ok(t)
}

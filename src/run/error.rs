//! Why a run stopped, and what it had written by then, in words.

use crate::config::{Config, OutputFormat};
use crate::decide::corrections::CorrectionsError;
use crate::input::SourceError;
use crate::output::outfs::DeliverError;
use crate::output::report::Summary;
use crate::run::analyse::Decided;
use crate::text::count;
use std::io;
use std::path::Path;

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// An input could not be opened or read.
    #[error("{0}")]
    Input(#[from] SourceError),
    /// The command line asks for something unsafe.
    #[error("{0}")]
    Usage(String),
    /// The output tree could not be prepared or synced.
    #[error("{source}\n{progress}")]
    Output {
        /// The failure.
        source: DeliverError,
        /// What had been written by then.
        progress: String,
    },
    /// A copy could not be written.
    #[error("{path}: message {index} (byte offset {offset}): {source}\n{progress}")]
    Deliver {
        /// The input.
        path: String,
        /// The message's index in it.
        index: usize,
        /// The message's byte offset in it.
        offset: usize,
        /// The failure.
        source: DeliverError,
        /// What had been written by then.
        progress: String,
    },
    /// The report could not be written.
    #[error("report {path}: {source}")]
    Report {
        /// The report file.
        path: String,
        /// What the system said.
        source: io::Error,
    },
    /// The audit page could not be written (the output itself is complete).
    #[error("--html {path}: {source} (the output itself is complete)")]
    Html {
        /// The page.
        path: String,
        /// What the system said.
        source: io::Error,
    },
    /// Ctrl-C or SIGTERM stopped the run between two batches.
    #[error("stopped by {}: {progress}", crate::run::interrupt::name(*signal))]
    Interrupted {
        /// The signal.
        signal: i32,
        /// What had been written by then.
        progress: String,
    },
    /// A line of the corrections file is wrong, or names no message of the inputs.
    #[error("{0}")]
    Corrections(#[from] CorrectionsError),
    /// The counts do not add up: some message is unaccounted for.
    #[error("conservation check failed:\n{0}")]
    Conservation(String),
}

/// The error for a copy of `w` that could not be written or moved, after `summary`.
pub(crate) fn stop(summary: &Summary, w: &Decided<'_>, source: DeliverError) -> SplitError {
    SplitError::Deliver {
        path: w.source.to_string(),
        index: w.number,
        offset: w.offset,
        source,
        progress: done_so_far(summary, 0),
    }
}

/// What a run stopped by a signal had done, and how to finish the job.
pub(crate) fn stopped(summary: &Summary, config: &Config) -> String {
    let messages = count(
        summary.delivered + summary.unassigned + summary.duplicates,
        "message",
        "messages",
    );
    let report = if config.report.is_some() {
        "; the report lists them, each on a whole line"
    } else {
        ""
    };
    match (config.dry_run, config.output) {
        (true, _) => {
            format!("{messages} decided{report}. Rerun the same command to decide them all.")
        }
        (false, OutputFormat::Maildir) => format!(
            "{} of {messages} written, complete and durable{report}. Rerun the same command to finish the job: the copies already there are recognised and not written again.",
            count(summary.copies - summary.previously, "copy", "copies"),
        ),
        (false, OutputFormat::Mbox) => format!(
            "{messages} written into .partial files{report}. Rerun the same command to finish the job: it writes the mbox files again from the start."
        ),
    }
}

/// What a stopped run had written: the batches landed, and `moved` copies of the failing
/// batches that their commit had moved into `cur/` before it failed.
pub(crate) fn done_so_far(summary: &Summary, moved: usize) -> String {
    let failing = match moved {
        0 => "no copy of the failing batches reached cur/".to_string(),
        n => format!(
            "{} of the failing batches {} moved into cur/ before the failure (complete, maybe not yet synced)",
            count(n as u64, "copy", "copies"),
            if n == 1 { "was" } else { "were" }
        ),
    };
    let copies = summary.copies - summary.previously;
    format!(
        "{} of {} {} written, complete and durable; {failing}. Rerun the same command after fixing the cause: what is there is recognised and not written again.",
        count(copies, "copy", "copies"),
        count(
            summary.delivered + summary.unassigned + summary.duplicates,
            "message",
            "messages"
        ),
        if copies == 1 { "was" } else { "were" },
    )
}

pub(crate) fn report_err(path: &Path, source: io::Error) -> SplitError {
    SplitError::Report {
        path: path.display().to_string(),
        source,
    }
}

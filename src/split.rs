//! The `split` job: wires read → split → gather evidence → decide → deliver → report.
//!
//! Messages go through in batches: evidence and decisions in parallel, then duplicate
//! detection in input order on one thread (so reruns decide the same), then delivery in
//! parallel, then report rows in input order.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use crate::decide::{Confidence, Decision, Policy, decide};
use crate::deliver::{DeliverError, Outbox};
use crate::directory::Directory;
use crate::evidence::{Facts, gather};
use crate::mbox::{FromLine, MboxError, Span, Splitter, parse_from_line, unquote};
use crate::report::{FirstSeen, Row, Summary, evidence_rows};
use crate::sanitize::one_line;

/// Messages per batch, and bytes per batch: enough to keep every core busy, few enough
/// that a batch's decisions and copies stay small in memory.
const BATCH_MESSAGES: usize = 1024;
const BATCH_BYTES: usize = 64 << 20;

/// What one `split` run is asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// mbox files to read.
    pub inputs: Vec<PathBuf>,
    /// Root of the per-user Maildirs.
    pub out: PathBuf,
    /// The office's domains and users.
    pub directory: Directory,
    /// Folder for messages that name no user (starts with `_`).
    pub unassigned: String,
    /// Where to write the JSON Lines report.
    pub report: Option<PathBuf>,
    /// Decide and report only.
    pub dry_run: bool,
    /// Decision settings.
    pub policy: Policy,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// An input could not be opened or mapped.
    #[error("{path}: {source}")]
    Open {
        /// The input.
        path: String,
        /// What the system said.
        source: io::Error,
    },
    /// An input is not an mbox.
    #[error("{path}: {source}")]
    NotMbox {
        /// The input.
        path: String,
        /// Where and why.
        source: MboxError,
    },
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
    /// The counts do not add up: some message is unaccounted for.
    #[error("conservation check failed:\n{0}")]
    Conservation(String),
}

/// An opened input: the whole file mapped read-only.
struct Input {
    name: String,
    map: Option<Mmap>,
}

impl Input {
    fn open(path: &Path) -> Result<Self, SplitError> {
        let name = path.display().to_string();
        let open_err = |source| SplitError::Open {
            path: name.clone(),
            source,
        };
        let file = File::open(path).map_err(open_err)?;
        let len = file.metadata().map_err(open_err)?.len();
        // SAFETY: the map is read-only and private to this process. If another process
        // truncates the file while popsplit runs, reading the lost pages raises SIGBUS; the
        // README tells admins to run on an export nobody is writing to.
        let map = if len == 0 {
            None
        } else {
            Some(unsafe { Mmap::map(&file) }.map_err(open_err)?)
        };
        let input = Input { name, map };
        Splitter::new(input.bytes()).map_err(|source| SplitError::NotMbox {
            path: input.name.clone(),
            source,
        })?;
        Ok(input)
    }

    fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }
}

/// One message after the parallel analysis.
struct Work<'a> {
    span: Span,
    content: Cow<'a, [u8]>,
    from_line: FromLine,
    facts: Facts,
    decision: Decision,
}

impl Work<'_> {
    fn arrival(&self) -> Option<i64> {
        self.from_line.time.or(self.facts.date)
    }
}

/// Folder for copies whose every destination already holds the same message: they are
/// kept, byte for byte, rather than dropped, so that no input message is ever lost.
pub const DUPLICATES: &str = "_duplicates";

/// Where one message's copies go after duplicates are set aside.
struct Plan {
    folders: Vec<String>,
    duplicate_of: Option<FirstSeen>,
    /// Every destination had the message already: the copy goes to [`DUPLICATES`].
    set_aside: bool,
}

/// A message already delivered in this run, by identity.
struct Seen {
    first: FirstSeen,
    folders: Vec<String>,
}

/// Runs the job, calling `progress` with the input bytes finished after each batch.
pub fn run(config: &Config, progress: &(dyn Fn(u64) + Sync)) -> Result<Summary, SplitError> {
    check_paths(config)?;
    let inputs = config
        .inputs
        .iter()
        .map(|p| Input::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut outbox = match config.dry_run {
        true => None,
        false => Some(
            Outbox::open(&config.out).map_err(|source| SplitError::Output {
                source,
                progress: "nothing was written".into(),
            })?,
        ),
    };
    let mut report = match &config.report {
        Some(p) => Some(BufWriter::new(
            File::create(p).map_err(|source| report_err(p, source))?,
        )),
        None => None,
    };
    let mut summary = Summary::default();
    let mut seen: HashMap<[u8; 16], Seen> = HashMap::new();
    for input in &inputs {
        let data = input.bytes();
        let mut spans = Splitter::new(data).map_err(|source| SplitError::NotMbox {
            path: input.name.clone(),
            source,
        })?;
        loop {
            let batch = next_batch(&mut spans);
            if batch.is_empty() {
                break;
            }
            let batch_bytes: usize = batch
                .iter()
                .map(|s| s.trailer.end - s.from_line.start)
                .sum();
            let work: Vec<Work<'_>> = batch
                .into_par_iter()
                .map(|span| analyse(data, span, config))
                .collect();
            let plans: Vec<Plan> = work
                .iter()
                .map(|w| plan(w, &input.name, &config.unassigned, &mut seen))
                .collect();
            let mut results: Vec<Result<Vec<PathBuf>, DeliverError>> = Vec::new();
            if let Some(outbox) = outbox.as_mut() {
                for folder in plans.iter().flat_map(|p| &p.folders) {
                    outbox
                        .prepare(folder)
                        .map_err(|source| SplitError::Output {
                            source,
                            progress: written(&summary),
                        })?;
                }
                let outbox = &*outbox;
                results = work
                    .par_iter()
                    .zip(&plans)
                    .map(|(w, p)| deliver(outbox, w, p))
                    .collect();
            }
            let mut results = results.into_iter();
            for (w, p) in work.iter().zip(&plans) {
                let files = match results.next() {
                    None => Vec::new(),
                    Some(Ok(files)) => files,
                    Some(Err(source)) => {
                        // Later messages of the batch were written in parallel: count them.
                        let copies_after: usize =
                            results.filter_map(Result::ok).map(|f| f.len()).sum();
                        summary.copies += copies_after as u64;
                        flush_report(&mut report, config)?;
                        return Err(SplitError::Deliver {
                            path: input.name.clone(),
                            index: w.span.number,
                            offset: w.span.from_line.start,
                            source,
                            progress: written(&summary),
                        });
                    }
                };
                account(&mut summary, w, p);
                if let Some(out) = report.as_mut() {
                    write_row(out, &input.name, w, p, files, &config.out).map_err(|e| {
                        report_err(config.report.as_deref().unwrap_or(Path::new("")), e)
                    })?;
                }
            }
            progress(batch_bytes as u64);
        }
    }
    if let Some(outbox) = &outbox {
        outbox.sync().map_err(|source| SplitError::Output {
            source,
            progress: written(&summary),
        })?;
    }
    flush_report(&mut report, config)?;
    if !summary.conserved() {
        return Err(SplitError::Conservation(summary.table(config.dry_run)));
    }
    Ok(summary)
}

/// Refuses a command line whose report would overwrite an input.
fn check_paths(config: &Config) -> Result<(), SplitError> {
    let canon = |p: &Path| std::fs::canonicalize(p).ok();
    let report = config.report.as_deref().and_then(canon);
    match config
        .inputs
        .iter()
        .find(|i| report.is_some() && canon(i) == report)
    {
        Some(input) => Err(SplitError::Usage(format!(
            "--report {} is the input {}; popsplit never writes to its input",
            config.report.as_deref().unwrap_or(Path::new("")).display(),
            input.display()
        ))),
        None => Ok(()),
    }
}

fn report_err(path: &Path, source: io::Error) -> SplitError {
    SplitError::Report {
        path: path.display().to_string(),
        source,
    }
}

fn flush_report(report: &mut Option<BufWriter<File>>, config: &Config) -> Result<(), SplitError> {
    match (report.as_mut(), &config.report) {
        (Some(w), Some(p)) => w
            .flush()
            .and_then(|_| w.get_ref().sync_all())
            .map_err(|e| report_err(p, e)),
        _ => Ok(()),
    }
}

/// The next batch of spans, bounded in count and bytes.
fn next_batch(spans: &mut Splitter<'_>) -> Vec<Span> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
        let Some(span) = spans.next() else { break };
        bytes += span.trailer.end - span.from_line.start;
        batch.push(span);
    }
    batch
}

/// Gathers evidence and decides, for one message (runs on a worker thread).
fn analyse<'a>(data: &'a [u8], span: Span, config: &Config) -> Work<'a> {
    let content = unquote(&data[span.content.clone()]);
    let from_line = parse_from_line(&data[span.from_line.clone()]);
    let facts = gather(&content);
    let decision = decide(&facts.evidence, &config.directory, &config.policy);
    Work {
        span,
        content,
        from_line,
        facts,
        decision,
    }
}

/// Chooses the folders of one message, leaving out those that already hold an identical
/// earlier copy (the box got one copy per envelope recipient).
fn plan(w: &Work<'_>, source: &str, unassigned: &str, seen: &mut HashMap<[u8; 16], Seen>) -> Plan {
    let wanted: Vec<String> = match w.decision.users.is_empty() {
        true => vec![unassigned.to_string()],
        false => w.decision.users.clone(),
    };
    let entry = seen.entry(w.facts.identity).or_insert_with(|| Seen {
        first: FirstSeen {
            source: source.to_string(),
            index: w.span.number,
        },
        folders: Vec::new(),
    });
    let folders: Vec<String> = wanted
        .iter()
        .filter(|f| !entry.folders.contains(f))
        .cloned()
        .collect();
    let duplicate_of = (folders.len() < wanted.len()).then(|| entry.first.clone());
    entry.folders.extend(folders.iter().cloned());
    match folders.is_empty() {
        true => Plan {
            folders: vec![DUPLICATES.to_string()],
            duplicate_of,
            set_aside: true,
        },
        false => Plan {
            folders,
            duplicate_of,
            set_aside: false,
        },
    }
}

/// Writes one message's copies.
fn deliver(outbox: &Outbox, w: &Work<'_>, p: &Plan) -> Result<Vec<PathBuf>, DeliverError> {
    let added = added_headers(w, p);
    p.folders
        .iter()
        .map(|folder| {
            let mailbox = outbox
                .mailbox(folder)
                .ok_or_else(|| DeliverError::Refused {
                    path: PathBuf::from(folder),
                    why: "Maildir was not prepared",
                })?;
            mailbox.deliver(
                &added,
                &w.content,
                &w.facts.flags,
                w.decision.confidence,
                w.arrival(),
            )
        })
        .collect()
}

/// The fields popsplit puts on top of a delivered copy, in the message's own line ending.
/// Every value is made one safe line, so no header can be injected through them.
fn added_headers(w: &Work<'_>, p: &Plan) -> Vec<u8> {
    let eol = if w.facts.crlf { "\r\n" } else { "\n" };
    let mut out = format!(
        "X-Popsplit-Confidence: {}{eol}X-Popsplit-Evidence: {}{eol}",
        w.decision.confidence.name(),
        one_line(&w.decision.decisive_summary(&w.facts.evidence)),
    );
    if let (true, Some(first)) = (p.set_aside, &p.duplicate_of) {
        let first = one_line(&format!("{} message {}", first.source, first.index));
        out.push_str(&format!("X-Popsplit-Duplicate-Of: {first}{eol}"));
    }
    if !w.facts.has_return_path && !w.from_line.sender.is_empty() {
        let sender = one_line(&w.from_line.sender).replace(['<', '>', ' '], "");
        let sender = if sender.eq_ignore_ascii_case("MAILER-DAEMON") {
            String::new()
        } else {
            sender
        };
        out.push_str(&format!("Return-Path: <{sender}>{eol}"));
    }
    out.into_bytes()
}

fn account(summary: &mut Summary, w: &Work<'_>, p: &Plan) {
    summary.read += 1;
    if p.set_aside {
        summary.duplicates += 1;
    } else if w.decision.users.is_empty() {
        summary.unassigned += 1;
    } else {
        summary.delivered += 1;
    }
    let level = Confidence::ALL
        .iter()
        .position(|c| *c == w.decision.confidence)
        .unwrap_or(3);
    for f in &p.folders {
        summary.copies += 1;
        summary.per_user.entry(f.clone()).or_default()[level] += 1;
    }
}

fn write_row(
    out: &mut impl Write,
    source: &str,
    w: &Work<'_>,
    p: &Plan,
    files: Vec<PathBuf>,
    root: &Path,
) -> io::Result<()> {
    let decisive = w.decision.decisive_summary(&w.facts.evidence);
    let row = Row {
        source,
        offset: w.span.from_line.start,
        index: w.span.number,
        message_id: w.facts.message_id.as_deref(),
        from: &w.facts.from,
        subject: &w.facts.subject,
        arrival: w.arrival(),
        decided: &w.decision.users,
        delivered_to: p.folders.iter().map(String::as_str).collect(),
        duplicate_of: p.duplicate_of.clone(),
        confidence: w.decision.confidence,
        decisive: &decisive,
        evidence: evidence_rows(&w.facts.evidence, &w.decision),
        files: files
            .iter()
            .map(|f| f.strip_prefix(root).unwrap_or(f).display().to_string())
            .collect(),
    };
    serde_json::to_writer(&mut *out, &row)?;
    out.write_all(b"\n")
}

/// One sentence on what a stopped run had written.
fn written(summary: &Summary) -> String {
    format!(
        "{} copies of {} messages were written and are complete; the messages after them were not written (see --report for the list of completed messages)",
        summary.copies,
        summary.delivered + summary.unassigned,
    )
}

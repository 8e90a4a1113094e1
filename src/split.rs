//! The `split` job: wires read → split → gather evidence → decide → deliver → report.
//!
//! Three passes over the mapped inputs, each in parallel batches: learn the mailbox
//! profile; decide every message once to index threads and lists (for inference); then
//! decide for good and deliver. Within a batch of the last pass, duplicate detection runs
//! in input order on one thread (so reruns decide the same), delivery in parallel, and
//! report rows are written in input order. Parsing is cheap next to writing files, so the
//! extra passes cost little.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use rayon::prelude::*;

use crate::decide::{Confidence, Context, Decision, Hints, Policy, decide};
use crate::deliver::{DeliverError, Outbox};
use crate::directory::Directory;
use crate::evidence::{Facts, gather};
use crate::mbox::{FromLine, MboxError, Span, Splitter, parse_from_line, unquote};
use crate::profile::{Overrides, Profile, Stats};
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
    /// What the admin says instead of what the profile learns.
    pub overrides: Overrides,
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
pub struct Input {
    /// The path as given.
    pub name: String,
    map: Option<Mmap>,
}

impl Input {
    /// Opens and maps `path`, checking that it is an mbox.
    pub fn open(path: &Path) -> Result<Self, SplitError> {
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

    /// The file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// The message spans of the file.
    pub fn spans(&self) -> Splitter<'_> {
        // Checked in `open`; an mbox stays one while it is mapped read-only.
        Splitter::new(self.bytes()).unwrap_or_else(|_| Splitter::empty())
    }
}

/// Opens every input before anything is written, so a bad one stops the run early.
pub fn open_inputs(paths: &[PathBuf]) -> Result<Vec<Input>, SplitError> {
    paths.iter().map(|p| Input::open(p)).collect()
}

/// Calls `each` with every batch of message spans of every input, in order.
fn batches<'a, E>(
    inputs: &'a [Input],
    mut each: impl FnMut(&'a Input, Vec<Span>) -> Result<(), E>,
) -> Result<(), E> {
    for input in inputs {
        let mut spans = input.spans();
        loop {
            let batch = next_batch(&mut spans);
            if batch.is_empty() {
                break;
            }
            each(input, batch)?;
        }
    }
    Ok(())
}

fn span_bytes(batch: &[Span]) -> u64 {
    batch
        .iter()
        .map(|s| (s.trailer.end - s.from_line.start) as u64)
        .sum()
}

/// Pass 1: learns the mailbox profile from every message.
pub fn learn(
    inputs: &[Input],
    dir: &Directory,
    over: &Overrides,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Profile {
    let mut stats = Stats::default();
    let _ = batches::<()>(inputs, |input, batch| {
        let data = input.bytes();
        let part = batch
            .par_iter()
            .fold(Stats::default, |mut st, span| {
                st.add(&gather(&unquote(&data[span.content.clone()])), &dir.domains);
                st
            })
            .reduce(Stats::default, Stats::merge);
        stats = std::mem::take(&mut stats).merge(part);
        progress("learning", span_bytes(&batch));
        Ok(())
    });
    stats.learn(dir, over)
}

/// What other messages say about threads and lists, for inference.
#[derive(Debug, Default)]
struct Index {
    /// Message-ID hash → (local sender's user, recipients decided from evidence).
    threads: HashMap<u64, (Option<String>, Vec<String>)>,
    /// List-Id → users that envelope evidence gave its messages to, with counts.
    lists: HashMap<String, HashMap<String, u32>>,
}

impl Index {
    fn add(&mut self, facts: &Facts, d: &Decision, dir: &Directory) {
        let sender = facts
            .from_address
            .as_deref()
            .and_then(|a| crate::address::localize(a, &dir.domains))
            .map(|l| dir.users(&l))
            .filter(|u| u.len() == 1)
            .and_then(|mut u| u.pop());
        let sure = matches!(d.confidence, Confidence::High | Confidence::Medium);
        let recipients = if sure { d.users.clone() } else { Vec::new() };
        if facts.id_hash != 0 && (sender.is_some() || !recipients.is_empty()) {
            self.threads.insert(facts.id_hash, (sender, recipients));
        }
        if let (Some(list), Confidence::High, [user]) =
            (&facts.list_id, d.confidence, d.users.as_slice())
        {
            *self
                .lists
                .entry(list.clone())
                .or_default()
                .entry(user.clone())
                .or_default() += 1;
        }
    }

    fn merge(mut self, other: Index) -> Index {
        self.threads.extend(other.threads);
        for (list, users) in other.lists {
            let mine = self.lists.entry(list).or_default();
            for (u, n) in users {
                *mine.entry(u).or_default() += n;
            }
        }
        self
    }

    /// The inference a message's thread and list allow: one user each, or none.
    fn hints(&self, facts: &Facts) -> Hints {
        let list = facts
            .list_id
            .as_ref()
            .filter(|_| facts.is_list)
            .and_then(|l| self.lists.get(l))
            .filter(|users| users.len() == 1)
            .and_then(|users| users.iter().next())
            .filter(|(_, n)| **n >= 2)
            .map(|(u, _)| u.clone());
        let mut thread: Vec<&String> = facts
            .parents
            .iter()
            .filter_map(|p| self.threads.get(p))
            .filter_map(
                |(sender, recipients)| match (sender, recipients.as_slice()) {
                    (Some(s), _) => Some(s),
                    (None, [one]) => Some(one),
                    _ => None,
                },
            )
            .collect();
        thread.sort();
        thread.dedup();
        let thread = match thread.as_slice() {
            [one] => Some((*one).clone()),
            _ => None,
        };
        Hints { thread, list }
    }
}

/// Pass 2: decides every message without inference, to index threads and lists.
fn index(
    inputs: &[Input],
    ctx: &Context<'_>,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Index {
    let mut index = Index::default();
    let none = Hints::default();
    let _ = batches::<()>(inputs, |input, batch| {
        let data = input.bytes();
        let part = batch
            .par_iter()
            .fold(Index::default, |mut ix, span| {
                let facts = gather(&unquote(&data[span.content.clone()]));
                ix.add(&facts, &decide(&facts, ctx, &none), ctx.dir);
                ix
            })
            .reduce(Index::default, Index::merge);
        index = std::mem::take(&mut index).merge(part);
        progress("indexing", span_bytes(&batch));
        Ok(())
    });
    index
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

/// What a finished run learned and did.
#[derive(Debug)]
pub struct Outcome {
    /// The mailbox profile the decisions used.
    pub profile: Profile,
    /// The counts.
    pub summary: Summary,
}

/// Runs the job, calling `progress` with a phase name and the input bytes it finished.
pub fn run(
    config: &Config,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Result<Outcome, SplitError> {
    check_paths(config)?;
    let inputs = open_inputs(&config.inputs)?;
    let profile = learn(&inputs, &config.directory, &config.overrides, progress);
    let ctx = Context {
        dir: &config.directory,
        profile: &profile,
        policy: &config.policy,
    };
    let index = index(&inputs, &ctx, progress);
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
    batches(&inputs, |input, batch| {
        let data = input.bytes();
        let batch_bytes = span_bytes(&batch);
        let work: Vec<Work<'_>> = batch
            .into_par_iter()
            .map(|span| analyse(data, span, &ctx, &index))
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
                    let copies_after: usize = results.filter_map(Result::ok).map(|f| f.len()).sum();
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
        progress("delivering", batch_bytes);
        Ok(())
    })?;
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
    Ok(Outcome { profile, summary })
}

/// Which message `--explain` is about: its input (index into the inputs) and 1-based index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Which {
    /// Index of the input file.
    pub input: usize,
    /// 1-based index of the message in it.
    pub index: usize,
}

/// Everything popsplit considered for one message, and why it went where it went.
pub fn explain(config: &Config, which: Which) -> Result<String, SplitError> {
    use std::fmt::Write as _;
    let inputs = open_inputs(&config.inputs)?;
    let input = inputs
        .get(which.input)
        .ok_or_else(|| SplitError::Usage("--explain names no input".into()))?;
    let span = input
        .spans()
        .find(|s| s.number == which.index)
        .ok_or_else(|| {
            SplitError::Usage(format!("{} has no message {}", input.name, which.index))
        })?;
    let noop = |_: &'static str, _: u64| {};
    let profile = learn(&inputs, &config.directory, &config.overrides, &noop);
    let ctx = Context {
        dir: &config.directory,
        profile: &profile,
        policy: &config.policy,
    };
    let index = index(&inputs, &ctx, &noop);
    let w = analyse(input.bytes(), span, &ctx, &index);
    let trusted = profile.trusted_hops(&w.facts.hops, config.policy.trusted_hops);
    let mut t = String::new();
    let _ = writeln!(
        t,
        "message {} of {} (byte offset {})",
        w.span.number, input.name, w.span.from_line.start
    );
    let _ = writeln!(
        t,
        "  Message-ID: {}",
        w.facts.message_id.as_deref().unwrap_or("(none)")
    );
    let _ = writeln!(t, "  From: {}", w.facts.from);
    let _ = writeln!(t, "  Subject: {}", w.facts.subject);
    let hosts: Vec<&str> = w.facts.hops.iter().map(|h| h.by.as_str()).collect();
    let _ = writeln!(t, "  Received by (top first): {}", hosts.join(", "));
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
    for (i, e) in w.facts.evidence.iter().enumerate() {
        let canonical = w.decision.canonical[i]
            .as_deref()
            .map(|c| format!(" = {c}"))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "    {}: {}{canonical}  [{:?}, {} Received above{}]\n      → {}",
            e.header,
            e.address.as_deref().unwrap_or("(no address)"),
            e.kind,
            e.depth,
            if e.salvaged { ", salvaged" } else { "" },
            w.decision.verdicts[i].explain()
        );
    }
    let dest = if w.decision.users.is_empty() {
        config.unassigned.clone()
    } else {
        w.decision.users.join(", ")
    };
    let _ = writeln!(
        t,
        "  decision: {dest} (confidence {})",
        w.decision.confidence.name()
    );
    let _ = writeln!(
        t,
        "  because: {}",
        one_line(&w.decision.decisive_summary(&w.facts.evidence))
    );
    Ok(t)
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
fn analyse<'a>(data: &'a [u8], span: Span, ctx: &Context<'_>, index: &Index) -> Work<'a> {
    let content = unquote(&data[span.content.clone()]);
    let from_line = parse_from_line(&data[span.from_line.clone()]);
    let facts = gather(&content);
    let decision = decide(&facts, ctx, &index.hints(&facts));
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

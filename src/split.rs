//! The `split` job: wires read → split → gather evidence → decide → deliver → report.
//!
//! Three passes over the inputs, each in parallel batches: learn the mailbox profile (while
//! an mbox is still being split or inflated); decide the messages inference can use, to
//! index threads and lists; then decide every message for good and deliver, batch k while
//! batch k+1 is read and analysed. Within a batch of the last pass, duplicate detection
//! runs in input order on one thread (so reruns decide the same), copies are written in
//! parallel into `tmp/`; a thread of its own makes them durable and renames them into
//! `cur/` while the next batch is written; then the batch's report rows are written in
//! input order. Whole-run state is kept to numbers and fixed-size bitmaps, so memory is
//! mostly the batches in flight, with a few dozen bytes a message besides.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::corrections::{Corrections, CorrectionsError};
use crate::decide::{Confidence, Context, Decision, Hints, Policy, decide};
use crate::deliver::{CommitError, Copy, DeliverError, Outbox, Staged, SyncPolicy};
use crate::directory::Directory;
use crate::evidence::{Facts, gather, identity};
use crate::mbox::FromLine;
use crate::mbox::Span;
use crate::mboxwrite::MboxOut;
use crate::outfs::Root;
use crate::profile::{Overrides, Profile, Stats};
use crate::rehome::Earlier;
use crate::report::{
    Audit, FirstSeen, Moved, REVIEW_ROWS, ReviewRow, Row, Summary, count, evidence_rows,
};
use crate::sanitize::one_line;
use crate::source::{self, Format, Message, Source, SourceError, Unit};

/// Messages per batch, and bytes per batch: enough to keep every core busy, few enough
/// that a batch's messages in flight stay small in memory.
const BATCH_MESSAGES: usize = 1024;
const BATCH_BYTES: u64 = 32 << 20;

/// What one `split` run is asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mailboxes to read.
    pub inputs: Vec<PathBuf>,
    /// How to read them.
    pub format: Format,
    /// Where compressed inputs are inflated.
    pub temp_dir: PathBuf,
    /// Root of the per-user Maildirs.
    pub out: PathBuf,
    /// The office's domains and users.
    pub directory: Directory,
    /// The CSV the directory was read from, which no output may overwrite.
    pub directory_file: Option<PathBuf>,
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
    /// How written copies are made durable.
    pub sync: SyncPolicy,
    /// What to write.
    pub output: Output,
    /// Where to write the HTML audit page.
    pub html: Option<PathBuf>,
    /// The command line, as the audit page shows it.
    pub command: String,
    /// A person's decisions (`--corrections`), which override popsplit's.
    pub corrections: Option<Corrections>,
    /// Every copy in the user's INBOX, instead of the Maildir++ subfolder that stands for
    /// the source's folder (`--flatten`).
    pub flatten: bool,
}

/// The form of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// One Maildir per user (for an IMAP server).
    Maildir,
    /// One mboxrd file per user (for a mail client or an import tool).
    Mbox,
}

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
    #[error("stopped by {}: {progress}", crate::interrupt::name(*signal))]
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

/// Opens every input (before anything is written, so a bad one stops the run early) and
/// learns the mailbox profile from every message: pass 1. Mbox inputs are learned from
/// while they are still being split (or inflated). Also returns notes on files skipped
/// inside folders, and the marks pass 2 needs.
pub fn open_and_learn(
    paths: &[PathBuf],
    format: Format,
    temp: &Path,
    dir: &Directory,
    over: &Overrides,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Result<Opened, SplitError> {
    let mut skipped = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut folders = Vec::new();
    let mut stats = Stats::default();
    let mut marks = Marks::default();
    let mut learn = |name: &str, first: bool, facts: &[Facts], bytes: u64| {
        stats = std::mem::take(&mut stats).merge(learn_from(facts, dir));
        marks.add(name, first, facts);
        progress("learning", bytes);
    };
    let mut learn_early = |name: &str, data: &[u8], spans: &[Span]| {
        let facts: Vec<Facts> = spans
            .par_iter()
            .map(|s| gather(&source::head_of(data, s)))
            .collect();
        let first = spans.first().is_some_and(|s| s.number == 1);
        learn(name, first, &facts, spans.iter().map(Span::size).sum());
    };
    for p in paths {
        let opened = source::open(p, format, temp, &mut skipped, &mut learn_early)?;
        folders.extend(opened.iter().map(|s| source_folder(p, &s.name)));
        sources.extend(opened);
    }
    batches(&sources, |_, source, batch, bytes| {
        if source.seen_early() {
            return Ok(());
        }
        let facts = heads(source, &batch)?;
        let first = batch.first().is_some_and(|u| u.position() == 0);
        learn(&source.name, first, &facts, bytes);
        source.release(&batch);
        Ok(())
    })?;
    Ok(Opened {
        sources,
        folders,
        skipped,
        profile: stats.learn(dir, over),
        marks,
    })
}

/// The inputs opened and learned from (pass 1).
pub struct Opened {
    /// The mailboxes, in input order.
    pub sources: Vec<Source>,
    /// The folder of each source in the shared box, as levels below INBOX.
    pub folders: Vec<Vec<String>>,
    /// Notes on files inside input folders that are not mail.
    pub skipped: Vec<String>,
    /// What the mailbox as a whole shows.
    pub profile: Profile,
    /// What pass 2 needs.
    pub marks: Marks,
}

/// The folder of the source `name` found in the input `input`, as levels below INBOX
/// ([`crate::folders::source_folder`]). A source inside a file of the input is a folder
/// of an Outlook file.
fn source_folder(input: &Path, name: &str) -> Vec<String> {
    let given = input.display().to_string();
    let Some(rel) = name.strip_prefix(given.as_str()) else {
        return Vec::new();
    };
    let mut parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Vec::new();
    }
    let mut base = input.to_path_buf();
    let input_name = input.file_name().map(|n| n.to_string_lossy());
    if input.is_file() {
        // The input itself holds the folders (an Outlook file): the path starts at it.
        let Some(n) = input_name.as_deref() else {
            return Vec::new();
        };
        parts.insert(0, n);
        base.pop();
    }
    let inside_file = (0..parts.len().saturating_sub(1)).find(|&i| {
        parts[..=i]
            .iter()
            .fold(base.clone(), |p, c| p.join(c))
            .is_file()
    });
    crate::folders::source_folder(&parts, inside_file)
}

/// The facts of a batch's header blocks, in order.
fn heads(source: &Source, batch: &[Unit]) -> Result<Vec<Facts>, SplitError> {
    batch
        .par_iter()
        .map(|u| source.read_head(u).map(|head| gather(&head)))
        .collect::<Result<_, _>>()
        .map_err(SplitError::from)
}

fn learn_from(facts: &[Facts], dir: &Directory) -> Stats {
    facts
        .par_iter()
        .fold(Stats::default, |mut st, f| {
            st.add(f, dir);
            st
        })
        .reduce(Stats::default, Stats::merge)
}

/// What pass 1 keeps for pass 2, so that pass 2 decides only the messages inference can
/// use (those another message refers to, and list mail) instead of all: each message's
/// Message-ID hash (or [`ON_A_LIST`]) by source, and the Message-IDs referred to.
#[derive(Default)]
pub struct Marks {
    ids: HashMap<String, Vec<u64>>,
    referred: Referred,
    /// For pass 3: which messages may have a copy elsewhere in the inputs.
    repeats: Repeats,
}

/// The mark of a message with a List-Id.
const ON_A_LIST: u64 = u64::MAX;

impl Marks {
    /// Adds the next messages of the source `name` (from its first when `first`).
    fn add(&mut self, name: &str, first: bool, facts: &[Facts]) {
        let ids = self.ids.entry(name.to_string()).or_default();
        if first {
            // The same file given twice: its marks are the same.
            ids.clear();
        }
        for f in facts {
            self.repeats.add(&f.header_key);
            for p in &f.parents {
                self.referred.insert(*p);
            }
            ids.push(if f.list_id.is_some() {
                ON_A_LIST
            } else {
                f.id_hash
            });
        }
    }

    /// Whether pass 2 must decide the message at 0-based `pos` of the source `name`.
    fn wanted(&self, name: &str, pos: usize) -> bool {
        match self.ids.get(name).and_then(|ids| ids.get(pos)) {
            None | Some(&ON_A_LIST) => true,
            Some(0) => false,
            Some(id) => self.referred.maybe(*id),
        }
    }
}

/// Which messages may share their Message-ID (or From, Date and Subject) with another: only
/// those can be duplicates, so only those need a place in the duplicate index, which would
/// otherwise hold every message of the archive. Two fixed bitmaps of 8 MB, pages touched
/// only as used: "maybe" for some messages that have no twin, never "no" for one that has.
struct Repeats {
    once: Bits,
    twice: Bits,
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats {
            once: Bits::new(Repeats::BITS),
            twice: Bits::new(Repeats::BITS),
        }
    }
}

impl Repeats {
    const BITS: usize = 1 << 26;

    fn slot(key: &[u8; 16]) -> usize {
        // The key is a BLAKE3 digest: any 26 of its bits are uniform.
        (u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]) as usize)
            & (Repeats::BITS - 1)
    }

    fn add(&mut self, key: &[u8; 16]) {
        let b = Repeats::slot(key);
        if self.once.get(b) {
            self.twice.set(b);
        }
        self.once.set(b);
    }

    fn maybe(&self, key: &[u8; 16]) -> bool {
        self.twice.get(Repeats::slot(key))
    }
}

/// A fixed bitmap whose pages are touched only as bits are set.
struct Bits(Vec<u64>);

impl Bits {
    fn new(bits: usize) -> Self {
        Bits(vec![0; bits / 64])
    }

    fn set(&mut self, b: usize) {
        self.0[b / 64] |= 1 << (b % 64);
    }

    fn get(&self, b: usize) -> bool {
        self.0[b / 64] & (1 << (b % 64)) != 0
    }
}

/// Message-IDs other messages refer to, in a fixed 2 MB whatever the archive's size: it
/// may say "maybe" of one nobody refers to (pass 2 then decides one message more), never
/// "no" of one somebody does.
struct Referred(Bits);

impl Default for Referred {
    fn default() -> Self {
        Referred(Bits::new(Referred::BITS))
    }
}

impl Referred {
    const BITS: usize = 1 << 24;

    fn slot(id: u64) -> usize {
        // Fibonacci hashing: the top bits of the product depend on every bit of the hash.
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize
    }

    fn insert(&mut self, id: u64) {
        self.0.set(Referred::slot(id));
    }

    fn maybe(&self, id: u64) -> bool {
        self.0.get(Referred::slot(id))
    }
}

/// Matches every line of `corrections` with messages of the inputs, before anything is
/// written: a line that names no message is an error, and a line that names a message by
/// `source:index` learns its Message-ID, to reach its other copies. Reads header blocks only.
fn meet_corrections(
    sources: &[Source],
    corrections: &Corrections,
) -> Result<Corrections, SplitError> {
    let mut c = corrections.clone();
    let mut matched = vec![false; c.len()];
    batches(sources, |_, source, batch, _| {
        let facts = heads(source, &batch)?;
        for (u, f) in batch.iter().zip(&facts) {
            let number = u.position() + 1;
            let name = source.message_name(number);
            if let Some(at) = c.meet(&name, number, f.message_id.as_deref())? {
                matched[at] = true;
            }
        }
        source.release(&batch);
        Ok(())
    })?;
    c.unmatched(&matched)?;
    Ok(c)
}

/// Calls `each` with every batch of message units of every source, in order.
fn batches<'a>(
    sources: &'a [Source],
    mut each: impl FnMut(usize, &'a Source, Vec<Unit>, u64) -> Result<(), SplitError>,
) -> Result<(), SplitError> {
    for (at, source) in sources.iter().enumerate() {
        let mut units = source.units().peekable();
        while units.peek().is_some() {
            let (mut batch, mut bytes) = (Vec::new(), 0);
            while batch.len() < BATCH_MESSAGES && bytes < BATCH_BYTES {
                let Some(u) = units.next() else { break };
                bytes += source.unit_bytes(&u);
                batch.push(u);
            }
            each(at, source, batch, bytes)?;
            source.unchanged()?;
        }
    }
    Ok(())
}

/// Reads a batch in parallel, in order.
fn read_batch<'a>(source: &'a Source, batch: &[Unit]) -> Result<Vec<Message<'a>>, SplitError> {
    batch
        .par_iter()
        .map(|u| source.read(u).map_err(SplitError::from))
        .collect()
}

/// A thread entry for a message that went to several users.
const SEVERAL: u32 = u32::MAX;

/// What other messages say about threads and lists, for inference.
#[derive(Debug, Default)]
struct Index {
    /// Message-ID hash → the one user a reply to it may be for: the local sender, or else
    /// the one recipient evidence decided. Kept for the whole run, so an entry is a
    /// number into `users` rather than a name.
    threads: HashMap<u64, u32>,
    /// The users `threads` names.
    users: Names,
    /// List-Id → users that envelope evidence gave its messages to, with counts.
    lists: HashMap<String, HashMap<String, u32>>,
}

impl Index {
    fn add(&mut self, facts: &Facts, d: &Decision, dir: &Directory) {
        let sender = facts
            .from_address
            .as_deref()
            .map(|a| dir.users(a))
            .filter(|u| u.len() == 1)
            .and_then(|mut u| u.pop());
        let sure = matches!(d.confidence, Confidence::High | Confidence::Medium);
        let id = match (sender, d.users.as_slice()) {
            (Some(s), _) => Some(self.users.intern(&s)),
            (None, [one]) if sure => Some(self.users.intern(one)),
            // Several sure recipients: a reply names none of them alone.
            (None, [_, _, ..]) if sure => Some(SEVERAL),
            _ => None,
        };
        if let (Some(id), true) = (id, facts.id_hash != 0) {
            self.threads.insert(facts.id_hash, id);
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
        for (message, id) in other.threads {
            let id = match other.users.get(id) {
                Some(user) => self.users.intern(user),
                None => SEVERAL,
            };
            self.threads.insert(message, id);
        }
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
        let mut thread: Vec<u32> = facts
            .parents
            .iter()
            .filter_map(|p| self.threads.get(p).copied())
            .filter(|id| *id != SEVERAL)
            .collect();
        thread.sort_unstable();
        thread.dedup();
        let thread = match thread.as_slice() {
            [one] => self.users.get(*one).map(str::to_string),
            _ => None,
        };
        Hints { thread, list }
    }
}

/// Pass 2: decides, without inference, the messages inference can use (see [`Marks`]), to
/// index threads and lists.
fn index(
    sources: &[Source],
    ctx: &Context<'_>,
    marks: &Marks,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Result<Index, SplitError> {
    let none = Hints::default();
    let mut index = Index::default();
    batches(sources, |_, source, batch, bytes| {
        let wanted: Vec<&Unit> = batch
            .iter()
            .filter(|u| marks.wanted(&source.name, u.position()))
            .collect();
        let part = wanted
            .par_iter()
            .map(|u| source.read_head(u).map(|head| gather(&head)))
            .try_fold(Index::default, |mut ix, facts| {
                let facts = facts?;
                ix.add(&facts, &decide(&facts, ctx, &none), ctx.dir);
                Ok::<_, SourceError>(ix)
            })
            .try_reduce(Index::default, |a, b| Ok(a.merge(b)))?;
        index = std::mem::take(&mut index).merge(part);
        source.release(&batch);
        progress("indexing", bytes);
        Ok(())
    })
    .map(|()| index)
}

/// One message after the parallel analysis.
struct Work<'a> {
    /// The input, or the message's own file for Maildir and `.eml` sources.
    source: Cow<'a, str>,
    number: usize,
    offset: usize,
    content: Cow<'a, [u8]>,
    from_line: FromLine,
    facts: Facts,
    decision: Decision,
    /// The decisive evidence in words, for the added header, the report and the audit.
    decisive: String,
    /// Maildir flags: the source's own and those the mbox headers record.
    flags: String,
    arrival: Option<i64>,
    /// The message's size in bytes, as read (kept after its bytes are let go).
    size: u64,
    /// For a message the audit page lists for review, the first lines of its text.
    preview: Option<String>,
    /// Same message, whatever trace fields the copy carries (see [`identity`]).
    identity: [u8; 16],
    split_note: Option<&'static str>,
}

/// Folder for copies whose every destination already holds the same message: they are
/// kept, byte for byte, rather than dropped, so that no input message is ever lost.
pub const DUPLICATES: &str = "_duplicates";

/// Where one message's copies go after duplicates are set aside.
struct Plan {
    /// (folder, key) of each copy.
    copies: Vec<(String, String)>,
    duplicate_of: Option<FirstSeen>,
    /// Every destination had the message already: the copy goes to [`DUPLICATES`].
    set_aside: bool,
}

/// Names kept for the whole run, each stored once and referred to by number.
#[derive(Debug, Default)]
struct Names {
    names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Names {
    fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        id
    }

    fn get(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

/// The messages delivered so far in this run that may have a copy elsewhere, by identity.
/// An entry holds numbers (about 40 bytes), not names.
struct Delivered {
    seen: HashMap<[u8; 16], Seen>,
    folders: Names,
    /// The messages that may have a copy elsewhere: the others never enter `seen`.
    repeats: Repeats,
}

/// [`Seen::folder`] of a message no folder holds yet.
const NO_FOLDER: u32 = u32::MAX;

/// Where the first copy of a message was, and the folders that hold it.
struct Seen {
    /// The first copy: position of its source and its 1-based index there.
    source: u32,
    number: u64,
    /// The first folder, or [`NO_FOLDER`] before any; most messages have just one.
    folder: u32,
    more: Box<[u32]>,
    /// Copies of the message set aside so far.
    set_aside: u32,
}

impl Seen {
    fn holds(&self, folder: u32) -> bool {
        self.folder == folder || self.more.contains(&folder)
    }

    fn add(&mut self, folder: u32) {
        match self.folder {
            NO_FOLDER => self.folder = folder,
            // Rare (one message, several users), so a tight slice beats a Vec's spare room.
            _ => self.more = self.more.iter().copied().chain([folder]).collect(),
        }
    }
}

/// What a finished run learned and did.
#[derive(Debug)]
pub struct Outcome {
    /// The mailbox profile the decisions used.
    pub profile: Profile,
    /// The counts.
    pub summary: Summary,
    /// Files inside input folders that were not mail.
    pub skipped: Vec<String>,
    /// What the audit page shows beyond the counts.
    pub audit: Audit,
    /// User folders in the output that the directory has no user for: an earlier run's,
    /// made with another directory, that still hold mail after this run's moves.
    pub earlier: Vec<String>,
    /// In a dry run, each earlier copy that a real run would move or remove, in words.
    pub would: Vec<String>,
    /// popsplit's copies in `--out` that no decision of this run claimed (messages not in
    /// these inputs, or set aside earlier): left alone.
    pub unclaimed: usize,
}

/// Stops before anything is written when a `--domain` names no address in the mailbox: a
/// typo there would send every message to `_unassigned`.
fn check_domains(profile: &Profile, over: &Overrides) -> Result<(), SplitError> {
    if profile.unseen_domains.is_empty() || profile.messages == 0 || over.allow_unseen_domain {
        return Ok(());
    }
    let seen: Vec<String> = profile
        .domains_seen
        .iter()
        .map(|s| format!("{} ({} messages)", one_line(&s.name), s.messages))
        .collect();
    Err(SplitError::Usage(format!(
        "no address in the mailbox is at --domain {}; its envelope fields and To/Cc name most often: {}. Check the spelling, or pass --allow-unseen-domain to run anyway",
        profile.unseen_domains.join(", "),
        if seen.is_empty() {
            "nothing".to_string()
        } else {
            seen.join(", ")
        }
    )))
}

/// Runs the job, calling `progress` with a phase name and the input bytes it finished.
pub fn run(
    config: &Config,
    progress: &(dyn Fn(&'static str, u64) + Sync),
) -> Result<Outcome, SplitError> {
    check_paths(config)?;
    let nothing = |source| SplitError::Output {
        source,
        progress: "nothing was written".into(),
    };
    // An output that exists is locked before the inputs are read, so that a second run on
    // it stops at once; one that does not is made only once every input proved readable.
    let locked = match (config.dry_run, config.out.is_dir()) {
        (false, true) => Some(Root::open(&config.out).map_err(nothing)?),
        _ => None,
    };
    let Opened {
        sources,
        folders,
        skipped,
        profile,
        marks,
    } = open_and_learn(
        &config.inputs,
        config.format,
        &config.temp_dir,
        &config.directory,
        &config.overrides,
        progress,
    )?;
    // An mbox file per user has no folders: mbox output is flat, as `--flatten`.
    let subfolders: Vec<String> = match config.flatten || config.output == Output::Mbox {
        true => vec![String::new(); sources.len()],
        false => folders
            .iter()
            .map(|f| crate::folders::maildir_name(f))
            .collect(),
    };
    check_domains(&profile, &config.overrides)?;
    let ctx = Context {
        dir: &config.directory,
        profile: &profile,
        policy: &config.policy,
    };
    let corrections = match &config.corrections {
        Some(c) => Some(meet_corrections(&sources, c)?),
        None => None,
    };
    let index = index(&sources, &ctx, &marks, progress)?;
    let Marks { repeats, .. } = marks;
    crate::interrupt::writing();
    let root = || match locked {
        Some(root) => Ok(root),
        None => Root::open(&config.out).map_err(nothing),
    };
    let (outbox, mboxes) = match (config.dry_run, config.output) {
        (true, _) => (None, None),
        (false, Output::Maildir) => (Some(Outbox::open(root()?)), None),
        (false, Output::Mbox) => (None, Some(MboxOut::open(root()?))),
    };
    // Listed once the output is locked and before anything is written, so that only
    // earlier runs' copies are in it.
    let earlier = match config.output {
        Output::Maildir => Some(Earlier::scan(&config.out).map_err(nothing)?),
        Output::Mbox => None,
    };
    let report = match &config.report {
        Some(p) => Some(BufWriter::new(
            create_private(p).map_err(|source| report_err(p, source))?,
        )),
        None => None,
    };
    let mut d = Delivery {
        config,
        sources: &sources,
        subfolders: &subfolders,
        outbox,
        mboxes,
        report,
        summary: Summary::default(),
        audit: Audit::default(),
        seen: Delivered {
            seen: HashMap::new(),
            folders: Names::default(),
            repeats,
        },
        earlier,
        would: Vec::new(),
        in_flight: None,
    };
    // Batch k is written while batch k+1 is read and analysed, and committed while batch
    // k+1 is written: the disk (syncfs) and the renames wait, and the CPU fills that time.
    let mut pending: Option<Analysed<'_>> = None;
    // Once per source: it looks at every file's folder.
    let arrival: Vec<bool> = sources.iter().map(Source::mtime_is_arrival).collect();
    let written = batches(&sources, |at, source, batch, bytes| {
        if let Some(signal) = crate::interrupt::requested() {
            return Err(SplitError::Interrupted {
                signal,
                progress: String::new(),
            });
        }
        let (next, done) = rayon::join(
            || -> Result<Analysed<'_>, SplitError> {
                let messages = read_batch(source, &batch)?;
                let mtime_is_arrival = arrival[at];
                let work = messages
                    .into_par_iter()
                    .map(|m| {
                        analyse(
                            source,
                            m,
                            mtime_is_arrival,
                            &ctx,
                            &index,
                            corrections.as_ref(),
                            config.html.is_some(),
                        )
                    })
                    .collect();
                Ok(Analysed {
                    at,
                    source,
                    batch,
                    bytes,
                    work,
                })
            },
            || pending.take().map_or(Ok(()), |p| d.deliver(p, progress)),
        );
        done?;
        pending = Some(next?);
        Ok(())
    })
    .and_then(|()| pending.take().map_or(Ok(()), |p| d.deliver(p, progress)));
    // Also when reading a later batch failed: the batch being committed is finished and
    // counted before the run stops, not cut off by the process's exit.
    let landed = d.land(progress);
    if let Err(SplitError::Interrupted { signal, .. }) = written {
        landed?;
        flush_report(&mut d.report, config)?;
        return Err(SplitError::Interrupted {
            signal,
            progress: stopped(&d.summary, config),
        });
    }
    written?;
    landed?;
    let Delivery {
        mboxes,
        mut report,
        summary,
        audit,
        earlier,
        would,
        ..
    } = d;
    if let Some(out) = mboxes {
        out.finish(config.sync)
            .map_err(|source| SplitError::Output {
                source,
                progress:
                    "the mbox files are complete as .partial files; rerun to write them again"
                        .into(),
            })?;
    }
    flush_report(&mut report, config)?;
    let mut summary = summary;
    if let Some(users) = config.directory.listed_users() {
        summary.list_absent(users);
    }
    if !summary.conserved() {
        return Err(SplitError::Conservation(summary.table(config.dry_run)));
    }
    if let Some(path) = &config.html {
        let page = crate::html::render(
            &summary,
            &audit,
            &profile,
            &config.directory,
            &config.command,
            config.corrections.as_ref(),
        );
        create_private(path)
            .and_then(|mut f| f.write_all(page.as_bytes()))
            .map_err(|source| SplitError::Html {
                path: path.display().to_string(),
                source,
            })?;
    }
    Ok(Outcome {
        profile,
        summary,
        skipped,
        audit,
        earlier: earlier_folders(config),
        would,
        unclaimed: earlier.as_ref().map_or(0, Earlier::unclaimed),
    })
}

/// User folders (Maildirs, or `<user>.mbox` files) in the output that the directory has
/// no user for. A rerun with another directory decides anew but never moves or removes a
/// copy, so the admin must hear that the earlier copies are still there.
fn earlier_folders(config: &Config) -> Vec<String> {
    if config.dry_run || !config.directory.is_closed() {
        return Vec::new();
    }
    let Ok(entries) = std::fs::read_dir(&config.out) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            match config.output {
                // Emptied by this run's moves: nothing left to check there.
                Output::Maildir => {
                    (e.file_type().ok()?.is_dir() && holds_mail(&e.path())).then_some(name)
                }
                Output::Mbox => name.strip_suffix(".mbox").map(str::to_string),
            }
        })
        .filter(|n| !n.starts_with(['_', '.']) && !config.directory.has_user(n))
        .collect();
    names.sort();
    names
}

/// Whether the Maildir `base` or one of its Maildir++ folders has a file in `cur/` or
/// `new/`.
fn holds_mail(base: &Path) -> bool {
    let has_files = |maildir: &Path| {
        ["cur", "new"]
            .iter()
            .any(|sub| std::fs::read_dir(maildir.join(sub)).is_ok_and(|mut d| d.next().is_some()))
    };
    has_files(base)
        || std::fs::read_dir(base).is_ok_and(|entries| {
            entries.filter_map(Result::ok).any(|e| {
                e.file_name().to_string_lossy().starts_with('.')
                    && e.file_type().is_ok_and(|t| t.is_dir())
                    && has_files(&e.path())
            })
        })
}

/// A batch read and analysed, waiting to be delivered.
struct Analysed<'a> {
    at: usize,
    source: &'a Source,
    batch: Vec<Unit>,
    bytes: u64,
    work: Vec<Work<'a>>,
}

/// The output side of pass 3: what is written, counted and reported, batch by batch.
struct Delivery<'c> {
    config: &'c Config,
    sources: &'c [Source],
    /// The Maildir++ subfolder of each source's copies (`""`: INBOX).
    subfolders: &'c [String],
    outbox: Option<Outbox>,
    mboxes: Option<MboxOut>,
    report: Option<BufWriter<File>>,
    summary: Summary,
    audit: Audit,
    seen: Delivered,
    /// popsplit's copies already in `--out` (Maildir output only), for moves on a rerun.
    earlier: Option<Earlier>,
    /// In a dry run, what would be moved or removed, in words.
    would: Vec<String>,
    /// The batch last written, whose commit may still be running.
    in_flight: Option<InFlight<'c>>,
}

/// A written batch: its commit (running in a thread of its own, when it writes a Maildir)
/// and what its accounting and report rows need once the commit is done.
struct InFlight<'a> {
    work: Vec<Work<'a>>,
    plans: Vec<Plan>,
    files: Vec<Vec<PathBuf>>,
    already: Vec<Vec<String>>,
    rehomed: Vec<Rehomed>,
    bytes: u64,
    commit: Option<std::thread::JoinHandle<Result<(), CommitError>>>,
}

/// One message's earlier copies that this run moved or removed (or, dry, would).
#[derive(Debug, Default)]
struct Rehomed {
    /// (from, to), relative to `--out`.
    moved: Vec<(String, String)>,
    /// Removed files, relative to `--out`.
    removed: Vec<String>,
    /// The folders a moved copy now fills, which need no new copy.
    filled: Vec<String>,
    /// The planned folders that held the copy before this run (what a dry run reports as
    /// already there).
    present: Vec<String>,
}

impl<'c> Delivery<'c> {
    /// Sets duplicates aside (in input order), writes the copies, reports every message.
    fn deliver(
        &mut self,
        a: Analysed<'c>,
        progress: &(dyn Fn(&'static str, u64) + Sync),
    ) -> Result<(), SplitError> {
        let config = self.config;
        // The batch was split as the file was when opened: an append since would deliver
        // its last message cut off.
        a.source.unchanged()?;
        let work = &a.work;
        let plans: Vec<Plan> = work
            .iter()
            .map(|w| {
                let sub = self.subfolders.get(a.at).map_or("", String::as_str);
                let to = Destination {
                    source: a.at,
                    unassigned: &config.unassigned,
                    sub,
                };
                plan(w, &to, &mut self.seen, self.sources)
            })
            .collect();
        let mut files: Vec<Vec<PathBuf>> = vec![Vec::new(); work.len()];
        let mut already: Vec<Vec<String>> = vec![Vec::new(); work.len()];
        let mut rehomed: Vec<Rehomed> = Vec::new();
        rehomed.resize_with(work.len(), Rehomed::default);
        if let Some(out) = self.mboxes.as_mut() {
            // One file per folder, appended in input order: nothing to gain from threads.
            for (i, (w, p)) in work.iter().zip(&plans).enumerate() {
                let added = added_headers(w, p);
                for (folder, _) in &p.copies {
                    let path = out
                        .write(folder, &w.from_line.sender, w.arrival, &added, &w.content)
                        .map_err(|source| match a.source.unchanged() {
                            Err(changed) => SplitError::from(changed),
                            Ok(()) => SplitError::Deliver {
                            path: w.source.to_string(),
                            index: w.number,
                            offset: w.offset,
                            source,
                            progress: "no mbox file was completed: the output is written as .partial files and renamed at the end".into(),
                        }})?;
                    files[i].push(path);
                }
            }
        }
        let mut commit = None;
        if let Some(outbox) = self.outbox.as_mut() {
            for (folder, _) in plans.iter().flat_map(|p| &p.copies) {
                outbox
                    .prepare(folder)
                    .map_err(|source| SplitError::Output {
                        source,
                        progress: written(&self.summary, 0),
                    })?;
            }
            let outbox = &*outbox;
            for (i, p) in plans.iter().enumerate() {
                for (folder, key) in &p.copies {
                    if outbox.mailbox(folder).is_some_and(|m| m.has(key)) {
                        already[i].push(folder.clone());
                    }
                }
            }
            if let Some(earlier) = self.earlier.as_mut() {
                rehomed = rehome(earlier, Some(outbox), work, &plans, config)
                    .map_err(|(i, e)| stop(&self.summary, &work[i], e))?;
            }
            let skips: Vec<Vec<String>> = already
                .iter()
                .zip(&rehomed)
                .map(|(a, r)| a.iter().chain(&r.filled).cloned().collect())
                .collect();
            let staged: Vec<Result<Vec<Staged>, DeliverError>> = work
                .par_iter()
                .zip(&plans)
                .zip(&skips)
                .map(|((w, p), skip)| stage(outbox, w, p, skip, config.sync))
                .collect();
            let job = outbox.commit(config.sync);
            let mut ready = Vec::with_capacity(staged.len());
            for (i, s) in staged.into_iter().enumerate() {
                match s {
                    Ok(s) => ready.push(s),
                    Err(e) => {
                        // Nothing of this batch is in cur/ yet: a failure leaves only tmp/
                        // files, which the next run removes. The batch before is landed
                        // first, so that the count in the message is true.
                        self.land(progress)?;
                        // Writing from a map whose file was cut short fails (EFAULT):
                        // say the cause rather than "bad address".
                        a.source.unchanged()?;
                        return Err(self.stop(&work[i], e));
                    }
                }
            }
            for (i, r) in ready.iter().enumerate() {
                files[i] = r.iter().map(|s| s.path.clone()).collect();
            }
            // The commit before must end before this one starts: one batch in flight.
            self.land(progress)?;
            let spawned = std::thread::Builder::new()
                .name("commit".into())
                .spawn(move || job.run(&ready))
                .map_err(|e| SplitError::Output {
                    source: DeliverError::Io {
                        path: config.out.clone(),
                        source: e,
                    },
                    progress: written(&self.summary, 0),
                })?;
            commit = Some(spawned);
        }
        if let (None, Some(earlier)) = (self.outbox.as_ref(), self.earlier.as_mut()) {
            // A dry run: what a real run would move, from the listing alone.
            rehomed = rehome(earlier, None, work, &plans, config)
                .map_err(|(i, e)| stop(&self.summary, &work[i], e))?;
            for (r, a) in rehomed.iter().zip(already.iter_mut()) {
                a.clone_from(&r.present);
                for (from, to) in &r.moved {
                    self.would.push(format!("would move {from} to {to}"));
                }
                for gone in &r.removed {
                    self.would.push(format!(
                        "would remove {gone} (its right folder has the copy)"
                    ));
                }
            }
        }
        a.source.done(&a.batch);
        let mut work = a.work;
        for w in &mut work {
            // The copies are written: the rows need the facts, not the bytes.
            w.content = Cow::Borrowed(&[]);
        }
        self.in_flight = Some(InFlight {
            work,
            plans,
            files,
            already,
            rehomed,
            bytes: a.bytes,
            commit,
        });
        if self.outbox.is_none() {
            self.land(progress)?;
        }
        Ok(())
    }

    /// Waits for the batch in flight to be committed, then counts and reports it.
    fn land(&mut self, progress: &(dyn Fn(&'static str, u64) + Sync)) -> Result<(), SplitError> {
        let Some(f) = self.in_flight.take() else {
            return Ok(());
        };
        if let Some(commit) = f.commit {
            let done = commit.join().unwrap_or_else(|_| {
                Err(CommitError {
                    message: None,
                    moved: 0,
                    source: DeliverError::Io {
                        path: self.config.out.clone(),
                        source: io::Error::other("the commit thread stopped"),
                    },
                })
            });
            if let Err(e) = done {
                let progress = written(&self.summary, e.moved);
                return Err(match e.message.and_then(|i| f.work.get(i)) {
                    Some(w) => SplitError::Deliver {
                        path: w.source.to_string(),
                        index: w.number,
                        offset: w.offset,
                        source: e.source,
                        progress,
                    },
                    None => SplitError::Output {
                        source: e.source,
                        progress,
                    },
                });
            }
        }
        let config = self.config;
        for (i, (w, p)) in f.work.iter().zip(&f.plans).enumerate() {
            account(&mut self.summary, w, p, f.already[i].len(), &f.rehomed[i]);
            note_audit(&mut self.audit, w, p);
            if let Some(out) = self.report.as_mut() {
                let done = (
                    f.files[i].as_slice(),
                    f.already[i].as_slice(),
                    &f.rehomed[i],
                );
                write_row(out, w, p, done, &config.out).map_err(|e| {
                    report_err(config.report.as_deref().unwrap_or(Path::new("")), e)
                })?;
            }
        }
        progress("delivering", f.bytes);
        Ok(())
    }

    /// The error for a copy of `w` that could not be written or moved.
    fn stop(&self, w: &Work<'_>, source: DeliverError) -> SplitError {
        stop(&self.summary, w, source)
    }
}

/// The error for a copy of `w` that could not be written or moved, after `summary`.
fn stop(summary: &Summary, w: &Work<'_>, source: DeliverError) -> SplitError {
    SplitError::Deliver {
        path: w.source.to_string(),
        index: w.number,
        offset: w.offset,
        source,
        progress: written(summary, 0),
    }
}

/// Makes the earlier copies of a batch's messages match the current decisions: each
/// copy of a message in a folder its plan does not name is renamed into a planned folder
/// that lacks the copy, or removed when none does. Claims every planned copy that is
/// there. With no `outbox` (a dry run), only says what it would do. On failure, the
/// position of the message in the batch.
///
/// With the source's folders kept, a message's stray copies are looked for only in the
/// same folder of other users: the same message in another folder of the shared box (a
/// copy filed in `Archive`) is a copy of its own, which that folder's source claims.
fn rehome(
    earlier: &mut Earlier,
    outbox: Option<&Outbox>,
    work: &[Work<'_>],
    plans: &[Plan],
    config: &Config,
) -> Result<Vec<Rehomed>, (usize, DeliverError)> {
    let sync = config.sync;
    let any_folder = config.flatten;
    let present: Vec<Vec<bool>> = plans
        .iter()
        .map(|p| p.copies.iter().map(|(f, k)| earlier.claim(f, k)).collect())
        .collect();
    let mut rehomed: Vec<Rehomed> = plans
        .iter()
        .zip(&present)
        .map(|(p, there)| Rehomed {
            present: p
                .copies
                .iter()
                .zip(there)
                .filter(|(_, t)| **t)
                .map(|((f, _), _)| f.clone())
                .collect(),
            ..Rehomed::default()
        })
        .collect();
    if !earlier.has_unclaimed() {
        return Ok(rehomed);
    }
    // Stray copies are looked for in every other folder that still holds unclaimed
    // copies: one hash of the header block per message and folder, in parallel.
    let shared = &*earlier;
    let strays: Vec<Vec<(String, String)>> = work
        .par_iter()
        .zip(plans)
        .map(|(w, p)| {
            // Set-aside copies are extra copies, nobody's mail: they stay where they are.
            let planned: Vec<String> = p.copies.iter().map(|(f, _)| f.clone()).collect();
            let sub = planned.first().map_or("", |f| sub_of(f));
            shared
                .folders_besides(&planned)
                .filter(|g| user_of(g) != DUPLICATES && (any_folder || sub_of(g) == sub))
                .map(|g| (g.to_string(), copy_key(w, g, None)))
                .filter(|(g, k)| shared.holds(g, k))
                .collect()
        })
        .collect();
    for (i, found) in strays.into_iter().enumerate() {
        let w = &work[i];
        let r = &mut rehomed[i];
        let mut missing = plans[i]
            .copies
            .iter()
            .zip(&present[i])
            .filter(|(_, there)| !**there)
            .map(|(c, _)| c);
        for (g, k) in found {
            let Some(stray) = earlier.take(&g, &k) else {
                continue;
            };
            let from = stray.relative();
            match missing.next() {
                Some((to, key)) => {
                    let letter = outbox
                        .and_then(|o| o.mailbox(to))
                        .map_or('?', |m| m.letter(w.decision.confidence));
                    let name = earlier.new_name(&stray, to, key, letter);
                    if let (Some(o), Some((fd, _))) = (outbox, earlier.dir_of(&stray)) {
                        let mailbox = o.mailbox(to).ok_or_else(|| {
                            (
                                i,
                                DeliverError::Refused {
                                    path: PathBuf::from(to),
                                    why: "Maildir was not prepared",
                                },
                            )
                        })?;
                        mailbox.adopt(fd, &stray.name, &name).map_err(|e| (i, e))?;
                        if sync == SyncPolicy::File {
                            mailbox.sync_cur().map_err(|e| (i, e))?;
                            earlier.sync(&stray).map_err(|e| (i, e))?;
                        }
                    }
                    let at = match outbox {
                        Some(_) => format!("{to}/cur/{name}"),
                        None => format!("{to}/cur/"),
                    };
                    r.moved.push((from, at));
                    r.filled.push(to.clone());
                }
                None => {
                    // Every planned folder holds the copy (from before, or renamed in
                    // just now): this one is surplus.
                    if outbox.is_some() {
                        earlier.remove(&stray).map_err(|e| (i, e))?;
                        if sync == SyncPolicy::File {
                            earlier.sync(&stray).map_err(|e| (i, e))?;
                        }
                    }
                    r.removed.push(from);
                }
            }
        }
    }
    Ok(rehomed)
}

/// Counts what decided the message, and lists it for review when it is unassigned or low.
fn note_audit(audit: &mut Audit, w: &Work<'_>, p: &Plan) {
    let kind = if w.decision.confidence == Confidence::Reviewed {
        "a person (--corrections)".to_string()
    } else if w.decision.inferred.is_some() {
        "inferred from a thread or a list".to_string()
    } else if w.decision.users.is_empty() {
        "nothing (unassigned)".to_string()
    } else {
        let mut names: Vec<String> = w
            .facts
            .evidence
            .iter()
            .zip(&w.decision.verdicts)
            .filter(|(_, v)| **v == crate::decide::Verdict::Decisive)
            .map(|(e, _)| {
                if e.kind == crate::evidence::Kind::ReceivedFor {
                    "Received for".to_string()
                } else {
                    e.header.clone()
                }
            })
            .collect();
        names.sort();
        names.dedup();
        names.join(" + ")
    };
    *audit.evidence_kinds.entry(kind).or_default() += 1;
    if !p.set_aside && w.preview.is_some() {
        audit.review_total += 1;
        if audit.review.len() < REVIEW_ROWS {
            let evidence = w
                .facts
                .evidence
                .iter()
                .zip(&w.decision.verdicts)
                .map(|(e, v)| {
                    let field = match e.kind {
                        crate::evidence::Kind::ReceivedFor => "Received for",
                        _ => e.header.as_str(),
                    };
                    let verdict = serde_json::to_value(v)
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
fn same_path(name: &str, wanted: &str) -> bool {
    name == wanted
        || std::fs::canonicalize(name)
            .ok()
            .is_some_and(|a| std::fs::canonicalize(wanted).ok() == Some(a))
}

/// The source and unit `which` names.
fn find<'s>(sources: &'s [Source], which: &Which) -> Result<(&'s Source, Unit), SplitError> {
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
fn kind_words(kind: crate::evidence::Kind) -> &'static str {
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
    let Opened {
        sources,
        folders,
        profile,
        marks,
        ..
    } = open_and_learn(
        &config.inputs,
        config.format,
        &config.temp_dir,
        &config.directory,
        &config.overrides,
        &noop,
    )?;
    let (source, unit) = find(&sources, &which)?;
    let folder = sources
        .iter()
        .position(|s| std::ptr::eq(s, source))
        .and_then(|at| folders.get(at))
        .filter(|f| !f.is_empty());
    let ctx = Context {
        dir: &config.directory,
        profile: &profile,
        policy: &config.policy,
    };
    let corrections = match &config.corrections {
        Some(c) => Some(meet_corrections(&sources, c)?),
        None => None,
    };
    let index = index(&sources, &ctx, &marks, &noop)?;
    let w = analyse(
        source,
        source.read(&unit)?,
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
    for (i, e) in w.facts.evidence.iter().enumerate() {
        let canonical = w.decision.canonical[i]
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

/// Refuses a command line whose outputs would destroy an input or another output, or whose
/// inputs and `--out` overlap, before anything is read or written.
fn check_paths(config: &Config) -> Result<(), SplitError> {
    let out = (!config.dry_run).then_some(config.out.as_path());
    crate::paths::Paths::resolve(
        &config.inputs,
        &[
            ("--directory", config.directory_file.as_deref()),
            (
                "--corrections",
                config.corrections.as_ref().map(|c| c.file.as_path()),
            ),
        ],
        out,
        &[
            ("--report", config.report.as_deref()),
            ("--html", config.html.as_deref()),
        ],
    )
    .and_then(|p| p.check())
    .map_err(|e| SplitError::Usage(e.to_string()))
}

/// Creates (or empties) an output file readable by its owner only, also when it existed:
/// the report and the page quote senders and subjects of private mail.
fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::outfs::FILE_MODE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(crate::outfs::FILE_MODE))?;
    Ok(file)
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

/// Whether the audit page lists a message of this confidence for review.
fn for_review(c: Confidence) -> bool {
    !matches!(c, Confidence::High)
}

/// Gathers evidence and decides, for one message (runs on a worker thread); `review`: keep
/// the first lines of the text of a message to review (for the audit page).
fn analyse<'a>(
    source: &'a Source,
    m: Message<'a>,
    mtime_is_arrival: bool,
    ctx: &Context<'_>,
    index: &Index,
    corrections: Option<&Corrections>,
    review: bool,
) -> Work<'a> {
    let facts = gather(&m.content);
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
    let arrival = match mtime_is_arrival {
        true => m.arrival.or(facts.date),
        false => m.from_line.time.or(facts.date).or(m.arrival),
    };
    Work {
        source: match m.file {
            Some(f) => Cow::Owned(f.display().to_string()),
            None => Cow::Borrowed(source.name.as_str()),
        },
        number: m.number,
        offset: m.offset,
        identity: identity(&m.content, &facts),
        size: m.content.len() as u64,
        preview: (review && for_review(decision.confidence))
            .then(|| crate::html::preview(&m.content, facts.body_start)),
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

/// The key that names a copy: the same copy of the same message always gets the same key,
/// so a rerun finds it. Copies kept in `_duplicates` also carry their place among the
/// set-aside copies of the message (1 for the first), so that every one of them is kept;
/// not the input's name, which another path or a gzip'd copy of the same mailbox changes.
fn copy_key(w: &Work<'_>, folder: &str, set_aside: Option<u32>) -> String {
    let mut h = blake3::Hasher::new();
    h.update(folder.as_bytes());
    h.update(b"\0");
    h.update(&w.identity);
    // The header block tells copies with different trace fields apart; the body is in
    // the identity already.
    h.update(&w.content[..w.facts.body_start.min(w.content.len())]);
    if let Some(nth) = set_aside {
        h.update(format!("\0duplicate {nth}").as_bytes());
    }
    h.finalize().to_hex()[..24].to_string()
}

/// Chooses the folders of one message, leaving out those that already hold an identical
/// earlier copy (the box got one copy per envelope recipient).
fn plan(w: &Work<'_>, to: &Destination<'_>, delivered: &mut Delivered, sources: &[Source]) -> Plan {
    let wanted: Vec<String> = match w.decision.users.is_empty() {
        true => vec![in_folder(to.unassigned, to.sub)],
        false => w
            .decision
            .users
            .iter()
            .map(|u| in_folder(u, to.sub))
            .collect(),
    };
    let (folders, duplicate_of, nth) = if delivered.repeats.maybe(&w.facts.header_key) {
        delivered.place(w, to.source, wanted, sources)
    } else {
        // No other message shares its Message-ID (or From, Date and Subject): no copy of
        // it came before or will come after.
        (wanted, None, 0)
    };
    let set_aside = folders.is_empty().then_some(nth);
    let folders = match set_aside {
        Some(_) => vec![in_folder(DUPLICATES, to.sub)],
        None => folders,
    };
    let copies = folders.into_iter().map(|f| {
        let key = copy_key(w, &f, set_aside);
        (f, key)
    });
    Plan {
        copies: copies.collect(),
        duplicate_of,
        set_aside: set_aside.is_some(),
    }
}

/// Where a source's messages go: which source, the unassigned folder, and the Maildir++
/// subfolder of the source's folder (`""`: INBOX).
struct Destination<'a> {
    source: usize,
    unassigned: &'a str,
    sub: &'a str,
}

/// The Maildir `user` (a user, the unassigned or the duplicates folder) or its
/// subfolder `sub`, as a path relative to `--out`: what a copy's key and the report name.
fn in_folder(user: &str, sub: &str) -> String {
    match sub {
        "" => user.to_string(),
        _ => format!("{user}/{sub}"),
    }
}

/// The user's Maildir of a copy's folder (`alice` of `alice/.Archive`).
fn user_of(folder: &str) -> &str {
    folder.split('/').next().unwrap_or(folder)
}

/// The Maildir++ subfolder of a copy's folder (`.Archive` of `alice/.Archive`, `""`).
fn sub_of(folder: &str) -> &str {
    folder.split_once('/').map_or("", |(_, sub)| sub)
}

impl Delivered {
    /// The folders of `wanted` that hold no earlier copy of the message, which they now
    /// hold, the first copy when some folder did, and, when every folder did, how many
    /// copies of the message have been set aside with this one.
    fn place(
        &mut self,
        w: &Work<'_>,
        source: usize,
        wanted: Vec<String>,
        sources: &[Source],
    ) -> (Vec<String>, Option<FirstSeen>, u32) {
        let ids: Vec<u32> = wanted.iter().map(|f| self.folders.intern(f)).collect();
        let entry = self.seen.entry(w.identity).or_insert_with(|| Seen {
            source: source as u32,
            number: w.number as u64,
            folder: NO_FOLDER,
            more: Box::default(),
            set_aside: 0,
        });
        let (folders, new): (Vec<String>, Vec<u32>) = wanted
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !entry.holds(**id))
            .map(|(f, id)| (f.clone(), *id))
            .unzip();
        let first = (folders.len() < wanted.len()).then(|| FirstSeen {
            source: sources
                .get(entry.source as usize)
                .map(|s| s.message_name(entry.number as usize))
                .unwrap_or_default(),
            index: entry.number as usize,
        });
        for id in new {
            entry.add(id);
        }
        if folders.is_empty() {
            entry.set_aside += 1;
        }
        (folders, first, entry.set_aside)
    }
}

/// Writes one message's new copies into `tmp/`: the first one written, the others hard
/// links to it (every copy of a message has the same bytes and times), or written too
/// where a link is refused.
fn stage(
    outbox: &Outbox,
    w: &Work<'_>,
    p: &Plan,
    skip: &[String],
    sync: SyncPolicy,
) -> Result<Vec<Staged>, DeliverError> {
    let added = added_headers(w, p);
    let mut staged: Vec<Staged> = Vec::with_capacity(p.copies.len());
    for (folder, key) in p.copies.iter().filter(|(f, _)| !skip.contains(f)) {
        let mailbox = outbox
            .mailbox(folder)
            .ok_or_else(|| DeliverError::Refused {
                path: PathBuf::from(folder),
                why: "Maildir was not prepared",
            })?;
        let copy = Copy {
            key,
            added: &added,
            content: &w.content,
            flags: &w.flags,
            confidence: w.decision.confidence,
            mtime: w.arrival,
        };
        let linked = match staged.first() {
            Some(first) => mailbox.stage_link(first, &copy)?,
            None => None,
        };
        staged.push(match linked {
            Some(s) => s,
            None => mailbox.stage(&copy, sync)?,
        });
    }
    Ok(staged)
}

/// The fields popsplit puts on top of a delivered copy, in the message's own line ending.
/// Every value is made one safe line, so no header can be injected through them.
fn added_headers(w: &Work<'_>, p: &Plan) -> Vec<u8> {
    let eol = if w.facts.crlf { "\r\n" } else { "\n" };
    let mut out = format!(
        "X-Popsplit-Confidence: {}{eol}X-Popsplit-Evidence: {}{eol}",
        w.decision.confidence.name(),
        one_line(&w.decisive),
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

fn account(summary: &mut Summary, w: &Work<'_>, p: &Plan, already: usize, r: &Rehomed) {
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

fn write_row(
    out: &mut impl Write,
    w: &Work<'_>,
    p: &Plan,
    (files, already, rehomed): (&[PathBuf], &[String], &Rehomed),
    root: &Path,
) -> io::Result<()> {
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

/// What a run stopped by a signal had done, and how to finish the job.
fn stopped(summary: &Summary, config: &Config) -> String {
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
        (false, Output::Maildir) => format!(
            "{} of {messages} written, complete and durable{report}. Rerun the same command to finish the job: the copies already there are recognised and not written again.",
            count(summary.copies - summary.previously, "copy", "copies"),
        ),
        (false, Output::Mbox) => format!(
            "{messages} written into .partial files{report}. Rerun the same command to finish the job: it writes the mbox files again from the start."
        ),
    }
}

/// What a stopped run had written: the batches landed, and `moved` copies of the failing
/// batch that its commit had moved into `cur/` before it failed.
fn written(summary: &Summary, moved: usize) -> String {
    let failing = match moved {
        0 => "nothing of the failing batch reached cur/".to_string(),
        n => format!(
            "{} of the failing batch {} moved into cur/ before the failure (complete, maybe not yet synced)",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64, parents: &[u64], list: bool) -> Facts {
        Facts {
            id_hash: id,
            parents: parents.to_vec(),
            list_id: list.then(|| "team.example.com".to_string()),
            ..Facts::default()
        }
    }

    #[test]
    fn pass_two_decides_the_referred_and_list_mail_and_never_misses_one() {
        let mut marks = Marks::default();
        // 1 is referred to by 3; 2 is on a list; nobody refers to 3 or 4; then one message
        // without a Message-ID.
        let facts = [
            message(1, &[], false),
            message(2, &[], true),
            message(3, &[1], false),
            message(4, &[], false),
        ];
        marks.add("box", true, &facts);
        marks.add("box", false, &[message(0, &[], false)]);
        let wanted: Vec<bool> = (0..6).map(|i| marks.wanted("box", i)).collect();
        // The last: a position pass 1 never saw is decided, to be safe.
        assert_eq!(wanted, [true, true, false, false, false, true]);
        // The same file again from its start replaces its marks.
        marks.add("box", true, &[message(2, &[], false)]);
        assert!(!marks.wanted("box", 0));
        assert!(marks.wanted("box", 1));
        // Never "no" for a referred id, whatever the ids.
        let mut referred = Referred::default();
        let ids: Vec<u64> = (1..20_000u64)
            .map(|i| i.wrapping_mul(0x2545_F491_4F6C_DD1D))
            .collect();
        for id in &ids {
            referred.insert(*id);
        }
        assert!(ids.iter().all(|id| referred.maybe(*id)));
        let strangers = (1..20_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x55)
            .filter(|id| referred.maybe(*id))
            .count();
        // 20,000 of 2^24 slots: about 0.1% of strangers share one.
        assert!(strangers < 100, "{strangers}");
    }

    #[test]
    fn only_messages_with_a_twin_may_be_duplicates() {
        let key = |i: u64| -> [u8; 16] {
            *blake3::hash(&i.to_le_bytes())
                .as_bytes()
                .first_chunk()
                .expect("16 bytes")
        };
        let mut repeats = Repeats::default();
        for i in 0..50_000 {
            repeats.add(&key(i));
        }
        for i in (0..50_000).step_by(7) {
            repeats.add(&key(i));
        }
        assert!((0..50_000).step_by(7).all(|i| repeats.maybe(&key(i))));
        let lonely = (0..50_000)
            .filter(|i| i % 7 != 0)
            .filter(|i| repeats.maybe(&key(*i)))
            .count();
        // 50,000 keys in 2^26 slots: a lonely key shares one about 0.07% of the time.
        assert!(lonely < 200, "{lonely}");
    }
}

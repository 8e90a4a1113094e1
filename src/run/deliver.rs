//! Pass 3's output side: batch by batch, set duplicates aside in input order, stage the
//! copies in parallel, commit them on a thread of their own, then count and report.

use crate::config::Config;
use crate::input::{Source, Unit};
use crate::output::maildir::{CommitError, Copy, Outbox, Staged, SyncPolicy};
use crate::output::mbox::MboxOut;
use crate::output::outfs::DeliverError;
use crate::output::report::{Audit, Summary};
use crate::run::Progress;
use crate::run::account::{Written, account, note_audit, write_row};
use crate::run::analyse::Decided;
use crate::run::duplicates::{Destination, DuplicateIndex, Placed, Plan, place};
use crate::run::error::{SplitError, done_so_far, report_err, stop};
use crate::run::rehome::Earlier;
use crate::run::rehome::{Rehomed, rehome};
use crate::text::one_line;
use rayon::prelude::*;
use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A batch read and analysed, waiting to be delivered.
pub(crate) struct AnalysedBatch<'a> {
    pub(crate) at: usize,
    pub(crate) source: &'a Source,
    pub(crate) batch: Vec<Unit>,
    pub(crate) bytes: u64,
    pub(crate) work: Vec<Decided<'a>>,
}

/// Where pass 3 writes its copies.
pub(crate) enum Writer {
    /// Nowhere: a dry run decides and reports only.
    DryRun,
    /// One Maildir per folder.
    Maildir(Outbox),
    /// One mbox file per folder.
    Mbox(MboxOut),
}

/// The output side of pass 3: what is written, counted and reported, batch by batch.
pub(crate) struct Delivery<'c> {
    pub(crate) config: &'c Config,
    pub(crate) sources: &'c [Source],
    /// The Maildir++ subfolder of each source's copies (`""`: INBOX).
    pub(crate) subfolders: &'c [String],
    pub(crate) writer: Writer,
    pub(crate) report: Option<BufWriter<File>>,
    pub(crate) summary: Summary,
    pub(crate) audit: Audit,
    pub(crate) seen: DuplicateIndex,
    /// popsplit's copies already in `--out` (Maildir output only), for moves on a rerun.
    pub(crate) earlier: Option<Earlier>,
    /// In a dry run, what would be moved or removed, in words.
    pub(crate) would: Vec<String>,
    /// The batches written since the last commit began, committed together.
    pub(crate) open: Option<Open<'c>>,
    /// The batches last committed together, whose commit may still be running.
    pub(crate) in_flight: Option<InFlight<'c>>,
    /// Whether a commit has begun: the first begins after the first batch (see [`due`]).
    pub(crate) committing: bool,
}

/// Written batches not yet handed to a commit. Committing them together pays the two
/// `syncfs` of a commit once per 8,192 messages or 128 MB instead of once per batch: on
/// small messages the syncs of each 1,024 were a sixth of the run.
pub(crate) struct Open<'a> {
    messages: Vec<Written<'a>>,
    /// Each message's staged copies, in the order of `messages`.
    ready: Vec<Vec<Staged>>,
    bytes: u64,
    since: Instant,
}

/// Report rows made into one buffer on one thread: a few hundred KB.
const ROWS_AT_ONCE: usize = 256;

/// Bytes of input whose copies are committed together, at most.
const COMMIT_BYTES: u64 = 128 << 20;

/// Time since the first uncommitted batch was written after which the next commit begins,
/// so that a slow disk still gets its report rows and crash safety every few seconds.
const COMMIT_AFTER: Duration = Duration::from_secs(5);

/// Whether written batches of `messages` messages and `bytes` bytes, the first written
/// `age` ago, are to be committed now rather than wait for more (`most`: `--commit-every`;
/// `first`: no commit has begun yet).
fn due(first: bool, messages: usize, bytes: u64, age: Duration, most: usize) -> bool {
    // The first commit begins after the first batch: a small archive's one commit would
    // otherwise come at its end, where nothing is left to do while the disk takes its
    // writes (kernel-lists on a fresh ext4: 152 ms -> 141 ms, medians of 16 runs).
    first || messages >= most || bytes >= COMMIT_BYTES || age >= COMMIT_AFTER
}

/// Written batches: their commit (running in a thread of its own, when it writes a
/// Maildir) and what their accounting and report rows need once the commit is done.
pub(crate) struct InFlight<'a> {
    /// The batches' messages, in input order.
    pub(crate) messages: Vec<Written<'a>>,
    pub(crate) bytes: u64,
    pub(crate) commit: Option<std::thread::JoinHandle<Result<(), CommitError>>>,
}

impl<'c> Delivery<'c> {
    /// Sets duplicates aside (in input order), writes the copies, reports every message.
    pub(crate) fn deliver(
        &mut self,
        a: AnalysedBatch<'c>,
        progress: &Progress<'_>,
    ) -> Result<(), SplitError> {
        let config = self.config;
        // A commit that has ended is counted and reported now, not when the next is due:
        // its rows reach the report sooner, and its messages' facts are let go.
        if self.in_flight.as_ref().is_some_and(|f| {
            f.commit
                .as_ref()
                .is_none_or(std::thread::JoinHandle::is_finished)
        }) {
            self.finish_in_flight(progress)?;
        }
        // The batch was split as the file was when opened: an append since would deliver
        // its last message cut off.
        a.source.unchanged()?;
        let work = &a.work;
        let to = Destination {
            source: a.at,
            unassigned: config.unassigned.as_str(),
            sub: self.subfolders.get(a.at).map_or("", String::as_str),
        };
        let placed: Vec<Placed> = work
            .iter()
            .map(|w| place(w, &to, &mut self.seen, self.sources))
            .collect();
        let plans: Vec<Plan> = placed
            .into_par_iter()
            .zip(work)
            .map(|(p, w)| p.keyed(w))
            .collect();
        let mut files: Vec<Vec<PathBuf>> = vec![Vec::new(); work.len()];
        let mut already: Vec<Vec<String>> = vec![Vec::new(); work.len()];
        let mut rehomed: Vec<Rehomed> = Vec::new();
        rehomed.resize_with(work.len(), Rehomed::default);
        if let Writer::Mbox(out) = &mut self.writer {
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
        let mut ready = Vec::new();
        if let Writer::Maildir(outbox) = &mut self.writer {
            for (folder, _) in plans.iter().flat_map(|p| &p.copies) {
                outbox
                    .prepare(folder)
                    .map_err(|source| SplitError::Output {
                        source,
                        progress: done_so_far(&self.summary, 0),
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
            ready.reserve(staged.len());
            for (i, s) in staged.into_iter().enumerate() {
                match s {
                    Ok(s) => ready.push(s),
                    Err(e) => {
                        // Nothing of this batch is in cur/ yet: a failure leaves only
                        // unnamed files, gone with the process, and tmp/ files, which the
                        // next run removes. The batches before are landed first, so that
                        // the count in the message is true.
                        self.land(progress)?;
                        // Writing from a map whose file was cut short fails (EFAULT):
                        // say the cause rather than "bad address".
                        a.source.unchanged()?;
                        return Err(self.stop(&work[i], e));
                    }
                }
            }
            // Only the report names the files.
            if config.report.is_some() {
                for (i, r) in ready.iter().enumerate() {
                    files[i] = r.iter().map(Staged::path).collect();
                }
            }
        }
        if let (Writer::DryRun, Some(earlier)) = (&self.writer, self.earlier.as_mut()) {
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
        let messages = a
            .work
            .into_iter()
            .zip(plans)
            .zip(files)
            .zip(already)
            .zip(rehomed)
            .map(|((((mut work, plan), files), already), rehomed)| {
                // The copies are written: the rows need the facts, not the bytes, nor
                // the hops and thread ids (kept until the commit, for up to
                // `--commit-every` messages).
                work.content = Cow::Borrowed(&[]);
                work.facts.hops = Vec::new();
                work.facts.parents = Vec::new();
                Written {
                    work,
                    plan,
                    files,
                    already,
                    rehomed,
                }
            })
            .collect();
        if !matches!(self.writer, Writer::Maildir(_)) {
            self.in_flight = Some(InFlight {
                messages,
                bytes: a.bytes,
                commit: None,
            });
            return self.finish_in_flight(progress);
        }
        let open = self.open.get_or_insert_with(|| Open {
            messages: Vec::new(),
            ready: Vec::new(),
            bytes: 0,
            since: Instant::now(),
        });
        open.messages.extend(messages);
        open.ready.extend(ready);
        open.bytes += a.bytes;
        if due(
            !self.committing,
            open.messages.len(),
            open.bytes,
            open.since.elapsed(),
            config.commit_every,
        ) {
            self.commit_open(progress)?;
        }
        Ok(())
    }

    /// Hands the written batches not yet committed to a commit thread, once the commit
    /// before has ended (one commit at a time); that one's messages are counted and
    /// reported while the new one runs.
    fn commit_open(&mut self, progress: &Progress<'_>) -> Result<(), SplitError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let committed = self.wait_in_flight()?;
        let Writer::Maildir(outbox) = &self.writer else {
            return self.count_and_report(committed, progress);
        };
        let job = outbox.commit(self.config.sync);
        self.committing = true;
        let ready = open.ready;
        let spawned = std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || job.run(ready));
        // Reporting the commit before took as long as a small commit (kernel-lists: 10 of
        // its last 35 ms); the disk now works meanwhile.
        let reported = self.count_and_report(committed, progress);
        let commit = spawned.map_err(|e| SplitError::Output {
            source: DeliverError::Io {
                path: self.config.out.clone(),
                source: e,
            },
            progress: done_so_far(&self.summary, 0),
        })?;
        self.in_flight = Some(InFlight {
            messages: open.messages,
            bytes: open.bytes,
            commit: Some(commit),
        });
        reported
    }

    /// Commits every written batch and waits for it: what the run ends with, also when it
    /// stops early.
    pub(crate) fn land(&mut self, progress: &Progress<'_>) -> Result<(), SplitError> {
        self.commit_open(progress)?;
        self.finish_in_flight(progress)
    }

    /// Waits for the batches in flight to be committed, then counts and reports them.
    fn finish_in_flight(&mut self, progress: &Progress<'_>) -> Result<(), SplitError> {
        let committed = self.wait_in_flight()?;
        self.count_and_report(committed, progress)
    }

    /// Waits for the batches in flight to be committed, and hands them back (none when
    /// nothing was in flight).
    fn wait_in_flight(&mut self) -> Result<Option<InFlight<'c>>, SplitError> {
        let Some(mut f) = self.in_flight.take() else {
            return Ok(None);
        };
        if let Some(commit) = f.commit.take() {
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
                let progress = done_so_far(&self.summary, e.moved);
                return Err(match e.message.and_then(|i| f.messages.get(i)) {
                    Some(Written { work: w, .. }) => SplitError::Deliver {
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
        Ok(Some(f))
    }

    /// Counts and reports committed batches.
    fn count_and_report(
        &mut self,
        committed: Option<InFlight<'c>>,
        progress: &Progress<'_>,
    ) -> Result<(), SplitError> {
        let Some(f) = committed else {
            return Ok(());
        };
        let config = self.config;
        for m in &f.messages {
            account(&mut self.summary, m);
            note_audit(&mut self.audit, &m.work, &m.plan);
        }
        if let Some(out) = self.report.as_mut() {
            let failed = |e| report_err(config.report.as_deref().unwrap_or(Path::new("")), e);
            // Made in parallel, a few thousand at a time, and written in input order: made
            // one by one on the delivering thread, they kept the other core waiting.
            for some in f.messages.chunks(ROWS_AT_ONCE * 8) {
                let rows: Vec<io::Result<Vec<u8>>> = some
                    .par_chunks(ROWS_AT_ONCE)
                    .map(|chunk| {
                        let mut buf = Vec::new();
                        for m in chunk {
                            write_row(&mut buf, m, &config.out)?;
                        }
                        Ok(buf)
                    })
                    .collect();
                for rows in rows {
                    rows.and_then(|rows| out.write_all(&rows)).map_err(failed)?;
                }
            }
        }
        progress("delivering", f.bytes);
        Ok(())
    }

    /// The error for a copy of `w` that could not be written or moved.
    pub(crate) fn stop(&self, w: &Decided<'_>, source: DeliverError) -> SplitError {
        stop(&self.summary, w, source)
    }
}

/// Stages one message's new copies: the first one written, the others hard links to it
/// (every copy of a message has the same bytes and times), or written too where a link is
/// refused.
pub(crate) fn stage(
    outbox: &Outbox,
    w: &Decided<'_>,
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
pub(crate) fn added_headers(w: &Decided<'_>, p: &Plan) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_batches_wait_for_a_commit_until_one_bound_is_reached() {
        let (second, mb) = (Duration::from_secs(1), 1 << 20);
        // Below every bound: wait for more.
        assert!(!due(false, 8191, 127 * mb, 4 * second, 8192));
        // Each bound alone makes the commit due.
        assert!(due(false, 8192, 0, Duration::ZERO, 8192));
        assert!(due(false, 1, 128 * mb, Duration::ZERO, 8192));
        assert!(due(false, 1, 0, 5 * second, 8192));
        // `--commit-every 1`: every batch is committed on its own, as it is written.
        assert!(due(false, 1, 0, Duration::ZERO, 1));
        // The first batch of a run is committed at once, below every bound.
        assert!(due(true, 1, 0, Duration::ZERO, 8192));
    }
}

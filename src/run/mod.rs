//! The `split` job: wires read → split → gather evidence → decide → deliver → report.
//!
//! Three passes over the inputs, each in parallel batches: learn the mailbox profile (while
//! an mbox is still being split or inflated); decide the messages inference can use, to
//! index threads and lists; then decide every message for good and deliver, batch k while
//! batch k+1 is read and analysed. Within a batch of the last pass, duplicate detection
//! runs in input order on one thread (so reruns decide the same), copies are written in
//! parallel as unnamed files (or into `tmp/`); a thread of its own makes them durable and
//! links them into `cur/` while later batches are written (several batches to a commit: `--commit-every`);
//! then the batches' report rows are written in input order. Whole-run state is kept to
//! numbers and fixed-size bitmaps, so memory is mostly the batches in flight and waiting
//! for their commit, the facts pass 1 keeps for the first messages (up to a budget), and
//! a few dozen bytes a message besides.

mod account;
mod analyse;
mod deliver;
mod duplicates;
mod error;
mod explain;
mod index;
pub mod interrupt;
mod kept;
mod learn;
pub mod pages;
mod rehome;

use crate::compact::Names;
use crate::config::{Config, OutputFormat};
use crate::decide::profile::{Overrides, Profile};
use crate::input::{Message, Source, Unit};
use crate::output::maildir::Outbox;
use crate::output::mbox::MboxOut;
use crate::output::outfs::Root;
use crate::output::outfs::create_private;
use crate::output::report::{Audit, Summary};
use crate::run::account::flush_report;
use crate::run::analyse::analyse;
use crate::run::deliver::{AnalysedBatch, Delivery, Writer};
use crate::run::duplicates::DuplicateIndex;
pub use crate::run::error::SplitError;
use crate::run::error::{report_err, stopped};
pub use crate::run::explain::{Which, explain};
use crate::run::index::index;
pub use crate::run::learn::{Learned, open_and_learn};
use crate::run::learn::{Prescan, corrections_for, learn_inputs};
use crate::run::rehome::Earlier;
use crate::run::rehome::earlier_folders;
use crate::text::one_line;
use rayon::prelude::*;
use std::io::{BufWriter, Write};

/// Messages per batch, and bytes per batch: enough to keep every core busy, few enough
/// that a batch's messages in flight stay small in memory.
pub(crate) const BATCH_MESSAGES: usize = 1024;

pub(crate) const BATCH_BYTES: u64 = 32 << 20;

/// Told of the run's progress: a phase name and the input bytes it finished.
pub type Progress<'a> = dyn Fn(&'static str, u64) + Sync + 'a;

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
pub(crate) fn check_domains(profile: &Profile, over: &Overrides) -> Result<(), SplitError> {
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
pub fn run(config: &Config, progress: &Progress<'_>) -> Result<Outcome, SplitError> {
    config
        .check_paths()
        .map_err(|e| SplitError::Usage(e.to_string()))?;
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
    let Learned {
        sources,
        folders,
        skipped,
        profile,
        marks,
        mut kept,
    } = learn_inputs(config, progress)?;
    // An mbox file per user has no folders: mbox output is flat, as `--flatten`.
    let subfolders: Vec<String> = match config.flatten || config.output == OutputFormat::Mbox {
        true => vec![String::new(); sources.len()],
        false => folders
            .iter()
            .map(|f| crate::folders::maildir_name(f))
            .collect(),
    };
    check_domains(&profile, &config.overrides)?;
    let ctx = config.context(&profile);
    let corrections = corrections_for(config, &sources)?;
    let index = index(&sources, &ctx, &marks, &kept, progress)?;
    let Prescan { repeats, .. } = marks;
    crate::run::interrupt::writing();
    let root = || match locked {
        Some(root) => Ok(root),
        None => Root::open(&config.out).map_err(nothing),
    };
    let writer = match (config.dry_run, config.output) {
        (true, _) => Writer::DryRun,
        (false, OutputFormat::Maildir) => Writer::Maildir(Outbox::open(root()?)),
        (false, OutputFormat::Mbox) => Writer::Mbox(MboxOut::open(root()?)),
    };
    // Listed once the output is locked and before anything is written, so that only
    // earlier runs' copies are in it.
    let earlier = match config.output {
        OutputFormat::Maildir => Some(Earlier::scan(&config.out).map_err(nothing)?),
        OutputFormat::Mbox => None,
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
        writer,
        report,
        summary: Summary::default(),
        audit: Audit::default(),
        seen: DuplicateIndex {
            seen: Default::default(),
            folders: Names::default(),
            repeats,
        },
        earlier,
        would: Vec::new(),
        open: None,
        in_flight: None,
        committing: false,
    };
    // Batch k is written while batch k+1 is read and analysed, and committed (with the
    // batches around it) while later ones are written: the disk (syncfs) and the renames
    // wait, and the CPU fills that time.
    let mut pending: Option<AnalysedBatch<'_>> = None;
    // Once per source: it looks at every file's folder.
    let arrival: Vec<bool> = sources.iter().map(Source::mtime_is_arrival).collect();
    let passed = batches(&sources, |at, source, batch, bytes| {
        if let Some(signal) = crate::run::interrupt::requested() {
            return Err(SplitError::Interrupted {
                signal,
                progress: String::new(),
            });
        }
        let facts = kept.take(&source.name, &batch);
        let (next, done) = rayon::join(
            || -> Result<AnalysedBatch<'_>, SplitError> {
                let messages = read_batch(source, &batch)?;
                let mtime_is_arrival = arrival[at];
                let work = messages
                    .into_par_iter()
                    .zip(facts)
                    .map(|(m, facts)| {
                        analyse(
                            source,
                            m,
                            facts,
                            mtime_is_arrival,
                            &ctx,
                            &index,
                            corrections.as_ref(),
                            config.html.is_some(),
                        )
                    })
                    .collect();
                Ok(AnalysedBatch {
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
    if let Err(SplitError::Interrupted { signal, .. }) = passed {
        landed?;
        flush_report(&mut d.report, config)?;
        return Err(SplitError::Interrupted {
            signal,
            progress: stopped(&d.summary, config),
        });
    }
    passed?;
    landed?;
    let Delivery {
        writer,
        mut report,
        summary,
        audit,
        earlier,
        would,
        ..
    } = d;
    if let Writer::Mbox(out) = writer {
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
        let page = crate::output::html::render(
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

/// Calls `each` with every batch of message units of every source, in order.
pub(crate) fn batches<'a>(
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
pub(crate) fn read_batch<'a>(
    source: &'a Source,
    batch: &[Unit],
) -> Result<Vec<Message<'a>>, SplitError> {
    batch
        .par_iter()
        .map(|u| source.read(u).map_err(SplitError::from))
        .collect()
}

//! Pass 1: open every input and learn the mailbox profile from every header block;
//! also what pass 2 needs to know of each message, and where `--corrections` lines meet
//! their messages.

use crate::compact::{Referred, Repeats};
use crate::config::Config;
use crate::decide::corrections::Corrections;
use crate::decide::directory::Directory;
use crate::decide::profile::{Overrides, Profile, Stats};
use crate::evidence::{Facts, gather};
use crate::input::mbox::Span;
use crate::input::{self, InputFormat, Source, Unit};
use crate::run::Progress;
use crate::run::batches;
use crate::run::error::SplitError;
use crate::run::kept::Kept;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// What pass 1 found: the inputs, opened, and what was learned from them.
pub struct Learned {
    /// Every source of every input, in order.
    pub sources: Vec<Source>,
    /// The folder of each source in the shared box, as levels below INBOX.
    pub folders: Vec<Vec<String>>,
    /// Notes on files inside input folders that are not mail.
    pub skipped: Vec<String>,
    /// The mailbox profile.
    pub profile: Profile,
    /// What pass 2 needs of each message.
    pub marks: Prescan,
    /// The facts of the first messages, for passes 2 and 3.
    pub(crate) kept: Kept,
}

/// Opens every input (before anything is written, so a bad one stops the run early) and
/// learns the mailbox profile from every message: pass 1. Mbox inputs are learned from
/// while they are still being split (or inflated). Also returns notes on files skipped
/// inside folders, and the marks pass 2 needs.
pub fn open_and_learn(
    paths: &[PathBuf],
    format: InputFormat,
    temp: &Path,
    dir: &Directory,
    over: &Overrides,
    progress: &Progress<'_>,
) -> Result<Learned, SplitError> {
    let mut skipped = Vec::new();
    let mut sources: Vec<Source> = Vec::new();
    let mut folders = Vec::new();
    let mut stats = Stats::default();
    let mut marks = Prescan::default();
    let mut kept = Kept::default();
    // A chunk's facts, once gathered: the source's name, the 0-based position of the first
    // of them in it, and the chunk's bytes.
    let mut learn = |(name, at, facts, bytes): (String, usize, Vec<Facts>, u64)| {
        stats = std::mem::take(&mut stats).merge(learn_from(&facts, dir));
        marks.add(&name, at == 0 && !facts.is_empty(), &facts);
        kept.keep(&name, at, facts);
        progress("learning", bytes);
    };
    // Learning from a chunk is partly one thread's work: it runs while the next chunk's
    // header blocks are read, so that the other core is not left waiting.
    let mut gathered = None;
    let mut learn_early = |name: &str, data: &[u8], spans: &[Span]| {
        let (facts, ()) = rayon::join(
            || {
                spans
                    .par_iter()
                    .map(|s| gather(&input::head_of(data, s)))
                    .collect()
            },
            || {
                if let Some(chunk) = gathered.take() {
                    learn(chunk);
                }
            },
        );
        let at = spans.first().map_or(0, |s| s.number - 1);
        gathered = Some((
            name.to_string(),
            at,
            facts,
            spans.iter().map(Span::size).sum(),
        ));
    };
    for p in paths {
        let opened = input::open(p, format, temp, &mut skipped, &mut learn_early)?;
        folders.extend(opened.iter().map(|s| source_folder(p, &s.name)));
        sources.extend(opened);
    }
    if let Some(last) = gathered.take() {
        learn(last);
    }
    batches(&sources, |_, source, batch, bytes| {
        if source.seen_early() {
            return Ok(());
        }
        let facts = heads(source, &batch)?;
        let at = batch.first().map_or(0, Unit::position);
        learn((source.name.clone(), at, facts, bytes));
        source.release(&batch);
        Ok(())
    })?;
    Ok(Learned {
        sources,
        folders,
        skipped,
        profile: stats.learn(dir, over),
        marks,
        kept,
    })
}

/// Pass 1 over the inputs `config` names.
pub(crate) fn learn_inputs(
    config: &Config,
    progress: &Progress<'_>,
) -> Result<Learned, SplitError> {
    open_and_learn(
        &config.inputs,
        config.format,
        &config.temp_dir,
        &config.directory,
        &config.overrides,
        progress,
    )
}

/// `config`'s corrections matched with the messages of `sources` (see
/// [`meet_corrections`]), or none when it has none.
pub(crate) fn corrections_for(
    config: &Config,
    sources: &[Source],
) -> Result<Option<Corrections>, SplitError> {
    config
        .corrections
        .as_ref()
        .map(|c| meet_corrections(sources, c))
        .transpose()
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
pub(crate) fn heads(source: &Source, batch: &[Unit]) -> Result<Vec<Facts>, SplitError> {
    batch
        .par_iter()
        .map(|u| source.read_head(u).map(|head| gather(&head)))
        .collect::<Result<_, _>>()
        .map_err(SplitError::from)
}

pub(crate) fn learn_from(facts: &[Facts], dir: &Directory) -> Stats {
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
/// [`Mark`] by source, and the Message-IDs referred to.
#[derive(Default)]
pub struct Prescan {
    pub(crate) ids: crate::compact::Map<String, Vec<Mark>>,
    pub(crate) referred: Referred,
    /// For pass 3: which messages may have a copy elsewhere in the inputs.
    pub(crate) repeats: Repeats,
}

/// What pass 2 needs to know of one message to tell whether inference can use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// It has no Message-ID: no other message can refer to it.
    NoId,
    /// It has a List-Id: list mail is indexed whoever refers to it.
    OnAList,
    /// The hash of its Message-ID.
    Id(u64),
}

impl Prescan {
    /// Adds the next messages of the source `name` (from its first when `first`).
    pub(crate) fn add(&mut self, name: &str, first: bool, facts: &[Facts]) {
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
            ids.push(match (&f.list_id, f.id_hash) {
                (Some(_), _) => Mark::OnAList,
                (None, Some(id)) => Mark::Id(id),
                (None, None) => Mark::NoId,
            });
        }
    }

    /// Whether pass 2 must decide the message at 0-based `pos` of the source `name`.
    pub(crate) fn wanted(&self, name: &str, pos: usize) -> bool {
        match self.ids.get(name).and_then(|ids| ids.get(pos)) {
            None | Some(Mark::OnAList) => true,
            Some(Mark::NoId) => false,
            Some(Mark::Id(id)) => self.referred.maybe(*id),
        }
    }
}

/// Matches every line of `corrections` with messages of the inputs, before anything is
/// written: a line that names no message is an error, and a line that names a message by
/// `source:index` learns its Message-ID, to reach its other copies. Reads header blocks only.
pub(crate) fn meet_corrections(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compact::Referred;

    fn message(id: u64, parents: &[u64], list: bool) -> Facts {
        Facts {
            id_hash: (id != 0).then_some(id),
            parents: parents.to_vec(),
            list_id: list.then(|| "team.example.com".to_string()),
            ..Facts::default()
        }
    }

    #[test]
    fn pass_two_decides_the_referred_and_list_mail_and_never_misses_one() {
        let mut marks = Prescan::default();
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
}

//! Stage 1 (read): every kind of archive an admin has, turned into messages.
//!
//! mbox files (mboxo, mboxrd, mboxcl/mboxcl2) are mapped read-only and split by [`mbox`];
//! gzip-compressed mboxes are decompressed as a stream into an unnamed temporary file and
//! mapped the same way; Maildirs (cur/ and new/, with their flags) and trees of `.eml`
//! files give one message per file; a folder of mbox files (Thunderbird's profile, with
//! `.sbd/` subfolders and `.msf` indexes) gives one source per mbox in it; an Outlook PST
//! or OST file is turned into one mbox per folder by `readpst` (Debian's pst-utils) in a
//! temporary folder; xz, bzip2 and zstd mboxes are decompressed like gzip, through their
//! own programs. Archives of several files (zip, 7z, tar) are refused with the command
//! that unpacks them, also inside a folder. Nothing here ever opens an input for writing.

mod folders;
mod inflate;
mod mapped;
pub mod mbox;
mod sniff;
mod spans;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::input::folders::{inside, open_folder, open_maildir, open_pst, walk};
use crate::input::inflate::{Scratch, open_compressed};
use crate::input::mapped::{Watch, open_mbox};
use crate::input::mbox::header_end;
use crate::input::sniff::{has_ext, sniff, what_is};
use crate::input::spans::Spans;
use mbox::{FromLine, MboxError, Span};

/// How an input is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum InputFormat {
    /// Detect from the path and the bytes.
    Auto,
    /// An mbox file of any variant.
    Mbox,
    /// A gzip-compressed mbox file.
    Gzip,
    /// An xz-compressed mbox file, read through `xz` (xz-utils).
    Xz,
    /// A bzip2-compressed mbox file, read through `bzip2`.
    Bzip2,
    /// A zstd-compressed mbox file, read through `zstd`.
    Zstd,
    /// A Maildir (cur/ and new/) and its Maildir++ subfolders.
    Maildir,
    /// A folder tree of `.eml` files (or one `.eml` file).
    Eml,
    /// An Outlook PST or OST file, read through `readpst` (Debian's pst-utils).
    Pst,
}

/// Why an input could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file-system call failed.
    #[error("{path}: {source}")]
    Io {
        /// The input.
        path: String,
        /// What the system said.
        source: io::Error,
    },
    /// The bytes are not what the format needs.
    #[error("{path}: {source}")]
    NotMbox {
        /// The input.
        path: String,
        /// Where and why.
        source: MboxError,
    },
    /// Anything else that makes the input unreadable.
    #[error("{path}: {why}")]
    Bad {
        /// The input.
        path: String,
        /// What is wrong.
        why: String,
    },
}

pub(crate) fn io_err(path: &Path) -> impl Fn(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One message file of a Maildir or `.eml` tree.
#[derive(Debug, Clone)]
pub(crate) struct MailFile {
    pub(crate) path: PathBuf,
    /// Maildir flags from the file name (`:2,FRS`), upper-case standard flags only.
    pub(crate) flags: String,
}

pub(crate) enum Body {
    /// An mbox in memory, split once.
    Mapped(Mapped),
    /// One message per file.
    Files(Vec<MailFile>),
}

/// An mbox in memory: mapped, or decompressed into a mapped temporary file.
pub(crate) struct Mapped {
    /// The bytes; none for an empty file, which cannot be mapped.
    pub(crate) map: Option<Mmap>,
    /// The mbox split, done once when opened: every pass walks the same spans instead of
    /// scanning the file again.
    pub(crate) spans: Spans,
    /// The file behind the map.
    pub(crate) backing: Backing,
}

/// The file behind a map.
pub(crate) enum Backing {
    /// The input itself, and what it was when mapped, to notice another process writing
    /// to it during the run.
    Input(Watch),
    /// The unnamed file a compressed input was inflated into.
    Inflated(Scratch),
}

impl Mapped {
    /// The mbox bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or_default()
    }

    /// Gives back the resident memory of the bytes from `start` to `end`.
    pub(crate) fn release_range(&self, start: usize, end: usize) {
        release_range(self.map.as_ref(), start, end);
    }
}

/// Gives back the resident memory of `map`'s bytes from `start` to `end`, and of the bytes
/// before `start` in its 2 MB block (see [`FOLIO`]): the pages stay in the page cache, and
/// a later read faults them in again from the file.
pub(crate) fn release_range(map: Option<&Mmap>, start: usize, end: usize) {
    let Some(map) = map else {
        return;
    };
    let start = start / FOLIO * FOLIO;
    let end = end.min(map.len());
    if end > start {
        // SAFETY: the map is a read-only private map of a file; dropping its pages
        // only makes later reads fault them in again from the file.
        let _ = unsafe {
            map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
        };
    }
}

/// The largest block of a file that one page fault maps (a page cache folio, aligned in
/// the file, at most 2 MB on x86-64). The first read of a batch maps the whole folio its
/// first page is in, also the part of it before the batch that the previous batch's
/// release had given back; released from the batch's start only, those pages stayed
/// mapped: 95 MB of a 328 MB input by the end of the first pass when transparent huge
/// pages are off (`/proc/self/status` RssFile, 102,387 small messages).
const FOLIO: usize = 2 << 20;

/// The input bytes a batch of mbox messages spans, from its first From line to its last
/// message's end.
pub(crate) fn batch_range(batch: &[Unit]) -> Option<(usize, usize)> {
    match (batch.first(), batch.last()) {
        (Some(Unit::Span(first)), Some(Unit::Span(last))) => {
            Some((first.from_line.start, last.trailer.end))
        }
        _ => None,
    }
}

/// One input source: an mbox, or a set of message files.
pub struct Source {
    /// The path as given (or found inside a folder that was given).
    pub name: String,
    pub(crate) body: Body,
}

/// Work on an mbox's messages while it is still being split (or inflated): called with the
/// source's name, its bytes so far and the messages newly found in them, in order.
pub type Early<'e> = dyn FnMut(&str, &[u8], &[Span]) + 'e;

/// The header block of the message at `span` of `data`, mbox quoting undone.
pub fn head_of<'d>(data: &'d [u8], span: &Span) -> Cow<'d, [u8]> {
    let content = &data[span.content.clone()];
    let head = &content[..header_end(content)];
    match span.quoted {
        true => mbox::unquote(head),
        false => Cow::Borrowed(head),
    }
}

/// Where one message is inside its source.
#[derive(Debug, Clone)]
pub enum Unit {
    /// A span of an mbox.
    Span(Span),
    /// The n-th (0-based) file of a file source.
    File(usize),
}

impl Unit {
    /// The message's 0-based position in its source.
    pub fn position(&self) -> usize {
        match self {
            Unit::Span(s) => s.number - 1,
            Unit::File(i) => *i,
        }
    }
}

/// One message read from a source.
pub struct Message<'a> {
    /// 1-based index in the source.
    pub number: usize,
    /// Byte offset in the source (0 for file sources).
    pub offset: usize,
    /// The file the message came from, for file sources.
    pub file: Option<&'a Path>,
    /// The message bytes, mbox quoting undone.
    pub content: Cow<'a, [u8]>,
    /// The mbox separator line (default for file sources).
    pub from_line: FromLine,
    /// Maildir flags the source itself recorded.
    pub flags: String,
    /// Arrival time the source itself recorded (a Maildir file's mtime).
    pub arrival: Option<i64>,
    /// How the mbox splitter judged the separator, when it had doubts.
    pub split_note: Option<&'static str>,
}

impl Source {
    /// The message units of this source, in order.
    pub fn units(&self) -> Box<dyn Iterator<Item = Unit> + Send + '_> {
        match &self.body {
            Body::Mapped(m) => Box::new(m.spans.iter().map(Unit::Span)),
            Body::Files(files) => Box::new((0..files.len()).map(Unit::File)),
        }
    }

    /// Input bytes a unit stands for (progress only).
    pub fn unit_bytes(&self, unit: &Unit) -> u64 {
        match (unit, &self.body) {
            (Unit::Span(s), _) => s.size(),
            (Unit::File(i), Body::Files(f)) => f
                .get(*i)
                .and_then(|m| fs::metadata(&m.path).ok())
                .map_or(0, |m| m.len()),
            (Unit::File(_), Body::Mapped(_)) => 0,
        }
    }

    /// Reads one message.
    pub fn read(&self, unit: &Unit) -> Result<Message<'_>, SourceError> {
        match (unit, &self.body) {
            (Unit::Span(span), Body::Mapped(m)) => {
                let data = m.bytes();
                Ok(Message {
                    number: span.number,
                    offset: span.from_line.start,
                    file: None,
                    content: match span.quoted {
                        true => mbox::unquote(&data[span.content.clone()]),
                        false => Cow::Borrowed(&data[span.content.clone()]),
                    },
                    from_line: mbox::parse_from_line(&data[span.from_line.clone()]),
                    flags: String::new(),
                    arrival: None,
                    split_note: span.note,
                })
            }
            (Unit::File(i), Body::Files(files)) => {
                let f = files.get(*i).ok_or_else(|| SourceError::Bad {
                    path: self.name.clone(),
                    why: "no such message".into(),
                })?;
                let bytes = fs::read(&f.path).map_err(io_err(&f.path))?;
                let mtime = fs::metadata(&f.path)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64);
                Ok(Message {
                    number: i + 1,
                    offset: 0,
                    file: Some(&f.path),
                    content: Cow::Owned(bytes),
                    from_line: FromLine::default(),
                    flags: f.flags.clone(),
                    arrival: mtime,
                    split_note: None,
                })
            }
            _ => Err(SourceError::Bad {
                path: self.name.clone(),
                why: "unit does not belong to this source".into(),
            }),
        }
    }

    /// The header block of one message (mbox quoting undone): all that learning and
    /// indexing need, without touching the body.
    pub fn read_head(&self, unit: &Unit) -> Result<Cow<'_, [u8]>, SourceError> {
        match (unit, &self.body) {
            (Unit::Span(span), Body::Mapped(m)) => Ok(head_of(m.bytes(), span)),
            _ => self.read(unit).map(|m| match m.content {
                Cow::Owned(mut v) => {
                    v.truncate(header_end(&v));
                    Cow::Owned(v)
                }
                Cow::Borrowed(b) => Cow::Borrowed(&b[..header_end(b)]),
            }),
        }
    }

    /// Gives back the memory of a finished batch: the pages of a mapped file stay in the
    /// page cache, but no longer count in this process's resident memory.
    pub fn release(&self, batch: &[Unit]) {
        if let (Body::Mapped(m), Some((start, end))) = (&self.body, batch_range(batch)) {
            m.release_range(start, end);
        }
    }

    /// Like [`Source::release`], for a batch that is never read again (delivered): the
    /// page cache of an inflated input's temporary file is given back too, as the run
    /// goes, for the copies being written to reuse.
    pub fn done(&self, batch: &[Unit]) {
        self.release(batch);
        if let (
            Body::Mapped(Mapped {
                backing: Backing::Inflated(scratch),
                ..
            }),
            Some((start, end)),
        ) = (&self.body, batch_range(batch))
        {
            scratch.give_back(start, end);
        }
    }

    /// Stops the run when another process appended to or truncated the mapped input since
    /// it was opened: its messages were split as the file was then, so the last one would
    /// be delivered cut off, and pages cut away cannot be read at all.
    pub fn unchanged(&self) -> Result<(), SourceError> {
        let Body::Mapped(Mapped {
            backing: Backing::Input(w),
            ..
        }) = &self.body
        else {
            return Ok(());
        };
        let (size, mtime) = Watch::now(&w.file).map_err(io_err(Path::new(&self.name)))?;
        if (size, mtime) == (w.size, w.mtime) {
            return Ok(());
        }
        Err(SourceError::Bad {
            path: self.name.clone(),
            why: format!(
                "changed while popsplit read it (size {} bytes, now {size}; {}): another process writes to it. Stop it (or copy the mailbox) and rerun; the copies written so far are complete and are not written again",
                w.size,
                if mtime == w.mtime {
                    "same modification time"
                } else {
                    "modified since"
                }
            ),
        })
    }

    /// Whether every message already went through the `early` work given to [`open`].
    pub fn seen_early(&self) -> bool {
        // Every mbox is split, and its messages handed to `early`, when it is opened.
        matches!(self.body, Body::Mapped(_))
    }

    /// The name a message is reported under: the source's, or the message's own file.
    pub fn message_name(&self, number: usize) -> String {
        match &self.body {
            Body::Files(files) => number
                .checked_sub(1)
                .and_then(|i| files.get(i))
                .map_or_else(|| self.name.clone(), |f| f.path.display().to_string()),
            Body::Mapped(_) => self.name.clone(),
        }
    }

    /// Whether the source's file mtimes are arrival times (Maildir) rather than export
    /// times (`.eml`), so that they win over the Date field.
    pub fn mtime_is_arrival(&self) -> bool {
        matches!(&self.body, Body::Files(files) if files.iter().any(|f| f.path.parent().is_some_and(|p| p.ends_with("cur") || p.ends_with("new"))))
    }
}

/// Opens an input; a folder of mboxes gives several sources. Notes about files inside a
/// folder that are not mail go to `skipped`.
/// A compressed input is inflated into an unnamed file in `temp`.
pub fn open(
    path: &Path,
    format: InputFormat,
    temp: &Path,
    skipped: &mut Vec<String>,
    early: &mut Early<'_>,
) -> Result<Vec<Source>, SourceError> {
    // A named link is read: it is what the admin pointed at.
    let meta = fs::metadata(path).map_err(io_err(path))?;
    if !meta.is_file() && !meta.is_dir() {
        // A FIFO blocks until a writer comes (or is read and gone), a device never ends.
        return Err(SourceError::Bad {
            path: path.display().to_string(),
            why: format!(
                "is {}, not a regular file or a folder; popsplit reads only those",
                what_is(&meta.file_type())
            ),
        });
    }
    let format = match format {
        InputFormat::Auto if meta.is_dir() => {
            if path.join("cur").is_dir() || path.join("new").is_dir() {
                InputFormat::Maildir
            } else {
                return open_folder(path, temp, skipped, early);
            }
        }
        InputFormat::Auto => sniff(path)?,
        f => f,
    };
    match format {
        // `sniff` never answers Auto; the mbox reader says exactly why a file is not mail.
        InputFormat::Mbox | InputFormat::Auto => open_mbox(path, early).map(|s| vec![s]),
        InputFormat::Gzip | InputFormat::Xz | InputFormat::Bzip2 | InputFormat::Zstd => {
            open_compressed(path, format, temp, early).map(|s| vec![s])
        }
        InputFormat::Pst => open_pst(path, temp, skipped, early),
        InputFormat::Maildir => open_maildir(path, skipped),
        InputFormat::Eml => {
            let mut files = Vec::new();
            if meta.is_dir() {
                walk(path, &inside(path), skipped, &mut |p| {
                    if has_ext(p, "eml") {
                        files.push(MailFile {
                            path: p.to_path_buf(),
                            flags: String::new(),
                        });
                    }
                })?;
            } else {
                files.push(MailFile {
                    path: path.to_path_buf(),
                    flags: String::new(),
                });
            }
            Ok(eml_sources(path, files))
        }
    }
}

/// The `.eml` files found under `root` (or `root` itself), one source for each folder
/// that holds some, in the order they were found: a folder of the tree is a folder of the
/// shared box (a Windows Mail or Outlook Express export), kept under each user as its
/// other folders are. The files directly in `root` (or `root` alone) are named `root`.
pub(crate) fn eml_sources(root: &Path, files: Vec<MailFile>) -> Vec<Source> {
    let mut folders: Vec<(PathBuf, Vec<MailFile>)> = Vec::new();
    // Position in `folders` by folder: an export may hold thousands of folders.
    let mut at: HashMap<PathBuf, usize> = HashMap::new();
    for f in files {
        let dir = match f.path.parent() {
            Some(d) if f.path != root && d != root => d.to_path_buf(),
            _ => root.to_path_buf(),
        };
        let i = *at.entry(dir.clone()).or_insert_with(|| {
            folders.push((dir, Vec::new()));
            folders.len() - 1
        });
        folders[i].1.push(f);
    }
    folders
        .into_iter()
        .map(|(dir, files)| Source {
            name: dir.display().to_string(),
            body: Body::Files(files),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use mbox::Splitter;
    use std::fs::File;

    /// Opens `path` as popsplit would by default, with the first pass left out.
    fn open_auto(path: &Path, skipped: &mut Vec<String>) -> Result<Vec<Source>, SourceError> {
        open(
            path,
            InputFormat::Auto,
            &std::env::temp_dir(),
            skipped,
            &mut |_, _, _| {},
        )
    }
    use std::io::Write;

    const MBOX: &[u8] = b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nbody a\n\nFrom b@x Tue Jan  2 00:00:00 2001\nSubject: b\n\nbody b\n";

    /// Which of the map's pages are mapped into this process now (`/proc/self/pagemap`'s
    /// present bit, readable without privileges), one per 4 KB page.
    fn mapped_pages(map: &Mmap) -> Vec<bool> {
        use std::io::{Read, Seek, SeekFrom};
        let first = map.as_ptr() as u64 / 4096;
        let mut f = File::open("/proc/self/pagemap").expect("pagemap");
        f.seek(SeekFrom::Start(first * 8)).expect("seek");
        let mut raw = vec![0u8; map.len() / 4096 * 8];
        f.read_exact(&mut raw).expect("read pagemap");
        raw.chunks(8)
            .map(|e| u64::from_le_bytes(e.try_into().expect("8 bytes")) >> 63 == 1)
            .collect()
    }

    #[test]
    fn a_release_gives_back_the_start_of_its_2_mb_block_and_nothing_after_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("big.mbox");
        std::fs::write(&path, vec![b'x'; 4 * FOLIO]).expect("write");
        let file = File::open(&path).expect("open");
        // SAFETY: a file of this test's own, not changed while mapped.
        let map = unsafe { Mmap::map(&file) }.expect("map");
        // Mapped by 4 KB pages, as with huge pages off: a file's huge page mapping is
        // dropped whole when part of it is released, which would hide what is tested.
        map.advise(memmap2::Advice::NoHugePage).expect("madvise");
        let touched: usize = (0..map.len()).step_by(4096).map(|i| map[i] as usize).sum();
        assert_eq!(touched, map.len() / 4096 * b'x' as usize);
        assert!(mapped_pages(&map).iter().all(|&p| p), "every page was read");
        // A batch from 100 KB into the second 2 MB block to the middle of the third.
        release_range(Some(&map), FOLIO + 100 * 1024, 2 * FOLIO + FOLIO / 2);
        let pages = mapped_pages(&map);
        let page = |at: usize| pages[at / 4096];
        assert!(page(0) && page(FOLIO - 4096), "the block before is kept");
        assert!(
            (FOLIO..2 * FOLIO + FOLIO / 2)
                .step_by(4096)
                .all(|at| !page(at)),
            "the batch and the start of its block are given back"
        );
        assert!(
            (2 * FOLIO + FOLIO / 2..4 * FOLIO).step_by(4096).all(page),
            "what follows the batch is kept"
        );
    }

    fn gzip_file(dir: &Path, name: &str, plain: &[u8]) -> PathBuf {
        let path = dir.join(name);
        let mut enc = flate2::write::GzEncoder::new(
            File::create(&path).expect("create"),
            flate2::Compression::fast(),
        );
        enc.write_all(plain).expect("write");
        enc.finish().expect("finish");
        path
    }

    fn contents(sources: &[Source]) -> Vec<Vec<u8>> {
        sources
            .iter()
            .flat_map(|s| {
                s.units()
                    .map(move |u| s.read(&u).expect("read").content.into_owned())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn packed_spans_are_the_splitters_spans() {
        // CRLF, an empty body, a blank line missing before a separator, and a doubtful
        // separator: every part length and the note must survive packing.
        let data: &[u8] = b"From a@x Mon Jan  1 00:00:00 2001\r\nSubject: a\r\n\r\nbody\r\n\r\nFrom b@x Tue Jan  2 00:00:00 2001\nFrom c@x Tue Jan  2 00:00:00 2001\nSubject: c\n\nx\nFrom d Tue Jan  2 00:00:00 2001\nnot a header\n";
        let spans: Vec<Span> = Splitter::new(data).expect("mbox").collect();
        assert!(spans.iter().any(|s| s.note.is_some()), "{spans:?}");
        let mut packed = Spans::default();
        for s in spans.clone() {
            packed.push(s);
        }
        let unpacked: Vec<Span> = packed.iter().collect();
        assert_eq!(unpacked, spans);
        // Lengths of every varint size, including more than 4 GB.
        let mut big = Spans::default();
        let mut at = 3;
        let mut want = Vec::new();
        for (i, len) in [0usize, 1, 127, 128, 16_383, 16_384, 1 << 32, 5 << 40]
            .into_iter()
            .enumerate()
        {
            let s = Span {
                number: i + 1,
                from_line: at..at + 7,
                content: at + 7..at + 7 + len,
                trailer: at + 7 + len..at + 8 + len,
                note: None,
                quoted: i % 3 == 1,
            };
            at = s.trailer.end;
            big.push(s.clone());
            want.push(s);
        }
        assert_eq!(big.iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn a_gzip_input_is_learned_from_once_per_message_while_inflating() {
        // 12 MB: many small messages, one of 5 MB across inflate blocks and looks, and a
        // Content-Length message whose body holds a separator-like line.
        let mut plain = Vec::new();
        for i in 0..3000 {
            plain.extend_from_slice(
                format!(
                    "From a{i}@x Mon Jan  1 00:00:00 2001\nSubject: {i}\n\n{}\n\n",
                    "b".repeat(i % 3000)
                )
                .as_bytes(),
            );
            if i == 1000 {
                plain.extend_from_slice(b"From big@x Mon Jan  1 00:00:00 2001\nSubject: big\n\n");
                plain.extend_from_slice(&b"0123456789abcde\n".repeat(5 << 16));
                plain.extend_from_slice(b"\nFrom cl@x Mon Jan  1 00:00:00 2001\nContent-Length: 39\n\nFrom x@y Mon Jan  1 00:00:00 2001\nbody\n\n");
            }
        }
        let dir = tempfile::tempdir().expect("tmp");
        let gz = gzip_file(dir.path(), "big.mbox.gz", &plain);
        let (mut looks, mut seen) = (0, Vec::new());
        let s = open(
            &gz,
            InputFormat::Auto,
            &std::env::temp_dir(),
            &mut Vec::new(),
            &mut |_, data, spans| {
                looks += 1;
                seen.extend(
                    spans
                        .iter()
                        .map(|s| (s.clone(), head_of(data, s).into_owned())),
                );
            },
        )
        .expect("open");
        let whole: Vec<(Span, Vec<u8>)> = Splitter::new(&plain)
            .expect("mbox")
            .map(|s| (s.clone(), head_of(&plain, &s).into_owned()))
            .collect();
        assert_eq!(whole.len(), 3002);
        assert!(looks >= 2, "{looks} looks");
        assert!(
            seen == whole,
            "the early pass saw other messages than the split"
        );
        assert!(s[0].seen_early());
        let units: Vec<Span> = s[0]
            .units()
            .map(|u| match u {
                Unit::Span(s) => s,
                Unit::File(_) => panic!("a gzip input has spans"),
            })
            .collect();
        assert!(units == whole.into_iter().map(|(s, _)| s).collect::<Vec<_>>());
    }

    #[test]
    fn a_large_gzip_that_is_not_an_mbox_stops_while_inflating() {
        let dir = tempfile::tempdir().expect("tmp");
        let gz = gzip_file(dir.path(), "notes.txt.gz", &b"Dear diary\n".repeat(1 << 20));
        let mut looks = 0;
        let err = open(
            &gz,
            InputFormat::Auto,
            &std::env::temp_dir(),
            &mut Vec::new(),
            &mut |_, _, _| looks += 1,
        )
        .err()
        .expect("not an mbox");
        assert!(matches!(err, SourceError::NotMbox { .. }), "{err}");
        assert!(err.to_string().contains("notes.txt.gz"), "{err}");
        assert_eq!(looks, 0);
    }

    #[test]
    fn gzip_reads_like_the_plain_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let gz = gzip_file(dir.path(), "box.mbox.gz", MBOX);
        let mut skipped = Vec::new();
        let s = open_auto(&gz, &mut skipped).expect("open");
        assert_eq!(
            contents(&s),
            vec![
                b"Subject: a\n\nbody a\n".to_vec(),
                b"Subject: b\n\nbody b\n".to_vec()
            ]
        );
    }

    #[test]
    fn truncated_gzip_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().expect("tmp");
        let gz = dir.path().join("box.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&MBOX.repeat(100)).expect("write");
        let bytes = enc.finish().expect("finish");
        fs::write(&gz, &bytes[..bytes.len() / 2]).expect("write");
        let err = open_auto(&gz, &mut Vec::new())
            .err()
            .expect("error")
            .to_string();
        assert!(
            err.contains("box.gz") && err.contains("gzip stream unreadable"),
            "{err}"
        );
    }

    #[test]
    fn maildir_with_flags_and_subfolders() {
        let dir = tempfile::tempdir().expect("tmp");
        let md = dir.path().join("Mail");
        for sub in ["cur", "new", "tmp", ".Sent/cur", ".Sent/new", ".Sent/tmp"] {
            fs::create_dir_all(md.join(sub)).expect("mkdir");
        }
        fs::write(md.join("cur/1.x.host:2,SRa"), b"Subject: one\n\n1\n").expect("write");
        fs::write(md.join("new/2.x.host"), b"Subject: two\n\n2\n").expect("write");
        fs::write(md.join(".Sent/cur/3.x.host:2,S"), b"Subject: three\n\n3\n").expect("write");
        let s = open_auto(&md, &mut Vec::new()).expect("open");
        assert_eq!(s.len(), 2);
        let first = s[0].read(&Unit::File(0)).expect("read");
        assert_eq!(first.flags, "RS");
        assert!(first.arrival.is_some());
        assert!(s[0].mtime_is_arrival());
        assert_eq!(contents(&s).len(), 3);
    }

    #[test]
    fn thunderbird_profile_folder() {
        let dir = tempfile::tempdir().expect("tmp");
        let root = dir.path().join("Local Folders");
        fs::create_dir_all(root.join("Inbox.sbd")).expect("mkdir");
        fs::write(root.join("Inbox"), MBOX).expect("write");
        fs::write(
            root.join("Inbox.msf"),
            b"// <!-- <mdb:mork:z v=\"1.4\"/> -->",
        )
        .expect("write");
        fs::write(root.join("Inbox.sbd/Work"), MBOX).expect("write");
        fs::write(root.join("notes.txt"), b"shopping list").expect("write");
        fs::write(root.join("saved.eml"), b"Subject: eml\n\nhi\n").expect("write");
        let mut skipped = Vec::new();
        let s = open_auto(&root, &mut skipped).expect("open");
        assert_eq!(contents(&s).len(), 5);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].contains("notes.txt"));
    }

    #[test]
    fn a_pdf_is_not_an_mbox() {
        let dir = tempfile::tempdir().expect("tmp");
        let pdf = dir.path().join("scan.pdf");
        fs::write(&pdf, b"%PDF-1.4\n").expect("write");
        let err = open_auto(&pdf, &mut Vec::new())
            .err()
            .expect("error")
            .to_string();
        assert!(
            err.contains("scan.pdf") && err.contains("byte offset 0"),
            "{err}"
        );
    }
}

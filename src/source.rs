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

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use memmap2::Mmap;

use crate::mbox::{self, FromLine, MboxError, Span, Splitter};

/// How an input is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
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

fn io_err(path: &Path) -> impl Fn(io::Error) -> SourceError + '_ {
    move |source| SourceError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// One message file of a Maildir or `.eml` tree.
#[derive(Debug, Clone)]
struct MailFile {
    path: PathBuf,
    /// Maildir flags from the file name (`:2,FRS`), upper-case standard flags only.
    flags: String,
}

enum Body {
    /// An mbox in memory (mapped, or decompressed into a mapped temporary file).
    Mapped(Option<Mmap>),
    /// One message per file.
    Files(Vec<MailFile>),
}

impl Body {
    /// The mbox bytes (none for message files).
    fn bytes(&self) -> &[u8] {
        match self {
            Body::Mapped(map) => map.as_deref().unwrap_or_default(),
            Body::Files(_) => &[],
        }
    }
}

/// The input bytes a batch of mbox messages spans, from its first From line to its last
/// message's end.
fn batch_range(batch: &[Unit]) -> Option<(usize, usize)> {
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
    body: Body,
    /// The mbox split, done once when opened: every pass walks the same spans instead of
    /// scanning the file again.
    spans: Spans,
    /// The unnamed file a compressed input was inflated into.
    scratch: Option<Scratch>,
    /// A mapped input file and what it was when mapped, to notice another process writing
    /// to it during the run.
    watch: Option<Watch>,
}

/// An input file held open, with its size and modification time when it was mapped.
struct Watch {
    file: File,
    size: u64,
    mtime: (i64, u64),
}

impl Watch {
    fn new(file: File) -> io::Result<Self> {
        let (size, mtime) = Watch::now(&file)?;
        Ok(Watch { file, size, mtime })
    }

    fn now(file: &File) -> io::Result<(u64, (i64, u64))> {
        let st = rustix::fs::fstat(file)?;
        Ok((
            st.st_size as u64,
            (st.st_mtime as i64, st.st_mtime_nsec as u64),
        ))
    }
}

/// An inflated input's unnamed temporary file, and a thread that frees its disk blocks
/// batch by batch once they are delivered. Freeing a block on a file system mounted with
/// `discard` waits for the device (closing a 1 GB file took 0.2 s at the end of a run);
/// the thread does that waiting while the run goes on.
struct Scratch {
    file: File,
    freer: Option<mpsc::Sender<(u64, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Scratch {
    fn new(file: File) -> Self {
        let (freer, ranges) = mpsc::channel::<(u64, u64)>();
        let thread = file.try_clone().ok().and_then(|punch| {
            std::thread::Builder::new()
                .name("scratch".into())
                .spawn(move || {
                    for (start, len) in ranges {
                        // Only a saving: a range left allocated is freed when the file closes.
                        let _ = rustix::fs::fallocate(
                            &punch,
                            rustix::fs::FallocateFlags::PUNCH_HOLE
                                | rustix::fs::FallocateFlags::KEEP_SIZE,
                            start,
                            len,
                        );
                    }
                })
                .ok()
        });
        Scratch {
            freer: thread.as_ref().map(|_| freer),
            file,
            thread,
        }
    }

    /// Gives back `start..end`: its page cache at once (the copies being written reuse
    /// it), and its whole blocks in the thread: never a block shared with a byte outside,
    /// which a neighbouring batch still reads.
    fn give_back(&self, start: usize, end: usize) {
        // Only advice: pages still dirty are skipped, and reading them again works.
        let _ = rustix::fs::fadvise(
            &self.file,
            start as u64,
            std::num::NonZeroU64::new(end.saturating_sub(start) as u64),
            rustix::fs::Advice::DontNeed,
        );
        const BLOCK: u64 = 4096;
        let start = (start as u64).div_ceil(BLOCK) * BLOCK;
        let end = end as u64 / BLOCK * BLOCK;
        if let (Some(freer), true) = (&self.freer, end > start) {
            let _ = freer.send((start, end - start));
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        self.freer = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
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

/// Every span of an mbox, packed: the split is kept for the whole run, and spans follow
/// one another through the file, so each is stored as varint lengths (its gap after the
/// last one, always 0 from the splitter, then its three parts): about 6 bytes a message
/// rather than the 72 of a [`Span`]. Passes walk them in order.
#[derive(Default)]
struct Spans {
    bytes: Vec<u8>,
    count: usize,
    /// Where the last span ends.
    end: usize,
    /// The rare spans the splitter had doubts about, by 0-based position.
    notes: HashMap<usize, &'static str>,
    /// The rare spans that may hold a `>From ` line to unquote, by 0-based position, in order.
    quoted: Vec<usize>,
}

impl Spans {
    fn push(&mut self, span: Span) {
        if let Some(note) = span.note {
            self.notes.insert(self.count, note);
        }
        if span.quoted {
            self.quoted.push(self.count);
        }
        for n in [
            span.from_line.start.saturating_sub(self.end),
            span.from_line.len(),
            span.content.len(),
            span.trailer.len(),
        ] {
            put_varint(&mut self.bytes, n as u64);
        }
        self.count += 1;
        self.end = span.trailer.end;
    }

    fn iter(&self) -> impl Iterator<Item = Span> + '_ {
        let (mut at, mut end) = (0, 0);
        let mut quoted = self.quoted.iter().peekable();
        (0..self.count).map(move |i| {
            let mut next = || get_varint(&self.bytes, &mut at) as usize;
            let start = end + next();
            let content = start + next();
            let trailer = content + next();
            end = trailer + next();
            Span {
                number: i + 1,
                from_line: start..content,
                content: content..trailer,
                trailer: trailer..end,
                note: self.notes.get(&i).copied(),
                quoted: quoted.next_if_eq(&&i).is_some(),
            }
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads what [`put_varint`] wrote at `*at` (our own bytes: always complete).
fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    n
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
            Body::Mapped(_) => Box::new(self.spans.iter().map(Unit::Span)),
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
            (Unit::Span(span), Body::Mapped(_)) => {
                let data = self.body.bytes();
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
            (Unit::Span(span), Body::Mapped(_)) => Ok(head_of(self.body.bytes(), span)),
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
        if let Some((start, end)) = batch_range(batch) {
            self.release_range(start, end);
        }
    }

    /// Like [`Source::release`], for a batch that is never read again (delivered): the
    /// page cache of an inflated input's temporary file is given back too, as the run
    /// goes, for the copies being written to reuse.
    pub fn done(&self, batch: &[Unit]) {
        self.release(batch);
        if let (Some(scratch), Some((start, end))) = (&self.scratch, batch_range(batch)) {
            scratch.give_back(start, end);
        }
    }

    fn release_range(&self, start: usize, end: usize) {
        let Body::Mapped(Some(map)) = &self.body else {
            return;
        };
        const PAGE: usize = 4096;
        let start = start / PAGE * PAGE;
        let end = end.min(map.len());
        if end > start {
            // SAFETY: the map is a read-only private map of a file; dropping its pages
            // only makes later reads fault them in again from the file.
            let _ = unsafe {
                map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, start, end - start)
            };
        }
    }

    /// Stops the run when another process appended to or truncated the mapped input since
    /// it was opened: its messages were split as the file was then, so the last one would
    /// be delivered cut off, and pages cut away cannot be read at all.
    pub fn unchanged(&self) -> Result<(), SourceError> {
        let Some(w) = &self.watch else {
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
    format: Format,
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
        Format::Auto if meta.is_dir() => {
            if path.join("cur").is_dir() || path.join("new").is_dir() {
                Format::Maildir
            } else {
                return open_folder(path, temp, skipped, early);
            }
        }
        Format::Auto => sniff(path)?,
        f => f,
    };
    match format {
        // `sniff` never answers Auto; the mbox reader says exactly why a file is not mail.
        Format::Mbox | Format::Auto => open_mbox(path, early).map(|s| vec![s]),
        Format::Gzip | Format::Xz | Format::Bzip2 | Format::Zstd => {
            open_compressed(path, format, temp, early).map(|s| vec![s])
        }
        Format::Pst => open_pst(path, temp, skipped, early),
        Format::Maildir => open_maildir(path, skipped),
        Format::Eml => {
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
            Ok(vec![Source {
                name: path.display().to_string(),
                body: Body::Files(files),
                spans: Default::default(),
                scratch: None,
                watch: None,
            }])
        }
    }
}

/// What a file that is neither a regular file nor a folder is, in words.
fn what_is(ft: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_symlink() {
        "a link to nothing readable"
    } else {
        "something else"
    }
}

/// What an entry of an input folder is, links followed: a regular file to read, a folder,
/// or neither (with a note for the admin on why it is not read).
enum Entry {
    File,
    Folder,
    Not(String),
}

/// The resolved form of an input folder, which links inside it must stay in.
fn inside(folder: &Path) -> PathBuf {
    fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf())
}

/// What `p` (of type `ft`, found in the input folder resolved as `top`) is. A link is read
/// only when its file is inside `top`: a run as root must not copy a file the input's
/// owner cannot read (a link to /etc/shadow) into a mailbox.
fn entry_kind(p: &Path, ft: fs::FileType, top: &Path) -> Entry {
    if ft.is_file() {
        return Entry::File;
    }
    if ft.is_dir() {
        return Entry::Folder;
    }
    if ft.is_symlink() {
        let target = fs::canonicalize(p);
        return match fs::metadata(p) {
            Ok(m) if m.is_file() && target.as_ref().is_ok_and(|t| t.starts_with(top)) => {
                Entry::File
            }
            Ok(m) if m.is_file() => Entry::Not(format!(
                "{}: a link to a file outside the input folder, not read; name the file as an input to read it",
                p.display()
            )),
            // Following links to folders could loop, or leave the input.
            Ok(m) if m.is_dir() => Entry::Not(format!(
                "{}: a link to a folder, not followed; name its target as an input to read it",
                p.display()
            )),
            Ok(m) => Entry::Not(format!(
                "{}: a link to {}, not read",
                p.display(),
                what_is(&m.file_type())
            )),
            Err(e) => Entry::Not(format!(
                "{}: a link that cannot be followed ({e}), not read",
                p.display()
            )),
        };
    }
    Entry::Not(format!("{}: {}, not read", p.display(), what_is(&ft)))
}

fn has_ext(p: &Path, ext: &str) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// Decides a file's format from its first bytes (and name).
fn sniff(path: &Path) -> Result<Format, SourceError> {
    use std::io::Read;
    let mut head = [0u8; 512];
    let mut file = File::open(path).map_err(io_err(path))?;
    let n = file.read(&mut head).map_err(io_err(path))?;
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Format::Gzip);
    }
    if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        return Ok(Format::Xz);
    }
    if head.starts_with(b"BZh") && head.get(3).is_some_and(u8::is_ascii_digit) {
        return Ok(Format::Bzip2);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        return Ok(Format::Zstd);
    }
    if head.starts_with(PST_SIGNATURE) {
        return Ok(Format::Pst);
    }
    if let Some(why) = archive_advice(head, path) {
        return Err(SourceError::Bad {
            path: path.display().to_string(),
            why,
        });
    }
    let start = head
        .iter()
        .position(|&b| b != b'\n' && b != b'\r')
        .unwrap_or(head.len());
    if head[start..].starts_with(b"From ") || start == head.len() {
        return Ok(Format::Mbox);
    }
    if has_ext(path, "eml") && mbox::looks_like_header(head) {
        return Ok(Format::Eml);
    }
    // Let the mbox reader say exactly where and why it is not an mbox.
    Ok(Format::Mbox)
}

/// The first bytes of every Outlook PST and OST file.
const PST_SIGNATURE: &[u8] = b"!BDN";

/// For an archive of several files (which popsplit does not unpack itself), what it is
/// and the command that unpacks it. An admin's export often arrives packed; naming the
/// tool beats "not an mbox".
fn archive_advice(head: &[u8], path: &Path) -> Option<String> {
    let file = quoted(path);
    let (what, unpack) = if head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06") {
        ("a zip archive", format!("unzip {file} -d FOLDER"))
    } else if head.starts_with(b"7z\xbc\xaf\x27\x1c") {
        ("a 7-Zip archive", format!("7z x -oFOLDER {file}"))
    } else if head.get(257..262) == Some(b"ustar") {
        (
            "a tar archive",
            format!("mkdir FOLDER && tar -xf {file} -C FOLDER"),
        )
    } else {
        return None;
    };
    Some(format!(
        "{what}, which popsplit does not unpack: unpack it first (`{unpack}`) and give popsplit what it holds"
    ))
}

/// A path as a shell command would need it written.
fn quoted(path: &Path) -> String {
    let p = path.display().to_string();
    if !p.is_empty()
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        p
    } else {
        format!("'{}'", p.replace('\'', "'\\''"))
    }
}

/// An Outlook PST or OST file: `readpst` writes every mail folder of it as an mbox into a
/// temporary folder, which is then read as a folder of mboxes. Each source is named by
/// the PST file and the folder inside it (`Outlook.pst/Outlook/Inbox/mbox`).
fn open_pst(
    path: &Path,
    temp: &Path,
    skipped: &mut Vec<String>,
    early: &mut Early<'_>,
) -> Result<Vec<Source>, SourceError> {
    let name = path.display().to_string();
    let bad = |why: String| SourceError::Bad {
        path: name.clone(),
        why,
    };
    let tmp = tempfile::tempdir_in(temp).map_err(io_err(path))?;
    // -r: one folder per PST folder, each with an mbox; -te: mail only (no calendar or
    // contacts, which are not mail); -q: errors only.
    let ran = std::process::Command::new("readpst")
        .args(["-q", "-r", "-te", "-o"])
        .arg(tmp.path())
        .arg(path)
        .stdout(std::process::Stdio::null())
        .output();
    match ran {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(format!(
                "an Outlook PST/OST file; popsplit reads it through readpst, which is not installed: install it (Debian, Ubuntu: `apt-get install pst-utils`; Fedora: `dnf install libpst`) and run again, or convert it first (`readpst -r -o FOLDER {}`) and give popsplit the folder",
                quoted(path)
            )));
        }
        Err(e) => return Err(bad(format!("running readpst: {e}"))),
        Ok(out) if !out.status.success() => {
            return Err(bad(format!(
                "readpst could not read this Outlook file ({}): {}",
                out.status,
                crate::sanitize::one_line(String::from_utf8_lossy(&out.stderr).trim())
            )));
        }
        Ok(_) => {}
    }
    let prefix = tmp.path().display().to_string();
    let rename = |s: &str| s.replacen(&prefix, &name, 1);
    let mut found: Vec<String> = Vec::new();
    let mut sources = open_folder(tmp.path(), temp, &mut found, early).map_err(|e| match e {
        SourceError::Bad { why, .. } if why.starts_with("no mailbox found") => {
            bad("an Outlook file that holds no mail".into())
        }
        e => e,
    })?;
    skipped.extend(found.iter().map(|s| rename(s)));
    for source in &mut sources {
        source.name = rename(&source.name);
        // The mbox files are mapped, and a mapping keeps its file after the folder is
        // removed; message files would be read later, so they are not expected here.
        if matches!(source.body, Body::Files(_)) {
            return Err(bad(format!(
                "readpst wrote message files instead of mboxes into {}",
                source.name
            )));
        }
    }
    Ok(sources)
}

/// Where the header block of `msg` ends (after its blank line), or its length.
fn header_end(msg: &[u8]) -> usize {
    let mut pos = 0;
    while pos < msg.len() {
        let end = memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i + 1);
        if matches!(&msg[pos..end], b"\n" | b"\r\n") {
            return end;
        }
        pos = end;
    }
    msg.len()
}

/// Maps an mbox and splits it, handing every message to `early` as the split goes: one
/// thread scans for separators while this one runs the first pass on what it found.
fn open_mbox(path: &Path, early: &mut Early<'_>) -> Result<Source, SourceError> {
    let file = File::open(path).map_err(io_err(path))?;
    let mut source = map(path, &file)?;
    source.watch = Some(Watch::new(file).map_err(io_err(path))?);
    let data = source.body.bytes();
    let splitter = Splitter::new(data).map_err(|e| SourceError::NotMbox {
        path: source.name.clone(),
        source: e,
    })?;
    let mut spans = Spans::default();
    std::thread::scope(|scope| {
        // The scan touches every page; one chunk queued and one being learned from keep
        // the pages it has touched and nobody has given back small.
        let (tx, rx) = mpsc::sync_channel::<Vec<Span>>(1);
        scope.spawn(move || {
            let mut chunk = Vec::with_capacity(EARLY_SPANS);
            let mut from = 0;
            for span in splitter {
                let end = span.trailer.end;
                chunk.push(span);
                if (chunk.len() == EARLY_SPANS || end - from >= EARLY_BYTES)
                    && tx
                        .send(std::mem::replace(
                            &mut chunk,
                            Vec::with_capacity(EARLY_SPANS),
                        ))
                        .is_err()
                {
                    return;
                }
                if chunk.is_empty() {
                    from = end;
                }
            }
            let _ = tx.send(chunk);
        });
        for chunk in rx {
            early(&source.name, data, &chunk);
            if let (Some(first), Some(last)) = (chunk.first(), chunk.last()) {
                source.release_range(first.from_line.start, last.trailer.end);
            }
            for span in chunk {
                spans.push(span);
            }
        }
    });
    source.spans = spans;
    Ok(source)
}

/// Messages, and bytes, handed to the first pass at a time while an mbox is split.
const EARLY_SPANS: usize = 1024;
const EARLY_BYTES: usize = 16 << 20;

fn map(path: &Path, file: &File) -> Result<Source, SourceError> {
    let name = path.display().to_string();
    let len = file.metadata().map_err(io_err(path))?.len();
    // SAFETY: the map is read-only and private. If another process truncates the file
    // while popsplit runs, reading the lost pages raises SIGBUS; the README tells admins to
    // run on an export nobody is writing to. Temporary files are ours and unnamed.
    let map = if len == 0 {
        None
    } else {
        Some(unsafe { Mmap::map(file) }.map_err(io_err(path))?)
    };
    Ok(Source {
        name,
        body: Body::Mapped(map),
        spans: Default::default(),
        scratch: None,
        watch: None,
    })
}

/// Inflated bytes between two looks at a compressed input's new messages (small in unit
/// tests, so that they take several looks).
const EARLY_STEP: u64 = if cfg!(test) { 1 << 20 } else { 64 << 20 };

/// The program that decompresses `format`, and the Debian package that has it.
fn decompressor(format: Format) -> (&'static str, &'static str) {
    match format {
        Format::Xz => ("xz", "xz-utils"),
        Format::Bzip2 => ("bzip2", "bzip2"),
        _ => ("zstd", "zstd"),
    }
}

/// The output of a decompressing program, read as a stream. At its end the program's
/// exit status is checked, so that a damaged archive is an error, not a shorter mailbox.
struct Piped {
    child: std::process::Child,
    out: std::process::ChildStdout,
    program: &'static str,
}

impl io::Read for Piped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.out.read(buf)?;
        if n == 0 && !buf.is_empty() {
            let mut said = String::new();
            if let Some(err) = self.child.stderr.as_mut() {
                let _ = err.read_to_string(&mut said);
            }
            let status = self.child.wait()?;
            if !status.success() {
                return Err(io::Error::other(format!(
                    "{} {status}: {}",
                    self.program,
                    crate::sanitize::one_line(said.trim())
                )));
            }
        }
        Ok(n)
    }
}

impl Drop for Piped {
    fn drop(&mut self) {
        // Stopped early (the bytes are not an mbox): the program is not needed any more.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A stream of the decompressed bytes of `path`: gzip inflated here, xz, bzip2 and zstd
/// through their own programs, which every system that made such an archive has.
fn decoder(path: &Path, format: Format) -> Result<Box<dyn io::Read + Send>, SourceError> {
    let input = File::open(path).map_err(io_err(path))?;
    if format == Format::Gzip {
        return Ok(Box::new(flate2::read::MultiGzDecoder::new(
            io::BufReader::with_capacity(1 << 20, input),
        )));
    }
    let (program, package) = decompressor(format);
    let spawned = std::process::Command::new(program)
        .args(["-d", "-c"])
        .stdin(input)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SourceError::Bad {
                path: path.display().to_string(),
                why: format!(
                    "compressed with {program}; popsplit reads it through `{program}`, which is not installed: install it (Debian, Ubuntu: `apt-get install {package}`), or unpack it first (`{program} -dk {}`) and give popsplit the mbox",
                    quoted(path)
                ),
            });
        }
        Err(e) => return Err(io_err(path)(e)),
    };
    let out = child.stdout.take().ok_or_else(|| SourceError::Bad {
        path: path.display().to_string(),
        why: format!("{program} gave no output"),
    })?;
    Ok(Box::new(Piped {
        child,
        out,
        program,
    }))
}

/// Decompresses into an unnamed temporary file: memory stays bounded and every later pass
/// reads plain bytes instead of inflating again. Three threads overlap: one inflates, one
/// writes, and this one splits what is written so far and hands the messages to `early`
/// (the first pass), so that little is left to do once the stream ends.
fn open_compressed(
    path: &Path,
    format: Format,
    temp: &Path,
    early: &mut Early<'_>,
) -> Result<Source, SourceError> {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let name = path.display().to_string();
    let mut decoder = decoder(path, format)?;
    let tmp = tempfile::tempfile_in(temp).map_err(|e| SourceError::Bad {
        path: path.display().to_string(),
        why: format!(
            "cannot create the temporary file to decompress it into in the folder {} ({e}); name a folder with room with --temp-dir",
            temp.display()
        ),
    })?;
    let mut sink = tmp.try_clone().map_err(io_err(path))?;
    let flushed = tmp.try_clone().map_err(io_err(path))?;
    let (flush_tx, flush_rx) = mpsc::channel::<u64>();
    let (full_tx, full_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    let (empty_tx, empty_rx) = mpsc::channel::<Vec<u8>>();
    let (written_tx, written_rx) = mpsc::channel::<u64>();
    let stop = AtomicBool::new(false);
    let bad = |why: String| SourceError::Bad {
        path: path.display().to_string(),
        why,
    };
    let not_mbox = |source| SourceError::NotMbox {
        path: path.display().to_string(),
        source,
    };
    let (at, mut spans) = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> io::Result<()> {
            let mut written = 0;
            let mut next_check = 0;
            for block in full_rx {
                if written >= next_check {
                    // Looked at more often as the room shrinks.
                    next_check = written + room_for(&sink, written)?.min(SPACE_STEP * 2) / 2;
                }
                sink.write_all(&block)?;
                written += block.len() as u64;
                let _ = written_tx.send(written);
                let _ = flush_tx.send(written);
                let _ = empty_tx.send(block);
            }
            Ok(())
        });
        // The disk is idle while the stream inflates: the temporary file goes out to it now
        // rather than in the output's first syncfs, in the middle of delivery. In its own
        // thread, because starting a write-out may wait for the device's queue.
        scope.spawn(move || {
            let mut started = 0;
            for written in flush_rx {
                if written - started >= FLUSH_STEP {
                    start_writeback(&flushed, started, written - started);
                    started = written;
                }
            }
        });
        let stop = &stop;
        let inflater = scope.spawn(move || -> Result<(), SourceError> {
            let mut inflated: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                let mut block = empty_rx
                    .try_recv()
                    .unwrap_or_else(|_| vec![0u8; INFLATE_BLOCK]);
                block.resize(INFLATE_BLOCK, 0);
                let mut filled = 0;
                let step = loop {
                    match decoder.read(&mut block[filled..]) {
                        Ok(0) => break Ok(true),
                        Ok(n) => {
                            filled += n;
                            if filled == block.len() {
                                break Ok(false);
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                block.truncate(filled);
                inflated += filled as u64;
                let done = step.map_err(|e| {
                    bad(format!(
                        "{} stream unreadable after {inflated} decompressed bytes: {e} (truncated or damaged file?)",
                        match format {
                            Format::Gzip => "gzip",
                            other => decompressor(other).0,
                        }
                    ))
                })?;
                if !block.is_empty() && full_tx.send(block).is_err() {
                    return Ok(()); // the writer stopped: its error says why
                }
                if done {
                    return Ok(());
                }
            }
            Ok(())
        });
        // Split and learn from what is written while the rest is inflated.
        let mut at = mbox::Resume::default();
        let mut spans = Spans::default();
        let mut next_look = EARLY_STEP;
        let mut looked = Ok(());
        while let Ok(mut written) = written_rx.recv() {
            written = written_rx.try_iter().last().unwrap_or(written).max(written);
            if written < next_look || looked.is_err() {
                continue;
            }
            looked =
                early_look(&name, &tmp, written, &mut at, &mut spans, early).map_err(|e| match e {
                    Look::Io(e) => io_err(path)(e),
                    Look::NotMbox(e) => not_mbox(e),
                });
            if looked.is_err() {
                stop.store(true, Ordering::Relaxed);
            }
            // A message longer than a step is looked at again only once the stream has
            // grown as much again, so that it is not scanned over and over.
            next_look = written + EARLY_STEP.max(written.saturating_sub(at.position() as u64));
        }
        let inflated = inflater
            .join()
            .map_err(|_| bad("the decompression thread failed".into()))?;
        let written = writer
            .join()
            .map_err(|_| bad("the decompression writer failed".into()))?;
        inflated?;
        written.map_err(|e| match e.kind() {
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => bad(format!(
                "decompressing it needs more room than the folder {} has for temporary files ({e}); name a folder on a file system with room for the whole inflated mailbox with --temp-dir",
                temp.display()
            )),
            _ => io_err(path)(e),
        })?;
        looked?;
        Ok::<_, SourceError>((at, spans))
    })?;
    let mut source = map(path, &tmp)?;
    let data = source.body.bytes();
    let mut rest = Splitter::resume(data, at, true).map_err(not_mbox)?;
    let last: Vec<Span> = rest.by_ref().collect();
    early(&source.name, data, &last);
    for span in last {
        spans.push(span);
    }
    source.release_range(0, data.len());
    source.spans = spans;
    source.scratch = Some(Scratch::new(tmp));
    Ok(source)
}

/// Inflated bytes between two looks at the temporary file system's free space, at most.
const SPACE_STEP: u64 = 64 << 20;

/// Bytes the inflating thread hands to the writer at a time.
const INFLATE_BLOCK: usize = 4 << 20;

/// The bytes the temporary file may still grow by, or "storage full" when that is less than
/// one more block: a small gzip can inflate to any size (36 MB gave more than 5 GB in
/// 15 s), and a full disk breaks the rest of the machine too, so a twentieth of the file
/// system, at most 1 GiB, is left to others.
fn room_for(file: &File, written: u64) -> io::Result<u64> {
    let st = rustix::fs::fstatvfs(file)?;
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    let reserve = (st.f_blocks.saturating_mul(st.f_frsize) / 20).min(1 << 30);
    let room = free.saturating_sub(reserve);
    if room >= INFLATE_BLOCK as u64 {
        return Ok(room);
    }
    Err(io::Error::new(
        io::ErrorKind::StorageFull,
        format!(
            "{written} bytes inflated so far and more to come, {free} bytes free, {reserve} of them kept for the rest of the machine"
        ),
    ))
}

/// Inflated bytes between two write-outs of the temporary file.
const FLUSH_STEP: u64 = 32 << 20;

/// Starts writing `len` bytes of `file` from `from` to disk, without waiting for them: a
/// hint, so a failure is left to the syncs that follow.
fn start_writeback(file: &File, from: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(from), Ok(len)) = (i64::try_from(from), i64::try_from(len)) else {
        return;
    };
    // SAFETY: the descriptor is open for the whole call, which only reads its arguments.
    let _ =
        unsafe { libc::sync_file_range(file.as_raw_fd(), from, len, libc::SYNC_FILE_RANGE_WRITE) };
}

/// Why a look at a compressed input's inflated part failed.
enum Look {
    Io(io::Error),
    NotMbox(MboxError),
}

/// Splits the first `written` inflated bytes on from `at`, hands new messages to `early`
/// and keeps their spans.
fn early_look(
    name: &str,
    tmp: &File,
    written: u64,
    at: &mut mbox::Resume,
    spans: &mut Spans,
    early: &mut Early<'_>,
) -> Result<(), Look> {
    let len = usize::try_from(written).map_err(|e| Look::Io(io::Error::other(e)))?;
    // SAFETY: as in `map`; the first `written` bytes of our unnamed file are written and
    // never change. The map is dropped, and its pages given back, before the next look.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(tmp) }.map_err(Look::Io)?;
    let mut splitter = Splitter::resume(&map, *at, false).map_err(Look::NotMbox)?;
    let new: Vec<Span> = splitter.by_ref().collect();
    *at = splitter.state();
    early(name, &map, &new);
    for span in new {
        spans.push(span);
    }
    Ok(())
}

/// A Maildir and its Maildir++ subfolders (`.Sent/`, `.Archive.2019/`): one source each.
fn open_maildir(path: &Path, skipped: &mut Vec<String>) -> Result<Vec<Source>, SourceError> {
    let mut sources = vec![maildir_source(path, skipped)?];
    let mut subs: Vec<PathBuf> = fs::read_dir(path)
        .map_err(io_err(path))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                && p.join("cur").is_dir()
        })
        .collect();
    subs.sort();
    for sub in subs {
        sources.push(maildir_source(&sub, skipped)?);
    }
    Ok(sources)
}

fn maildir_source(path: &Path, skipped: &mut Vec<String>) -> Result<Source, SourceError> {
    let mut files = Vec::new();
    let top = inside(path);
    for sub in ["cur", "new"] {
        let dir = path.join(sub);
        if !dir.is_dir() {
            continue;
        }
        let mut names: Vec<PathBuf> = Vec::new();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let ft = entry.file_type().map_err(io_err(&entry.path()))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            // A message file may be a link (some backup tools deduplicate so): it is read.
            match entry_kind(&entry.path(), ft, &top) {
                Entry::File => names.push(entry.path()),
                Entry::Folder => skipped.push(format!(
                    "{}: a folder inside a Maildir's {sub}/, not read",
                    entry.path().display()
                )),
                Entry::Not(note) => skipped.push(note),
            }
        }
        names.sort();
        for p in names {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let flags: String = match name.rsplit_once(":2,") {
                Some((_, info)) => {
                    let mut f: Vec<char> = info.chars().filter(|c| "DFPRST".contains(*c)).collect();
                    f.sort_unstable();
                    f.dedup();
                    f.into_iter().collect()
                }
                None => String::new(),
            };
            files.push(MailFile { path: p, flags });
        }
    }
    Ok(Source {
        name: path.display().to_string(),
        body: Body::Files(files),
        spans: Default::default(),
        scratch: None,
        watch: None,
    })
}

/// Files that mail clients keep beside their mboxes and that are not mail.
fn is_index_file(p: &Path) -> bool {
    const SKIP: [&str; 8] = ["msf", "dat", "json", "sqlite", "html", "htm", "lock", "ini"];
    p.extension()
        .is_some_and(|e| SKIP.iter().any(|s| e.eq_ignore_ascii_case(s)))
        || p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// A folder that is not a Maildir: every mbox, gzip'd mbox, Maildir and `.eml` in it.
fn open_folder(
    root: &Path,
    temp: &Path,
    skipped: &mut Vec<String>,
    early: &mut Early<'_>,
) -> Result<Vec<Source>, SourceError> {
    let mut sources = Vec::new();
    let mut emls = Vec::new();
    let mut maildirs = Vec::new();
    let mut notes = Vec::new();
    walk(root, &inside(root), &mut notes, &mut |p| {
        if p.parent()
            .is_some_and(|d| d.ends_with("cur") || d.ends_with("new") || d.ends_with("tmp"))
        {
            if let Some(md) = p
                .parent()
                .and_then(Path::parent)
                .filter(|md| !maildirs.iter().any(|m| m == md))
            {
                maildirs.push(md.to_path_buf());
            }
            return;
        }
        if has_ext(p, "eml") {
            emls.push(MailFile {
                path: p.to_path_buf(),
                flags: String::new(),
            });
            return;
        }
        if is_index_file(p) {
            return;
        }
        match sniff(p) {
            Ok(f @ (Format::Gzip | Format::Xz | Format::Bzip2 | Format::Zstd)) => {
                sources.push(open_compressed(p, f, temp, early))
            }
            // Never skipped: an Outlook file in the folder is read, or stops the run.
            Ok(Format::Pst) => match open_pst(p, temp, skipped, early) {
                Ok(found) => sources.extend(found.into_iter().map(Ok)),
                Err(e) => sources.push(Err(e)),
            },
            Ok(_) => match open_mbox(p, early) {
                Ok(s) => sources.push(Ok(s)),
                Err(SourceError::NotMbox { .. }) => {
                    skipped.push(format!("{}: not mail, skipped", p.display()))
                }
                Err(e) => sources.push(Err(e)),
            },
            Err(e) => sources.push(Err(e)),
        }
    })?;
    skipped.append(&mut notes);
    let mut out: Vec<Source> = sources.into_iter().collect::<Result<_, _>>()?;
    for md in maildirs {
        out.extend(open_maildir(&md, skipped)?);
    }
    if !emls.is_empty() {
        out.push(Source {
            name: root.display().to_string(),
            body: Body::Files(emls),
            spans: Default::default(),
            scratch: None,
            watch: None,
        });
    }
    if out.is_empty() {
        return Err(SourceError::Bad {
            path: root.display().to_string(),
            why: "no mailbox found in this folder".into(),
        });
    }
    Ok(out)
}

/// Visits every regular file under `root` in name order, also through a link to one inside
/// `top`; a link to a folder is not followed (it could loop), and what is not read gets a
/// note in `notes`.
fn walk(
    root: &Path,
    top: &Path,
    notes: &mut Vec<String>,
    visit: &mut dyn FnMut(&Path),
) -> Result<(), SourceError> {
    let mut entries: Vec<(PathBuf, fs::FileType)> = Vec::new();
    for e in fs::read_dir(root).map_err(io_err(root))? {
        let e = e.map_err(io_err(root))?;
        let ft = e.file_type().map_err(io_err(&e.path()))?;
        entries.push((e.path(), ft));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (p, ft) in entries {
        match entry_kind(&p, ft, top) {
            Entry::Folder => walk(&p, top, notes, visit)?,
            Entry::File => visit(&p),
            Entry::Not(note) => notes.push(note),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens `path` as popsplit would by default, with the first pass left out.
    fn open_auto(path: &Path, skipped: &mut Vec<String>) -> Result<Vec<Source>, SourceError> {
        open(
            path,
            Format::Auto,
            &std::env::temp_dir(),
            skipped,
            &mut |_, _, _| {},
        )
    }
    use std::io::Write;

    const MBOX: &[u8] = b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nbody a\n\nFrom b@x Tue Jan  2 00:00:00 2001\nSubject: b\n\nbody b\n";

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
            Format::Auto,
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
            Format::Auto,
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

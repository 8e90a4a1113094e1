//! Stage 4 (deliver): write copies into per-user Maildirs, exactly once, never outside
//! `--out`.
//!
//! A copy's file name holds a hash of its folder and content, so a rerun recognises what
//! an earlier run delivered by listing `cur/` and `new/` (IMAP servers keep the part
//! before `:`). A copy is written as a file without a name (O_TMPFILE) on the Maildir's
//! file system, or where that cannot be as a named file in `tmp/`, made durable, and only
//! then linked or renamed into `cur/`: that is the commit point, so a killed run leaves no
//! partial file in `cur/`; an unnamed file goes with the process, and what it left in
//! `tmp/` is removed and written again by the next run.

use crate::compact::{Map, Set};
use std::fs;
use std::io::{self, IoSlice, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::decide::Confidence;
use crate::output::outfs::{self, DeliverError, Root};

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DeliverError + '_ {
    move |source| DeliverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How written copies are made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SyncPolicy {
    /// One file-system sync before a batch's copies are moved into cur/ and one after (the
    /// default).
    Batch,
    /// An fsync per file and per directory, as a delivery agent does.
    File,
    /// No sync: fastest, but a power cut can lose or truncate copies.
    None,
}

/// Dovecot keyword names of the confidence levels, searchable as IMAP keywords.
pub fn keyword(c: Confidence) -> String {
    format!("popsplit-{}", c.name())
}

/// Suffix of popsplit's own file names, in `cur/` and `tmp/`.
const TAG: &str = ".popsplit";

/// One copy to deliver.
#[derive(Debug, Clone, Copy)]
pub struct Copy<'a> {
    /// Hex key that names the copy; the same copy always has the same key.
    pub key: &'a str,
    /// popsplit's added header fields.
    pub added: &'a [u8],
    /// The original message.
    pub content: &'a [u8],
    /// Maildir flags (sorted upper-case letters).
    pub flags: &'a str,
    /// Confidence, shown as a keyword.
    pub confidence: Confidence,
    /// Arrival time for the file's mtime.
    pub mtime: Option<i64>,
}

/// A copy written, waiting for its link or rename into `cur/`.
#[derive(Debug)]
pub struct Staged {
    dirs: Arc<Folders>,
    /// Where its bytes are until then.
    held: Held,
    /// Its name in `cur/`.
    cur: String,
}

impl Staged {
    /// Where it will be once committed. Joined on demand: only the report and errors
    /// need it, and three allocations per copy showed in the profile of small messages.
    pub fn path(&self) -> PathBuf {
        self.dirs.in_cur(&self.cur)
    }
}

/// Where a staged copy's bytes are.
#[derive(Debug)]
enum Held {
    /// A file of this name in `tmp/`.
    Named(String),
    /// A file without a name, shared by the copies of one message that link to it.
    Unnamed(Arc<Unnamed>),
}

/// An open file without a name; its descriptor counts against [`Staging::most`].
#[derive(Debug)]
struct Unnamed {
    file: fs::File,
    how: outfs::Naming,
    staging: Arc<Staging>,
}

impl Drop for Unnamed {
    fn drop(&mut self) {
        self.staging.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How copies are staged in this output tree: unnamed files while the open-file limit
/// leaves room, named files in `tmp/` otherwise.
#[derive(Debug)]
struct Staging {
    /// How unnamed files are named; `None`: every copy is a named file.
    naming: Option<outfs::Naming>,
    /// Unnamed files open now.
    held: AtomicUsize,
    /// Unnamed files open at most ([`outfs::unnamed_most`]).
    most: usize,
}

impl Staging {
    /// A new unnamed file in `dir`, or `None` where a named one is to be written.
    fn unnamed(self: &Arc<Self>, dir: BorrowedFd<'_>) -> io::Result<Option<Unnamed>> {
        let Some(how) = self.naming else {
            return Ok(None);
        };
        if self.held.fetch_add(1, Ordering::Relaxed) >= self.most {
            self.held.fetch_sub(1, Ordering::Relaxed);
            return Ok(None);
        }
        match outfs::create_unnamed(dir) {
            Ok(Some(file)) => Ok(Some(Unnamed {
                file,
                how,
                staging: Arc::clone(self),
            })),
            other => {
                self.held.fetch_sub(1, Ordering::Relaxed);
                other.map(|_| None).map_err(io::Error::from)
            }
        }
    }
}

/// The open folders of one Maildir, shared by its staged copies and the commit thread: a
/// file is created and renamed through them, never by path.
#[derive(Debug)]
struct Folders {
    base_path: PathBuf,
    /// The file system it is on: an unnamed file is linked within one only.
    device: u64,
    base: OwnedFd,
    tmp: OwnedFd,
    cur: OwnedFd,
}

impl Folders {
    /// The path of the file `name` in `cur/`, for the report and errors.
    fn in_cur(&self, name: &str) -> PathBuf {
        let mut p = self.base_path.join("cur");
        p.push(name);
        p
    }
}

/// One user's Maildir, ready to take copies.
#[derive(Debug)]
pub struct Mailbox {
    dirs: Arc<Folders>,
    staging: Arc<Staging>,
    /// Keyword letter of each confidence level, in [`Confidence::ALL`] order.
    letters: [char; 5],
    /// Keys of the copies already in `cur/` or `new/`, as numbers: a rerun over a large
    /// output holds one for every file.
    present: Set<u128>,
}

/// The key in the name of a popsplit copy (`<arrival>.<key>.popsplit,S=<size>:2,<info>`),
/// as a number and as written; `None` for a name popsplit does not write.
pub fn name_key(name: &str) -> Option<(u128, &str)> {
    let stem = name.split(':').next().unwrap_or_default();
    let (_, key) = stem
        .split_once(TAG)
        .and_then(|(head, _)| head.split_once('.'))?;
    key_bits(key).map(|bits| (bits, key))
}

/// A copy key (24 lower-case hex digits) as a number, or `None` for any other text.
pub fn key_bits(key: &str) -> Option<u128> {
    let hex = key.len() == 24 && key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| u128::from_str_radix(key, 16).ok()).flatten()
}

impl Mailbox {
    /// The keyword letter of `level` in this Maildir.
    pub fn letter(&self, level: Confidence) -> char {
        self.letters[level.index()]
    }

    /// Moves the file `from` of the folder `from_dir` into `cur/` as `name`, never
    /// replacing a file there: a copy an earlier run wrote elsewhere, renamed, not
    /// rewritten, so that the flags a mail client gave it stay with it.
    pub fn adopt(
        &self,
        from_dir: BorrowedFd<'_>,
        from: &str,
        name: &str,
    ) -> Result<PathBuf, DeliverError> {
        let path = self.dirs.in_cur(name);
        outfs::rename_new(from_dir, from, self.dirs.cur.as_fd(), name).map_err(io_at(&path))?;
        Ok(path)
    }

    /// Makes the entries of `cur/` durable (under [`SyncPolicy::File`], after adopting).
    pub fn sync_cur(&self) -> Result<(), DeliverError> {
        outfs::sync_dir(self.dirs.cur.as_fd(), &self.dirs.base_path.join("cur"))
    }

    /// Whether a copy with this key is already in the Maildir.
    pub fn has(&self, key: &str) -> bool {
        key_bits(key).is_some_and(|k| self.present.contains(&k))
    }

    /// Writes a copy as a new 0600 file, unnamed or in `tmp/`.
    pub fn stage(&self, copy: &Copy<'_>, sync: SyncPolicy) -> Result<Staged, DeliverError> {
        let tmp = tmp_name(copy);
        let d = &self.dirs;
        // Joined only for an error or a named file: not per unnamed copy.
        let tmp_dir = || d.base_path.join("tmp");
        let unnamed = self.staging.unnamed(d.tmp.as_fd());
        let held = match unnamed.map_err(|e| io_at(&tmp_dir())(e))? {
            Some(u) => {
                fill(&u.file, copy, sync).map_err(|e| io_at(&tmp_dir())(e))?;
                Held::Unnamed(Arc::new(u))
            }
            None => {
                let path = tmp_dir().join(&tmp);
                let file = outfs::create_new(d.tmp.as_fd(), &tmp, &path)?;
                fill(&file, copy, sync).map_err(io_at(&path))?;
                Held::Named(tmp.clone())
            }
        };
        Ok(self.staged(copy, &tmp, held))
    }

    /// Stages a copy whose bytes and times are those of `first` (another folder's copy of
    /// the same message, with the same added fields) as a hard link to it, as Dovecot's
    /// delivery agent does for several recipients: no second write. `None` when the file
    /// system refuses the link (a folder on another file system, too many links, links
    /// not supported): the caller writes the copy instead. Under [`SyncPolicy::File`] the
    /// data is durable already (one inode); the commit syncs the folders.
    pub fn stage_link(
        &self,
        first: &Staged,
        copy: &Copy<'_>,
    ) -> Result<Option<Staged>, DeliverError> {
        let first_tmp = match &first.held {
            // Linked at the commit, as the first is; never across file systems.
            Held::Unnamed(u) => {
                let here = first.dirs.device == self.dirs.device;
                let held = Held::Unnamed(Arc::clone(u));
                return Ok(here.then(|| self.staged(copy, &tmp_name(copy), held)));
            }
            Held::Named(name) => name,
        };
        let tmp = tmp_name(copy);
        let d = &self.dirs;
        match rustix::fs::linkat(
            first.dirs.tmp.as_fd(),
            first_tmp.as_str(),
            d.tmp.as_fd(),
            tmp.as_str(),
            rustix::fs::AtFlags::empty(),
        ) {
            Ok(()) => Ok(Some(self.staged(copy, &tmp, Held::Named(tmp.clone())))),
            Err(
                rustix::io::Errno::XDEV
                | rustix::io::Errno::MLINK
                | rustix::io::Errno::PERM
                | rustix::io::Errno::OPNOTSUPP,
            ) => Ok(None),
            Err(rustix::io::Errno::EXIST) => Err(DeliverError::Refused {
                path: d.base_path.join("tmp").join(&tmp),
                why: "exists already; popsplit only writes new files",
            }),
            Err(e) => Err(io_at(&d.base_path.join("tmp").join(&tmp))(e.into())),
        }
    }

    /// The staged copy named `tmp` (in `tmp/`, or as it would be there), with its name in
    /// `cur/`.
    fn staged(&self, copy: &Copy<'_>, tmp: &str, held: Held) -> Staged {
        let cur = format!(
            "{tmp}:2,{}{}",
            copy.flags,
            self.letters[copy.confidence.index()]
        );
        Staged {
            dirs: Arc::clone(&self.dirs),
            held,
            cur,
        }
    }
}

/// Writes `copy` into the new `file`, sets its mtime, and under [`SyncPolicy::File`]
/// makes it durable.
fn fill(file: &fs::File, copy: &Copy<'_>, sync: SyncPolicy) -> io::Result<()> {
    write_all_parts(
        file,
        &mut [IoSlice::new(copy.added), IoSlice::new(copy.content)],
    )?;
    if let Some(t) = copy.mtime {
        let ft = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
        file.set_times(fs::FileTimes::new().set_modified(ft).set_accessed(ft))?;
    }
    if sync == SyncPolicy::File {
        file.sync_all()?;
    }
    Ok(())
}

/// A copy's name in `tmp/`: arrival, key, popsplit's tag and size.
fn tmp_name(copy: &Copy<'_>) -> String {
    let size = copy.added.len() + copy.content.len();
    format!(
        "{}.{}{TAG},S={size}",
        copy.mtime.unwrap_or(0).max(0),
        copy.key
    )
}

/// What committing a batch needs, owned, so that the commit runs in a thread of its own
/// while the next batch is written: the disk takes one batch as the CPU writes the next.
#[derive(Debug)]
pub struct Commit {
    policy: SyncPolicy,
    root: Arc<Root>,
    /// Under [`SyncPolicy::File`], the Maildirs whose entries the renames change.
    dirs: Vec<Arc<Folders>>,
}

/// A failed commit: the position (in the batch) of the message whose copy could not be
/// moved, or `None` when a sync failed.
#[derive(Debug)]
pub struct CommitError {
    /// The message, when one copy's rename failed.
    pub message: Option<usize>,
    /// Copies of the batch moved into `cur/` before the failure.
    pub moved: usize,
    /// The failure.
    pub source: DeliverError,
}

impl Commit {
    /// Makes the staged copies' data durable, moves them into `cur/` (the commit point), and
    /// makes the new names durable. `staged` holds each message's copies, in batch order;
    /// each is let go once in `cur/`, so that its descriptor is free for the batches being
    /// written meanwhile.
    pub fn run(&self, staged: Vec<Vec<Staged>>) -> Result<(), CommitError> {
        let sync = |moved| {
            move |source| CommitError {
                message: None,
                moved,
                source,
            }
        };
        let root = &self.root;
        if self.policy == SyncPolicy::Batch {
            outfs::syncfs(root.fd.as_fd(), &root.path).map_err(sync(0))?;
        }
        // One thread: renames across folders take the file system's rename lock, so more
        // threads would only wait on each other.
        let mut moved = 0;
        for (i, copies) in staged.into_iter().enumerate() {
            for s in copies {
                let to = s.dirs.cur.as_fd();
                match &s.held {
                    Held::Named(tmp) => outfs::rename_new(s.dirs.tmp.as_fd(), tmp, to, &s.cur),
                    Held::Unnamed(u) => outfs::name_unnamed(u.file.as_fd(), u.how, to, &s.cur),
                }
                .map_err(|e| CommitError {
                    message: Some(i),
                    moved,
                    source: io_at(&s.path())(e),
                })?;
                moved += 1;
            }
        }
        match self.policy {
            SyncPolicy::Batch => outfs::syncfs(root.fd.as_fd(), &root.path).map_err(sync(moved)),
            SyncPolicy::File => {
                for d in &self.dirs {
                    outfs::sync_dir(d.cur.as_fd(), &d.base_path.join("cur"))
                        .map_err(sync(moved))?;
                    outfs::sync_dir(d.base.as_fd(), &d.base_path).map_err(sync(moved))?;
                }
                outfs::sync_dir(root.fd.as_fd(), &root.path).map_err(sync(moved))
            }
            SyncPolicy::None => Ok(()),
        }
    }
}

/// The output tree: one Maildir per user under one root.
#[derive(Debug)]
pub struct Outbox {
    root: Arc<Root>,
    boxes: Map<String, Mailbox>,
    staging: Arc<Staging>,
}

impl Outbox {
    /// The output tree under `root`, opened and locked.
    pub fn open(root: Root) -> Self {
        let naming = outfs::naming(root.fd.as_fd());
        Self::staging(root, naming, outfs::unnamed_most())
    }

    /// The output tree under `root`, staging up to `most` copies as unnamed files.
    fn staging(root: Root, naming: Option<outfs::Naming>, most: usize) -> Self {
        let staging = Staging {
            naming,
            held: AtomicUsize::new(0),
            most,
        };
        Outbox {
            root: Arc::new(root),
            boxes: Map::default(),
            staging: Arc::new(staging),
        }
    }

    /// Makes sure the Maildir `name` exists with its keywords file; `name` must come from
    /// [`crate::text::folder_name`] or the validated `--unassigned` option, followed
    /// for a Maildir++ subfolder by `/` and a name of [`crate::folders::maildir_name`].
    pub fn prepare(&mut self, name: &str) -> Result<(), DeliverError> {
        if self.boxes.contains_key(name) {
            return Ok(());
        }
        let base_path = self.root.path.join(name);
        let (user, sub) = name.split_once('/').unwrap_or((name, ""));
        if !sub.is_empty() {
            // A folder's Maildir is whole too, even with no mail in its INBOX: what serves
            // or hands over the user (`handover`) looks for its `cur/`.
            self.prepare(user)?;
        }
        let mut base = outfs::subdir(self.root.fd.as_fd(), user, &self.root.path.join(user))?;
        if !sub.is_empty() {
            // One level only, and never `.`, `..` or a path: the name is a Maildir++ one.
            if sub.contains('/') || !sub.starts_with('.') || sub == "." || sub == ".." {
                return Err(DeliverError::Refused {
                    path: base_path,
                    why: "is not a Maildir++ folder name",
                });
            }
            base = outfs::subdir(base.as_fd(), sub, &base_path)?;
            // Maildir++ marks a subfolder so, for delivery agents (Courier's, maildrop).
            const MARK: &str = "maildirfolder";
            let mark = base_path.join(MARK);
            if outfs::open_regular(base.as_fd(), MARK, &mark)?.is_none() {
                outfs::create_new(base.as_fd(), MARK, &mark)?;
            }
        }
        let open = |sub: &str| outfs::subdir(base.as_fd(), sub, &base_path.join(sub));
        let (tmp, new, cur) = (open("tmp")?, open("new")?, open("cur")?);
        let device = rustix::fs::fstat(&tmp)
            .map_err(|e| io_at(&base_path)(e.into()))?
            .st_dev;
        let dirs = Folders {
            base_path,
            device,
            base,
            tmp,
            cur,
        };
        let letters = keyword_letters(&dirs)?;
        let present = scan(&dirs, new.as_fd())?;
        self.boxes.insert(
            name.to_string(),
            Mailbox {
                dirs: Arc::new(dirs),
                staging: Arc::clone(&self.staging),
                letters,
                present,
            },
        );
        Ok(())
    }

    /// The prepared Maildir `name`.
    pub fn mailbox(&self, name: &str) -> Option<&Mailbox> {
        self.boxes.get(name)
    }

    /// The commit of the copies staged so far, under `policy`.
    pub fn commit(&self, policy: SyncPolicy) -> Commit {
        let dirs = match policy {
            SyncPolicy::File => self.boxes.values().map(|b| Arc::clone(&b.dirs)).collect(),
            SyncPolicy::Batch | SyncPolicy::None => Vec::new(),
        };
        Commit {
            policy,
            root: Arc::clone(&self.root),
            dirs,
        }
    }
}

/// Writes every byte of `parts` in order: one system call for popsplit's fields and the
/// message together, unless the system takes less at a time.
fn write_all_parts(mut file: &fs::File, mut parts: &mut [IoSlice<'_>]) -> io::Result<()> {
    IoSlice::advance_slices(&mut parts, 0);
    while !parts.is_empty() {
        match file.write_vectored(parts) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut parts, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Keys of popsplit's copies in `cur/` and `new/`; removes popsplit's leftovers in `tmp/`.
/// A file of popsplit's name that is not a regular file (a link planted to redirect or
/// hide a copy) stops the run.
fn scan(dirs: &Folders, new: BorrowedFd<'_>) -> Result<Set<u128>, DeliverError> {
    let mut present = Set::default();
    for (sub, fd) in [("cur", dirs.cur.as_fd()), ("new", new)] {
        let dir = dirs.base_path.join(sub);
        outfs::each_entry(fd, &dir, |name, regular| {
            if let Some((bits, _)) = name_key(name) {
                if !regular {
                    return Err(DeliverError::Refused {
                        path: dir.join(name),
                        why: "has the name of a popsplit copy but is not a regular file",
                    });
                }
                present.insert(bits);
            }
            Ok(())
        })?;
    }
    let tmp = dirs.base_path.join("tmp");
    let mut leftovers = Vec::new();
    outfs::each_entry(dirs.tmp.as_fd(), &tmp, |name, _| {
        if name.contains(TAG) {
            leftovers.push(name.to_string());
        }
        Ok(())
    })?;
    for name in leftovers {
        outfs::remove_leftover(dirs.tmp.as_fd(), &name, &tmp.join(&name))?;
    }
    Ok(present)
}

/// Reads (or creates) the Maildir's `dovecot-keywords` file and returns the letter of each
/// confidence keyword, adding missing ones at free indexes without disturbing others.
fn keyword_letters(dirs: &Folders) -> Result<[char; 5], DeliverError> {
    const NAME: &str = "dovecot-keywords";
    let path = dirs.base_path.join(NAME);
    let mut existing = String::new();
    if let Some(mut f) = outfs::open_regular(dirs.base.as_fd(), NAME, &path)? {
        f.read_to_string(&mut existing).map_err(io_at(&path))?;
    }
    let mut table: Vec<(usize, String)> = existing
        .lines()
        .filter_map(|l| {
            let (n, name) = l.split_once(' ')?;
            Some((n.parse().ok()?, name.trim().to_string()))
        })
        .filter(|(n, _)| *n < 26)
        .collect();
    let mut letters = ['?'; 5];
    let mut changed = false;
    for (slot, c) in Confidence::ALL.iter().enumerate() {
        let name = keyword(*c);
        let index = match table.iter().find(|(_, k)| *k == name) {
            Some((n, _)) => *n,
            None => {
                let free = (0..26).find(|n| table.iter().all(|(m, _)| m != n)).ok_or(
                    DeliverError::Refused {
                        path: path.clone(),
                        why: "has no free keyword slot (Dovecot allows 26 per Maildir)",
                    },
                )?;
                table.push((free, name));
                changed = true;
                free
            }
        };
        letters[slot] = (b'a' + index as u8) as char;
    }
    if changed {
        table.sort();
        let text: String = table.iter().map(|(n, k)| format!("{n} {k}\n")).collect();
        const NEW: &str = "dovecot-keywords.new";
        let tmp = dirs.base_path.join("tmp").join(NEW);
        outfs::remove_leftover(dirs.tmp.as_fd(), NEW, &tmp)?;
        outfs::create_new(dirs.tmp.as_fd(), NEW, &tmp)?
            .write_all(text.as_bytes())
            .map_err(io_at(&tmp))?;
        // Replacing the old file is the point; the new one is popsplit's own.
        rustix::fs::renameat(dirs.tmp.as_fd(), NEW, dirs.base.as_fd(), NAME)
            .map_err(|e| io_at(&path)(e.into()))?;
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_popsplit_keys_are_recognised() {
        let key = "0123456789abcdef01234567";
        assert_eq!(key_bits(key), Some(0x0123456789abcdef01234567));
        for other in [
            "0123456789abcdef0123456",
            "0123456789ABCDEF01234567",
            "+123456789abcdef01234567",
            "0123456789abcdef012345678",
            "0123456789abcdeg01234567",
        ] {
            assert_eq!(key_bits(other), None, "{other}");
        }
    }

    #[test]
    fn keywords_are_added_beside_existing_ones() {
        let out = tempfile::tempdir().expect("tmp");
        let base = out.path().join("alice");
        fs::create_dir_all(base.join("tmp")).expect("mkdir");
        fs::write(
            base.join("dovecot-keywords"),
            "0 $Junk\n2 popsplit-medium\n",
        )
        .expect("write");
        let mut o = Outbox::open(Root::open(out.path()).expect("open"));
        o.prepare("alice").expect("prepare");
        assert_eq!(
            o.mailbox("alice").expect("box").letters,
            ['b', 'c', 'd', 'e', 'f']
        );
        let text = fs::read_to_string(base.join("dovecot-keywords")).expect("read");
        assert_eq!(
            text,
            "0 $Junk\n1 popsplit-high\n2 popsplit-medium\n3 popsplit-low\n4 popsplit-none\n5 popsplit-reviewed\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinked_user_folder() {
        let out = tempfile::tempdir().expect("tmp");
        let elsewhere = tempfile::tempdir().expect("tmp");
        std::os::unix::fs::symlink(elsewhere.path(), out.path().join("bob")).expect("symlink");
        let mut o = Outbox::open(Root::open(out.path()).expect("open"));
        let e = o.prepare("bob").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_dir(elsewhere.path()).expect("list").count(), 0);
    }

    fn copy<'a>(key: &'a str) -> Copy<'a> {
        Copy {
            key,
            added: b"X-A: 1\n",
            content: b"Subject: s\n\nbody\n",
            flags: "RS",
            confidence: Confidence::Low,
            mtime: Some(1_000_000_000),
        }
    }

    /// Each way of staging: named files in `tmp/`, and unnamed ones named through each
    /// [`outfs::Naming`] the system allows.
    fn ways() -> Vec<Option<outfs::Naming>> {
        let probe = tempfile::tempdir().expect("tmp");
        let dir = Root::open(probe.path()).expect("open");
        // EmptyPath is root's only, on most kernels; the probe finds what this one allows
        // (none where the test folder's file system makes no unnamed files).
        match outfs::naming(dir.fd.as_fd()) {
            Some(outfs::Naming::EmptyPath) => vec![
                None,
                Some(outfs::Naming::Proc),
                Some(outfs::Naming::EmptyPath),
            ],
            Some(outfs::Naming::Proc) => vec![None, Some(outfs::Naming::Proc)],
            None => vec![None],
        }
    }

    /// A new output folder holding one prepared Maildir, `name`, staging the given way.
    fn prepared_as(name: &str, naming: Option<outfs::Naming>) -> (tempfile::TempDir, Outbox) {
        let out = tempfile::tempdir().expect("tmp");
        let mut o = Outbox::staging(Root::open(out.path()).expect("open"), naming, usize::MAX);
        o.prepare(name).expect("prepare");
        (out, o)
    }

    fn entries(dir: &Path) -> usize {
        fs::read_dir(dir).expect("list").count()
    }

    #[test]
    fn the_probe_finds_a_naming_and_leaves_nothing() {
        let out = tempfile::tempdir().expect("tmp");
        let o = Outbox::open(Root::open(out.path()).expect("open"));
        // Where the test folder's file system makes unnamed files (tmpfs, ext4, XFS), the
        // probe finds a way to name them.
        let makes = outfs::create_unnamed(o.root.fd.as_fd()).is_ok_and(|f| f.is_some());
        assert_eq!(o.staging.naming.is_some(), makes);
        assert!(o.staging.most >= 256, "{}", o.staging.most);
        let left: Vec<_> = fs::read_dir(out.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(left, [std::ffi::OsString::from(outfs::LOCK)]);
    }

    #[test]
    fn delivered_file_has_flags_keyword_mtime_and_bytes() {
        for way in ways() {
            delivered_file_has_flags_keyword_mtime_and_bytes_when(way);
        }
    }

    fn delivered_file_has_flags_keyword_mtime_and_bytes_when(way: Option<outfs::Naming>) {
        use std::os::unix::fs::PermissionsExt;
        let (out, o) = prepared_as("carol", way);
        let staged = o
            .mailbox("carol")
            .expect("box")
            .stage(&copy("abc"), SyncPolicy::Batch)
            .expect("stage");
        assert!(!staged.path().exists(), "visible in cur/ before the commit");
        // An unnamed copy is in no folder until its commit.
        let in_tmp = entries(&out.path().join("carol/tmp"));
        assert_eq!(in_tmp, usize::from(way.is_none()), "{way:?}");
        let p = &staged.path();
        o.commit(SyncPolicy::Batch)
            .run(vec![vec![staged]])
            .expect("commit");
        let mode = fs::metadata(p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{way:?}");
        assert!(
            p.to_string_lossy()
                .ends_with("1000000000.abc.popsplit,S=24:2,RSc"),
            "{}",
            p.display()
        );
        assert_eq!(fs::read(p).expect("read"), b"X-A: 1\nSubject: s\n\nbody\n");
        let m = fs::metadata(p).expect("meta");
        assert_eq!(
            filetime::FileTime::from_last_modification_time(&m).unix_seconds(),
            1_000_000_000
        );
        assert_eq!(
            fs::read_dir(out.path().join("carol/tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }

    #[test]
    fn a_second_folders_copy_is_a_hard_link_to_the_first() {
        for way in ways() {
            a_second_folders_copy_is_a_hard_link_to_the_first_when(way);
        }
    }

    fn a_second_folders_copy_is_a_hard_link_to_the_first_when(way: Option<outfs::Naming>) {
        use std::os::unix::fs::MetadataExt;
        const K1: &str = "00000000000000000000000e";
        const K2: &str = "00000000000000000000000f";
        let (_out, mut o) = prepared_as("gina", way);
        o.prepare("hank").expect("prepare");
        let first = o
            .mailbox("gina")
            .expect("box")
            .stage(&copy(K1), SyncPolicy::Batch)
            .expect("stage");
        let second = o
            .mailbox("hank")
            .expect("box")
            .stage_link(&first, &copy(K2))
            .expect("link")
            .expect("linked");
        let paths = [first.path(), second.path()];
        o.commit(SyncPolicy::Batch)
            .run(vec![vec![first, second]])
            .expect("commit");
        let (a, b) = (
            fs::metadata(&paths[0]).expect("meta"),
            fs::metadata(&paths[1]).expect("meta"),
        );
        assert_eq!((a.ino(), a.nlink()), (b.ino(), 2));
        assert!(paths[1].to_string_lossy().contains("/hank/cur/"));
        assert!(paths[1].to_string_lossy().contains(K2));
        assert_eq!(
            fs::read(&paths[1]).expect("read"),
            b"X-A: 1\nSubject: s\n\nbody\n"
        );
    }

    #[test]
    fn a_failed_commit_names_its_message_and_keeps_the_copies_before() {
        for way in ways() {
            a_failed_commit_names_its_message_and_keeps_the_copies_before_when(way);
        }
    }

    fn a_failed_commit_names_its_message_and_keeps_the_copies_before_when(
        way: Option<outfs::Naming>,
    ) {
        const K1: &str = "00000000000000000000000c";
        const K2: &str = "00000000000000000000000d";
        let (_out, o) = prepared_as("erin", way);
        let b = o.mailbox("erin").expect("box");
        let first = b.stage(&copy(K1), SyncPolicy::Batch).expect("stage");
        let second = b.stage(&copy(K2), SyncPolicy::Batch).expect("stage");
        let first_path = first.path();
        match &second.held {
            // Gone from tmp/ (a cleaner removed it).
            Held::Named(tmp) => fs::remove_file(second.dirs.base_path.join("tmp").join(tmp)),
            // Something took its name in cur/: never replaced.
            Held::Unnamed(_) => fs::write(second.path(), b"other"),
        }
        .expect("break");
        let e = o
            .commit(SyncPolicy::Batch)
            .run(vec![vec![first], vec![second]])
            .unwrap_err();
        assert_eq!(e.message, Some(1));
        assert!(e.source.to_string().contains(K2), "{}", e.source);
        assert!(first_path.exists());
        assert_eq!(e.moved, 1);
    }

    #[test]
    fn past_the_open_file_budget_copies_are_named_files() {
        let out = tempfile::tempdir().expect("tmp");
        let root = Root::open(out.path()).expect("open");
        let mut o = Outbox::staging(root, Some(outfs::Naming::Proc), 2);
        o.prepare("ivan").expect("prepare");
        let b = o.mailbox("ivan").expect("box");
        let keys = [
            "000000000000000000000001",
            "000000000000000000000002",
            "000000000000000000000003",
        ];
        let staged: Vec<Staged> = keys
            .iter()
            .map(|k| b.stage(&copy(k), SyncPolicy::Batch).expect("stage"))
            .collect();
        let named = |s: &[Staged]| {
            s.iter()
                .filter(|s| matches!(s.held, Held::Named(_)))
                .count()
        };
        assert_eq!(named(&staged), 1);
        assert_eq!(entries(&out.path().join("ivan/tmp")), 1);
        assert_eq!(o.staging.held.load(Ordering::Relaxed), 2);
        o.commit(SyncPolicy::Batch)
            .run(vec![staged])
            .expect("commit");
        // Committed and dropped: the budget is free again.
        assert_eq!(o.staging.held.load(Ordering::Relaxed), 0);
        assert_eq!(entries(&out.path().join("ivan/cur")), 3);
        assert_eq!(entries(&out.path().join("ivan/tmp")), 0);
        let again = b.stage(&copy("000000000000000000000004"), SyncPolicy::Batch);
        assert!(matches!(again.expect("stage").held, Held::Unnamed(_)));
    }

    #[test]
    fn a_reopened_maildir_knows_its_copies_and_drops_leftovers() {
        const K1: &str = "00000000000000000000000a";
        const K2: &str = "00000000000000000000000b";
        let (out, o) = prepared_as("dave", None);
        let done = o
            .mailbox("dave")
            .expect("box")
            .stage(&copy(K1), SyncPolicy::File)
            .expect("stage");
        let done_path = done.path();
        o.commit(SyncPolicy::File)
            .run(vec![vec![done]])
            .expect("commit");
        // A run killed after writing in tmp/ but before the rename.
        let _left = o
            .mailbox("dave")
            .expect("box")
            .stage(&copy(K2), SyncPolicy::None)
            .expect("stage");
        // An IMAP server renamed the first copy's flags.
        let renamed = done_path.with_file_name(
            done_path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .replace(":2,RSc", ":2,FRSc"),
        );
        fs::rename(&done_path, &renamed).expect("rename");
        // The run ended: its lock with it.
        drop(o);
        let mut again = Outbox::open(Root::open(out.path()).expect("open"));
        again.prepare("dave").expect("prepare");
        let b = again.mailbox("dave").expect("box");
        assert!(b.has(K1));
        assert!(!b.has(K2));
        assert_eq!(
            fs::read_dir(out.path().join("dave/tmp"))
                .expect("tmp")
                .count(),
            0
        );
    }
}

//! Stage 4's footing: every file-system call inside `--out` is made relative to a folder
//! descriptor opened without following links, and every file popsplit creates there is
//! new (`O_EXCL|O_NOFOLLOW`). A link planted, or a folder swapped for a link, by a local
//! user who owns part of the output (handed to a mail server with `chown -R`) then cannot
//! redirect a write of a run as root outside `--out`: a path component is looked up once,
//! when its folder is opened, and never again by name.
//!
//! Folders are made 0700 and files 0600, as delivery agents do: the output is private mail.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, FlockOperation, Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// A delivery failure, naming the path it happened at.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// A file-system call failed.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// Another run holds the lock on `--out`.
    #[error(
        "{path} is in use by another popsplit run ({holder}); wait for it to finish, or choose another --out"
    )]
    Busy {
        /// The output folder.
        path: PathBuf,
        /// Who holds the lock.
        holder: String,
    },
    /// Something in the output tree is not what popsplit would have made.
    #[error("{path}: {why}")]
    Refused {
        /// Where.
        path: PathBuf,
        /// Why popsplit will not write there.
        why: &'static str,
    },
}

/// Name of the lock file at the top of `--out`, held for the whole run.
pub const LOCK: &str = ".popsplit.lock";

/// Mode of every folder popsplit creates.
const DIR_MODE: u32 = 0o700;
/// Mode of every file popsplit creates.
pub const FILE_MODE: u32 = 0o600;

fn io_at(path: &Path) -> impl FnOnce(Errno) -> DeliverError + '_ {
    move |e| DeliverError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

fn refused(path: &Path, why: &'static str) -> DeliverError {
    DeliverError::Refused {
        path: path.to_path_buf(),
        why,
    }
}

/// The top of `--out`, opened once and locked against a second run for as long as it lives.
#[derive(Debug)]
pub struct Root {
    /// The path as given, for messages.
    pub path: PathBuf,
    /// The folder.
    pub fd: OwnedFd,
    /// The open lock file: the lock ends when it is closed, also when the process dies.
    _lock: File,
}

impl Root {
    /// Creates `path` if needed (0700), opens it and takes the run's lock; a second run on
    /// the same `--out` is refused, naming the process that holds it.
    pub fn open(path: &Path) -> Result<Self, DeliverError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(path)
            .map_err(|source| DeliverError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        // `--out` itself is the admin's choice and may be a link; what is inside is not.
        let fd = rustix::fs::open(
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_at(path))?;
        let lock_path = path.join(LOCK);
        let lock = rustix::fs::openat(
            &fd,
            LOCK,
            OFlags::RDWR | OFlags::CREATE | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
            Mode::from_raw_mode(FILE_MODE),
        )
        .map_err(|e| not_followed(&lock_path, e))?;
        let mut lock = File::from(lock);
        if !is_regular(lock.as_fd(), &lock_path)? {
            return Err(refused(&lock_path, "is not a regular file"));
        }
        match rustix::fs::flock(&lock, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                // The holder writes its pid right after taking the lock; it may not yet have.
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(DeliverError::Busy {
                    path: path.to_path_buf(),
                    holder: match holder.parse::<u32>() {
                        Ok(pid) => format!("process {pid}"),
                        Err(_) => "another process".to_string(),
                    },
                });
            }
            Err(e) => return Err(io_at(&lock_path)(e)),
        }
        rustix::fs::ftruncate(&lock, 0).map_err(io_at(&lock_path))?;
        writeln!(lock, "{}", std::process::id()).map_err(|source| DeliverError::Io {
            path: lock_path.clone(),
            source,
        })?;
        Ok(Root {
            path: path.to_path_buf(),
            fd,
            _lock: lock,
        })
    }
}

/// Opens `--out` for reading only when it exists, without creating or locking it (what
/// a dry run looks at); `None` when there is no such folder yet.
pub fn existing_top(path: &Path) -> Result<Option<OwnedFd>, DeliverError> {
    // `--out` itself is the admin's choice and may be a link, as in [`Root::open`].
    match rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// The error for an `O_NOFOLLOW` open that met a link (`ELOOP`), or any other failure.
fn not_followed(path: &Path, e: Errno) -> DeliverError {
    match e {
        Errno::LOOP => refused(
            path,
            "is a symbolic link; popsplit does not follow links inside --out",
        ),
        e => io_at(path)(e),
    }
}

fn is_regular(fd: BorrowedFd<'_>, path: &Path) -> Result<bool, DeliverError> {
    let st = rustix::fs::fstat(fd).map_err(io_at(path))?;
    Ok(FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
}

/// Opens the folder `name` in `parent` (at `path`), creating it (0700) if missing; refuses a
/// link or anything else that is not a folder in its place.
pub fn subdir(parent: BorrowedFd<'_>, name: &str, path: &Path) -> Result<OwnedFd, DeliverError> {
    let open = || {
        rustix::fs::openat(
            parent,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
    };
    let opened = match open() {
        Err(Errno::NOENT) => match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(DIR_MODE))
        {
            Ok(()) | Err(Errno::EXIST) => open(),
            Err(e) => Err(e),
        },
        other => other,
    };
    opened.map_err(|e| match e {
        // Linux says ENOTDIR, not ELOOP, for a link opened with O_DIRECTORY|O_NOFOLLOW.
        Errno::NOTDIR => match kind(parent, name, path) {
            Ok(Some(FileType::Symlink)) => not_followed(path, Errno::LOOP),
            _ => refused(path, "exists and is not a directory"),
        },
        e => not_followed(path, e),
    })
}

/// Opens the existing folder `name` in `parent` without following a link; `None` when
/// there is no folder of that name (nothing, a file, or a link).
pub fn existing_dir(
    parent: BorrowedFd<'_>,
    name: &str,
    path: &Path,
) -> Result<Option<OwnedFd>, DeliverError> {
    match rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Removes the regular file `name` from `dir`: a copy of popsplit's whose folder no longer
/// gets it, after its right folder has it.
pub fn remove_file(dir: BorrowedFd<'_>, name: &str, path: &Path) -> Result<(), DeliverError> {
    rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io_at(path))
}

/// Creates the new file `name` (0600) in `dir` for writing: never an existing file, never
/// through a link.
pub fn create_new(dir: BorrowedFd<'_>, name: &str, path: &Path) -> Result<File, DeliverError> {
    rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    )
    .map(File::from)
    .map_err(|e| match e {
        Errno::EXIST => refused(path, "exists already; popsplit only writes new files"),
        e => not_followed(path, e),
    })
}

/// Opens the regular file `name` in `dir` for reading, `None` when there is none; refuses a
/// link or anything else in its place (a FIFO would block the run, a device never end).
pub fn open_regular(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
) -> Result<Option<File>, DeliverError> {
    match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) if is_regular(fd.as_fd(), path)? => Ok(Some(File::from(fd))),
        Ok(_) => Err(refused(path, "is not a regular file")),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(not_followed(path, e)),
    }
}

/// What is at `name` in `dir`, without following a link; `None` when nothing is.
pub fn kind(
    dir: BorrowedFd<'_>,
    name: &str,
    path: &Path,
) -> Result<Option<FileType>, DeliverError> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(FileType::from_raw_mode(st.st_mode))),
        Err(Errno::NOENT) => Ok(None),
        Err(e) => Err(io_at(path)(e)),
    }
}

/// Removes what an earlier, killed run left at `name` in `dir`: only a regular file; anything
/// else there stops the run, since popsplit never made it.
pub fn remove_leftover(dir: BorrowedFd<'_>, name: &str, path: &Path) -> Result<(), DeliverError> {
    match kind(dir, name, path)? {
        None => Ok(()),
        Some(FileType::RegularFile) => {
            rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io_at(path))
        }
        Some(_) => Err(refused(path, "is not a regular file")),
    }
}

/// Moves `from` in `from_dir` to `to` in `to_dir`, never replacing a file already there
/// (where the file system cannot promise that, it is a plain rename: nothing else writes
/// there while the run holds its lock).
pub fn rename_new(
    from_dir: BorrowedFd<'_>,
    from: &str,
    to_dir: BorrowedFd<'_>,
    to: &str,
) -> io::Result<()> {
    match rustix::fs::renameat_with(from_dir, from, to_dir, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS) => rustix::fs::renameat(from_dir, from, to_dir, to),
        other => other,
    }
    .map_err(io::Error::from)
}

/// How a file created without a name ([`create_unnamed`]) gets its name at the commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// `linkat(fd, "", AT_EMPTY_PATH)`: most kernels allow it only to root
    /// (CAP_DAC_READ_SEARCH).
    EmptyPath,
    /// A link to `/proc/self/fd/N`, followed: any user, where /proc is mounted.
    Proc,
}

/// The file name a probe of [`naming`] uses for a moment, hidden at the top of `--out`.
const PROBE: &str = ".popsplit-probe";

/// How unnamed files made in `dir` can be named, found by naming and removing a probe
/// file; `None` where the file system makes no unnamed files or none can be named (then
/// every copy is a named file in `tmp/`, which always works).
pub fn naming(dir: BorrowedFd<'_>) -> Option<Naming> {
    // A probe a killed run left: the link below would fail on it.
    let _ = rustix::fs::unlinkat(dir, PROBE, AtFlags::empty());
    let file = create_unnamed(dir).ok().flatten()?;
    [Naming::EmptyPath, Naming::Proc].into_iter().find(|&how| {
        name_unnamed(file.as_fd(), how, dir, PROBE).is_ok()
            && rustix::fs::unlinkat(dir, PROBE, AtFlags::empty()).is_ok()
    })
}

/// Creates a 0600 file without a name on `dir`'s file system (O_TMPFILE): no directory
/// entry to add, look up and remove again in `tmp/`, and nothing left behind by a killed
/// run. `None` where the file system or the open-file limit cannot make one now.
pub fn create_unnamed(dir: BorrowedFd<'_>) -> Result<Option<File>, Errno> {
    match rustix::fs::openat(
        dir,
        ".",
        OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::from_raw_mode(FILE_MODE),
    ) {
        Ok(fd) => Ok(Some(File::from(fd))),
        // Not supported here (EISDIR: a kernel older than O_TMPFILE), or no descriptor
        // left: a named file in `tmp/` does the same job.
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL | Errno::MFILE | Errno::NFILE) => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Gives the unnamed `file` the name `to` in `to_dir`; never replaces a file there.
pub fn name_unnamed(
    file: BorrowedFd<'_>,
    how: Naming,
    to_dir: BorrowedFd<'_>,
    to: &str,
) -> io::Result<()> {
    match how {
        Naming::EmptyPath => rustix::fs::linkat(file, "", to_dir, to, AtFlags::EMPTY_PATH),
        Naming::Proc => {
            use std::os::fd::AsRawFd;
            let link = format!("/proc/self/fd/{}", file.as_raw_fd());
            rustix::fs::linkat(
                rustix::fs::CWD,
                link.as_str(),
                to_dir,
                to,
                AtFlags::SYMLINK_FOLLOW,
            )
        }
    }
    .map_err(io::Error::from)
}

/// Unnamed files open at once, at most: the copies of a commit and of the batches written
/// while it runs, with room to spare (a descriptor table of 32,768 takes 256 KB).
const UNNAMED_MOST: u64 = 32_768;

/// How many unnamed files may be open at once: half the open-file limit (the rest is the
/// run's), and at most [`UNNAMED_MOST`].
pub fn unnamed_most() -> usize {
    use rustix::process::{Resource, getrlimit};
    let limit = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    usize::try_from((limit / 2).min(UNNAMED_MOST)).unwrap_or(usize::MAX)
}

/// Raises the open-file limit to make room for [`UNNAMED_MOST`] unnamed files and as many
/// of the run's own (past the hard limit where the process may, as root), and grows the
/// descriptor table to hold [`unnamed_most`] more, before any thread starts: a process
/// with threads waits for an RCU grace period at each growth of its table (kernel-lists:
/// 35 ms of a 0.16 s run, the table doubling up to 4,096); a process of one thread does
/// not.
pub fn room_for_unnamed() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (
        limit.current.unwrap_or(u64::MAX),
        limit.maximum.unwrap_or(u64::MAX),
    );
    let want = 2 * UNNAMED_MOST + 1024;
    let set = |current: u64, maximum: u64| {
        let to = Rlimit {
            current: Some(current),
            maximum: (maximum != u64::MAX).then_some(maximum),
        };
        setrlimit(Resource::Nofile, to).is_ok()
    };
    if soft < want {
        let _ = set(want, want.max(hard)) || set(want.min(hard), hard);
    }
    // The lowest free descriptor from there on: the table grows to hold it, then it is
    // closed. Where it cannot be had, the table grows later, as it would anyway.
    if let Ok(past) = std::os::fd::RawFd::try_from(unnamed_most() + 64) {
        let _ = rustix::io::fcntl_dupfd_cloexec(io::stderr(), past);
    }
}

/// The folders at the top of an existing `--out` (`None` when it does not exist), hidden
/// entries left out: they are the lock and other programs' files, not Maildirs.
pub fn top_folders(out: &Path) -> Result<Option<(OwnedFd, Vec<String>)>, DeliverError> {
    let Some(top) = existing_top(out)? else {
        return Ok(None);
    };
    let mut names = Vec::new();
    each_entry(top.as_fd(), out, |name, regular| {
        if !regular && !name.starts_with('.') {
            names.push(name.to_string());
        }
        Ok(())
    })?;
    Ok(Some((top, names)))
}

/// Calls `each` with the name of every entry of `dir` (at `path`) and whether it is a
/// regular file (the kind from the listing, asked of the file system only when unknown).
pub fn each_entry(
    dir: BorrowedFd<'_>,
    path: &Path,
    mut each: impl FnMut(&str, bool) -> Result<(), DeliverError>,
) -> Result<(), DeliverError> {
    let list = rustix::fs::Dir::read_from(dir).map_err(io_at(path))?;
    for entry in list {
        let entry = entry.map_err(io_at(path))?;
        let Ok(name) = entry.file_name().to_str() else {
            // Not a name popsplit writes.
            continue;
        };
        if name == "." || name == ".." {
            continue;
        }
        let regular = match entry.file_type() {
            FileType::Unknown => kind(dir, name, &path.join(name))? == Some(FileType::RegularFile),
            t => t == FileType::RegularFile,
        };
        each(name, regular)?;
    }
    Ok(())
}

/// Makes a folder's entries durable.
pub fn sync_dir(dir: BorrowedFd<'_>, path: &Path) -> Result<(), DeliverError> {
    rustix::fs::fsync(dir).map_err(io_at(path))
}

/// One syncfs(2) flushes the whole output file system: far cheaper than an fsync per file.
pub fn syncfs(dir: BorrowedFd<'_>, path: &Path) -> Result<(), DeliverError> {
    rustix::fs::syncfs(dir).map_err(io_at(path))
}

/// Creates (or empties) an output file readable by its owner only, also when it existed:
/// the report and the page quote senders and subjects of private mail.
pub(crate) fn create_private(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(crate::output::outfs::FILE_MODE)
        .open(path)?;
    file.set_permissions(std::fs::Permissions::from_mode(
        crate::output::outfs::FILE_MODE,
    ))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of this process's descriptor table, as the kernel reports it.
    fn table_size() -> Option<usize> {
        let status = fs::read_to_string("/proc/self/status").ok()?;
        let line = status.lines().find(|l| l.starts_with("FDSize:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    #[test]
    fn the_table_is_grown_once_for_the_unnamed_files() {
        room_for_unnamed();
        let most = unnamed_most();
        // The test process's limit leaves room for some at least (1,024 is the least).
        assert!(most >= 256, "{most}");
        assert!(
            table_size().is_some_and(|n| n > most + 64),
            "{:?}",
            table_size()
        );
    }

    #[test]
    fn an_unnamed_file_is_named_once_and_never_over_another() {
        let dir = tempfile::tempdir().expect("tmp");
        let fd = rustix::fs::open(
            dir.path(),
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
        )
        .expect("open");
        let how = naming(fd.as_fd()).expect("unnamed files here");
        let mut file = create_unnamed(fd.as_fd()).expect("create").expect("made");
        file.write_all(b"mail").expect("write");
        assert_eq!(fs::read_dir(dir.path()).expect("list").count(), 0);
        fs::write(dir.path().join("taken"), b"other").expect("write");
        for h in [how, Naming::Proc] {
            let e = name_unnamed(file.as_fd(), h, fd.as_fd(), "taken").unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{h:?}");
        }
        name_unnamed(file.as_fd(), how, fd.as_fd(), "mine").expect("name");
        assert_eq!(fs::read(dir.path().join("mine")).expect("read"), b"mail");
        assert_eq!(fs::read(dir.path().join("taken")).expect("read"), b"other");
    }
}

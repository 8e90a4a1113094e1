//! Stage 4 (deliver): write copies into per-user Maildirs, never outside `--out`.
//!
//! Each copy is written to `tmp/`, fsynced, given the message's arrival time as mtime and
//! renamed into `cur/` by the maildir crate; the crate does not fsync directories, so
//! [`Outbox::sync`] does that once per Maildir before the run reports success.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use maildir::Maildir;

use crate::decide::Confidence;

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
    /// Something in the output tree is not what popsplit would have made.
    #[error("{path}: {why}")]
    Refused {
        /// Where.
        path: PathBuf,
        /// Why popsplit will not write there.
        why: &'static str,
    },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DeliverError + '_ {
    move |source| DeliverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Dovecot keyword names of the confidence levels, searchable as IMAP keywords.
pub fn keyword(c: Confidence) -> String {
    format!("popsplit-{}", c.name())
}

/// One user's Maildir, ready to take copies.
#[derive(Debug)]
pub struct Mailbox {
    maildir: Maildir,
    /// Keyword letter of each confidence level, in [`Confidence::ALL`] order.
    letters: [char; 4],
}

impl Mailbox {
    /// Writes `added` then `content` as one new message in `cur/`, with Maildir `flags`
    /// plus the confidence keyword, and `mtime` as its modification time.
    pub fn deliver(
        &self,
        added: &[u8],
        content: &[u8],
        flags: &str,
        confidence: Confidence,
        mtime: Option<i64>,
    ) -> Result<PathBuf, DeliverError> {
        let base = self.maildir.path();
        let maildir_err = |e: maildir::MaildirError| match e {
            maildir::MaildirError::Io(source) => DeliverError::Io {
                path: base.join("tmp"),
                source,
            },
            other => DeliverError::Io {
                path: base.join("tmp"),
                source: io::Error::other(other.to_string()),
            },
        };
        let mut tmp = self.maildir.open_file_in_tmp().map_err(maildir_err)?;
        let tmp_path = tmp.path().to_path_buf();
        tmp.write_all(added).map_err(io_at(&tmp_path))?;
        tmp.write_all(content).map_err(io_at(&tmp_path))?;
        if let Some(t) = mtime {
            let ft = filetime::FileTime::from_unix_time(t, 0);
            filetime::set_file_times(&tmp_path, ft, ft).map_err(io_at(&tmp_path))?;
        }
        let letter = self.letters[Confidence::ALL
            .iter()
            .position(|c| *c == confidence)
            .unwrap_or(3)];
        let info = format!("{flags}{letter}");
        let id = self
            .maildir
            .move_tmp_to_cur_with_flags(tmp, &info)
            .map_err(maildir_err)?;
        Ok(base.join("cur").join(format!("{id}:2,{info}")))
    }
}

/// The output tree: one Maildir per user under one root.
#[derive(Debug)]
pub struct Outbox {
    root: PathBuf,
    boxes: HashMap<String, Mailbox>,
}

impl Outbox {
    /// Opens (creating if needed) the output root.
    pub fn open(root: &Path) -> Result<Self, DeliverError> {
        fs::create_dir_all(root).map_err(io_at(root))?;
        Ok(Outbox {
            root: root.to_path_buf(),
            boxes: HashMap::new(),
        })
    }

    /// Makes sure the Maildir `name` exists with its keywords file; `name` must come from
    /// [`crate::sanitize::folder_name`] or the validated `--unassigned` option.
    pub fn prepare(&mut self, name: &str) -> Result<(), DeliverError> {
        if self.boxes.contains_key(name) {
            return Ok(());
        }
        let base = self.root.join(name);
        for dir in [
            base.clone(),
            base.join("tmp"),
            base.join("new"),
            base.join("cur"),
        ] {
            real_dir(&dir)?;
        }
        let letters = keyword_letters(&base)?;
        self.boxes.insert(
            name.to_string(),
            Mailbox {
                maildir: Maildir::from(base),
                letters,
            },
        );
        Ok(())
    }

    /// The prepared Maildir `name`.
    pub fn mailbox(&self, name: &str) -> Option<&Mailbox> {
        self.boxes.get(name)
    }

    /// Makes every rename so far durable: fsync of each `cur/` and of the root.
    pub fn sync(&self) -> Result<(), DeliverError> {
        for b in self.boxes.values() {
            let cur = b.maildir.path().join("cur");
            sync_dir(&cur)?;
            sync_dir(b.maildir.path())?;
        }
        sync_dir(&self.root)
    }
}

fn sync_dir(dir: &Path) -> Result<(), DeliverError> {
    fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io_at(dir))
}

/// Creates `dir` if missing; refuses a symlink or a non-directory in its place, so that
/// nothing planted inside `--out` can redirect a delivery elsewhere.
fn real_dir(dir: &Path) -> Result<(), DeliverError> {
    match fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(DeliverError::Refused {
            path: dir.to_path_buf(),
            why: "is a symbolic link; popsplit does not follow links inside --out",
        }),
        Ok(m) if !m.is_dir() => Err(DeliverError::Refused {
            path: dir.to_path_buf(),
            why: "exists and is not a directory",
        }),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match fs::create_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(io_at(dir)(e)),
            _ => Ok(()),
        },
        Err(e) => Err(io_at(dir)(e)),
    }
}

/// Reads (or creates) the Maildir's `dovecot-keywords` file and returns the letter of each
/// confidence keyword, adding missing ones at free indexes without disturbing others.
fn keyword_letters(base: &Path) -> Result<[char; 4], DeliverError> {
    let path = base.join("dovecot-keywords");
    let existing = match fs::symlink_metadata(&path) {
        Ok(m) if !m.is_file() => {
            return Err(DeliverError::Refused {
                path,
                why: "is not a regular file",
            });
        }
        Ok(_) => fs::read_to_string(&path).map_err(io_at(&path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_at(&path)(e)),
    };
    let mut table: Vec<(usize, String)> = existing
        .lines()
        .filter_map(|l| {
            let (n, name) = l.split_once(' ')?;
            Some((n.parse().ok()?, name.trim().to_string()))
        })
        .filter(|(n, _)| *n < 26)
        .collect();
    let mut letters = ['?'; 4];
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
        let tmp = base.join("tmp").join("dovecot-keywords.popsplit");
        fs::write(&tmp, text).map_err(io_at(&tmp))?;
        fs::rename(&tmp, &path).map_err(io_at(&path))?;
    }
    Ok(letters)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut o = Outbox::open(out.path()).expect("open");
        o.prepare("alice").expect("prepare");
        assert_eq!(
            o.mailbox("alice").expect("box").letters,
            ['b', 'c', 'd', 'e']
        );
        let text = fs::read_to_string(base.join("dovecot-keywords")).expect("read");
        assert_eq!(
            text,
            "0 $Junk\n1 popsplit-high\n2 popsplit-medium\n3 popsplit-low\n4 popsplit-none\n"
        );
    }

    #[cfg(unix)]
    #[test]
    fn refuses_symlinked_user_folder() {
        let out = tempfile::tempdir().expect("tmp");
        let elsewhere = tempfile::tempdir().expect("tmp");
        std::os::unix::fs::symlink(elsewhere.path(), out.path().join("bob")).expect("symlink");
        let mut o = Outbox::open(out.path()).expect("open");
        let e = o.prepare("bob").unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(fs::read_dir(elsewhere.path()).expect("list").count(), 0);
    }

    #[test]
    fn delivered_file_has_flags_keyword_mtime_and_bytes() {
        let out = tempfile::tempdir().expect("tmp");
        let mut o = Outbox::open(out.path()).expect("open");
        o.prepare("carol").expect("prepare");
        let p = o
            .mailbox("carol")
            .expect("box")
            .deliver(
                b"X-A: 1\n",
                b"Subject: s\n\nbody\n",
                "RS",
                Confidence::Low,
                Some(1_000_000_000),
            )
            .expect("deliver");
        assert!(p.to_string_lossy().ends_with(":2,RSc"), "{}", p.display());
        assert_eq!(fs::read(&p).expect("read"), b"X-A: 1\nSubject: s\n\nbody\n");
        let m = fs::metadata(&p).expect("meta");
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
        o.sync().expect("sync");
    }
}

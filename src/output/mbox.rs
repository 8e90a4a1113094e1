//! Stage 4, other form (`--format mbox`): one mboxrd file per folder, for admins whose next
//! step is a mail client or an import tool that wants files.
//!
//! Each file is written as `<folder>.mbox.partial` and renamed to `<folder>.mbox` only when
//! the run has finished and the data is on disk: a file is all of the run or nothing. An
//! existing `<folder>.mbox` is never overwritten; a `.partial` left by a killed run is.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::input::mbox::asctime;
use crate::output::maildir::SyncPolicy;
use crate::output::outfs::DeliverError;
use crate::output::outfs::{self, Root};

/// The open mbox files of one run.
#[derive(Debug)]
pub struct MboxOut {
    root: Root,
    files: BTreeMap<String, BufWriter<File>>,
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> DeliverError + '_ {
    move |source| DeliverError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The names of a folder's finished file and of the file it is written as.
fn names(folder: &str) -> (String, String) {
    (format!("{folder}.mbox"), format!("{folder}.mbox.partial"))
}

impl MboxOut {
    /// The mbox files of one run under `root`, opened and locked.
    pub fn open(root: Root) -> Self {
        MboxOut {
            root,
            files: BTreeMap::new(),
        }
    }

    /// Appends one copy to the folder's mbox, mboxrd-quoted, after a `From ` line.
    pub fn write(
        &mut self,
        folder: &str,
        sender: &str,
        time: Option<i64>,
        added: &[u8],
        content: &[u8],
    ) -> Result<PathBuf, DeliverError> {
        let (done_name, partial_name) = names(folder);
        let (done, partial) = (
            self.root.path.join(&done_name),
            self.root.path.join(&partial_name),
        );
        if !self.files.contains_key(folder) {
            let fd = self.root.fd.as_fd();
            if outfs::kind(fd, &done_name, &done)?.is_some() {
                return Err(DeliverError::Refused {
                    path: done,
                    why: "exists already; popsplit never overwrites an mbox (move it away or choose another --out)",
                });
            }
            // What a killed run left; no other run writes here while this one holds the lock.
            outfs::remove_leftover(fd, &partial_name, &partial)?;
            let file = outfs::create_new(fd, &partial_name, &partial)?;
            self.files
                .insert(folder.to_string(), BufWriter::with_capacity(1 << 20, file));
        }
        let out = self.files.get_mut(folder).ok_or(DeliverError::Refused {
            path: partial.clone(),
            why: "not open",
        })?;
        let sender = if sender.is_empty() {
            "MAILER-DAEMON"
        } else {
            sender
        };
        let line = format!("From {sender} {}\n", asctime(time.unwrap_or(0)));
        let mut write = || -> io::Result<()> {
            out.write_all(line.as_bytes())?;
            for part in [added, content] {
                for l in part.split_inclusive(|&b| b == b'\n') {
                    let gts = l.iter().take_while(|&&b| b == b'>').count();
                    if l[gts..].starts_with(b"From ") {
                        out.write_all(b">")?;
                    }
                    out.write_all(l)?;
                }
            }
            // A message must end with a line end before the separating blank line.
            if !content.ends_with(b"\n") {
                out.write_all(b"\n")?;
            }
            out.write_all(b"\n")
        };
        write().map_err(io_at(&partial))?;
        Ok(done)
    }

    /// Flushes, syncs and renames every file into place.
    pub fn finish(self, sync: SyncPolicy) -> Result<(), DeliverError> {
        let root = &self.root;
        let fd = root.fd.as_fd();
        for (folder, w) in self.files {
            let (done_name, partial_name) = names(&folder);
            let (done, partial) = (root.path.join(&done_name), root.path.join(&partial_name));
            let file = w
                .into_inner()
                .map_err(|e| io_at(&partial)(e.into_error()))?;
            if sync != SyncPolicy::None {
                file.sync_all().map_err(io_at(&partial))?;
            }
            outfs::rename_new(fd, &partial_name, fd, &done_name).map_err(io_at(&done))?;
        }
        if sync != SyncPolicy::None {
            outfs::sync_dir(fd, &root.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn quotes_the_mboxrd_way_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut out = MboxOut::open(Root::open(dir.path()).expect("open"));
        out.write(
            "alice",
            "s@x",
            Some(0),
            b"X-A: 1\n",
            b"Subject: a\n\nFrom me\n>From you\nno newline",
        )
        .expect("write");
        out.write("alice", "", None, b"", b"Subject: b\n\nb\n")
            .expect("write");
        assert!(dir.path().join("alice.mbox.partial").exists());
        out.finish(SyncPolicy::Batch).expect("finish");
        let text = fs::read_to_string(dir.path().join("alice.mbox")).expect("read");
        assert_eq!(
            text,
            "From s@x Thu Jan  1 00:00:00 1970\nX-A: 1\nSubject: a\n\n>From me\n>>From you\nno newline\n\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: b\n\nb\n\n"
        );
        let mut again = MboxOut::open(Root::open(dir.path()).expect("open"));
        let e = again
            .write("alice", "s@x", None, b"", b"x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("never overwrites"), "{e}");
    }
}

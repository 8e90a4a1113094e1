//! Stage 4, on a rerun: popsplit's own copies that an earlier run wrote into a folder the
//! current decisions no longer give them (a correction, a new directory) are moved to
//! their new folder, renamed rather than rewritten so that a mail client's flags stay, or
//! removed when the new folder holds the copy already. Files popsplit did not write (no
//! key in their name) are never touched.
//!
//! A rename is atomic, so a run killed while moving leaves each copy in exactly one of
//! its two folders; the rerun finds it where it is. A copy is removed only once its right
//! folder holds it (from before, or by a rename done just before the removal).

use crate::config::DUPLICATES;
use crate::config::{Config, OutputFormat};
use crate::output::maildir::{Outbox, SyncPolicy};
use crate::run::analyse::Decided;
use crate::run::duplicates::{Plan, copy_key, sub_of, user_of};
use rayon::prelude::*;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::output::maildir::{key_bits, name_key};
use crate::output::outfs;
use crate::output::outfs::DeliverError;

/// One earlier copy: its Maildir sub-folder and file name.
#[derive(Debug, Clone)]
pub struct Found {
    /// The folder that holds it.
    pub folder: String,
    /// `cur` or `new`.
    sub: &'static str,
    /// Its file name.
    pub name: Box<str>,
}

impl Found {
    /// Its path relative to `--out`.
    pub fn relative(&self) -> String {
        format!("{}/{}/{}", self.folder, self.sub, self.name)
    }
}

/// One folder of the earlier output.
#[derive(Debug)]
struct Folder {
    cur: OwnedFd,
    new: Option<OwnedFd>,
    /// Keyword letter → name, from its `dovecot-keywords`.
    keywords: BTreeMap<char, String>,
    /// popsplit's copies no current decision has claimed yet: key → (in `new/`, name).
    unclaimed: HashMap<u128, (bool, Box<str>)>,
}

/// popsplit's copies in `--out` as the run found them, by folder.
#[derive(Debug, Default)]
pub struct Earlier {
    root: PathBuf,
    folders: BTreeMap<String, Folder>,
}

/// popsplit's copies in the Maildir `base` (at `base_path`); `None` when it has no `cur/`.
fn scan_folder(base: OwnedFd, base_path: &Path) -> Result<Option<Folder>, DeliverError> {
    let open = |sub: &str| outfs::existing_dir(base.as_fd(), sub, &base_path.join(sub));
    let Some(cur) = open("cur")? else {
        return Ok(None);
    };
    let new = open("new")?;
    let mut unclaimed = HashMap::new();
    for (in_new, fd) in [(false, Some(&cur)), (true, new.as_ref())] {
        let Some(fd) = fd else { continue };
        let dir = base_path.join(if in_new { "new" } else { "cur" });
        outfs::each_entry(fd.as_fd(), &dir, |file, regular| {
            if let (true, Some((key, _))) = (regular, name_key(file)) {
                unclaimed.insert(key, (in_new, file.into()));
            }
            Ok(())
        })?;
    }
    let keywords = keywords(base.as_fd(), base_path)?;
    Ok(Some(Folder {
        cur,
        new,
        keywords,
        unclaimed,
    }))
}

impl Earlier {
    /// Lists popsplit's copies in every Maildir of `out` (nothing when `out` does not
    /// exist). Reads only: nothing is created or changed.
    pub fn scan(out: &Path) -> Result<Self, DeliverError> {
        let mut earlier = Earlier {
            root: out.to_path_buf(),
            folders: BTreeMap::new(),
        };
        let Some((top, names)) = outfs::top_folders(out)? else {
            return Ok(earlier);
        };
        for name in names {
            let base_path = out.join(&name);
            let Some(base) = outfs::existing_dir(top.as_fd(), &name, &base_path)? else {
                continue;
            };
            // The user's Maildir++ subfolders (`.Archive`) hold copies as its INBOX does.
            let mut subs = Vec::new();
            outfs::each_entry(base.as_fd(), &base_path, |sub, regular| {
                if !regular && sub.starts_with('.') {
                    subs.push(sub.to_string());
                }
                Ok(())
            })?;
            subs.sort();
            for sub in subs {
                let sub_path = base_path.join(&sub);
                if let Some(fd) = outfs::existing_dir(base.as_fd(), &sub, &sub_path)?
                    && let Some(folder) = scan_folder(fd, &sub_path)?
                {
                    earlier.folders.insert(format!("{name}/{sub}"), folder);
                }
            }
            if let Some(folder) = scan_folder(base, &base_path)? {
                earlier.folders.insert(name, folder);
            }
        }
        Ok(earlier)
    }

    /// Whether any folder holds copies not yet claimed: only then is there anything to
    /// look for.
    pub fn has_unclaimed(&self) -> bool {
        self.folders.values().any(|f| !f.unclaimed.is_empty())
    }

    /// How many copies no decision of this run claimed (messages not in these inputs).
    pub fn unclaimed(&self) -> usize {
        self.folders.values().map(|f| f.unclaimed.len()).sum()
    }

    /// Claims the copy `key` of `folder` for a current decision; whether it was there.
    pub fn claim(&mut self, folder: &str, key: &str) -> bool {
        let bits = key_bits(key);
        self.folders
            .get_mut(folder)
            .zip(bits)
            .and_then(|(f, k)| f.unclaimed.remove(&k))
            .is_some()
    }

    /// The folders to look in for a message's stray copies, besides `except`.
    pub fn folders_besides<'a>(&'a self, except: &'a [String]) -> impl Iterator<Item = &'a str> {
        self.folders
            .iter()
            .filter(|(name, f)| !f.unclaimed.is_empty() && !except.contains(name))
            .map(|(name, _)| name.as_str())
    }

    /// Whether `folder` holds an unclaimed copy with this key (read only, for workers).
    pub fn holds(&self, folder: &str, key: &str) -> bool {
        let bits = key_bits(key);
        self.folders
            .get(folder)
            .zip(bits)
            .is_some_and(|(f, k)| f.unclaimed.contains_key(&k))
    }

    /// Takes the unclaimed copy `key` of `folder`, when it is still there.
    pub fn take(&mut self, folder: &str, key: &str) -> Option<Found> {
        let bits = key_bits(key)?;
        let (in_new, name) = self.folders.get_mut(folder)?.unclaimed.remove(&bits)?;
        Some(Found {
            folder: folder.to_string(),
            sub: if in_new { "new" } else { "cur" },
            name,
        })
    }

    /// The name the copy `found` gets in `to` under the key `key` with the keyword letter
    /// `letter`: its arrival and size as they are, the flags a client set kept (a keyword
    /// only where `to` knows the same keyword), popsplit's confidence keywords replaced.
    pub fn new_name(&self, found: &Found, to: &str, key: &str, letter: char) -> String {
        let (stem, info) = found.name.split_once(":2,").unwrap_or((&found.name, ""));
        let old_key = name_key(&found.name).map_or("", |(_, k)| k);
        let stem = stem.replacen(old_key, key, 1);
        let from = self.folders.get(&found.folder);
        let target = self.folders.get(to);
        let mut flags: Vec<char> = info
            .chars()
            .filter_map(|c| {
                if c.is_ascii_uppercase() {
                    return Some(c);
                }
                let name = from.and_then(|f| f.keywords.get(&c))?;
                if name.starts_with("popsplit-") {
                    return None;
                }
                target?
                    .keywords
                    .iter()
                    .find(|(_, n)| *n == name)
                    .map(|(l, _)| *l)
            })
            .chain([letter])
            .collect();
        flags.sort_unstable();
        flags.dedup();
        format!("{stem}:2,{}", flags.into_iter().collect::<String>())
    }

    /// The folder and file name of `found`, to rename or remove it through.
    pub fn dir_of(&self, found: &Found) -> Option<(std::os::fd::BorrowedFd<'_>, PathBuf)> {
        let f = self.folders.get(&found.folder)?;
        let fd = match found.sub {
            "new" => f.new.as_ref()?.as_fd(),
            _ => f.cur.as_fd(),
        };
        Some((fd, self.root.join(found.relative())))
    }

    /// Removes `found` (its right folder holds the copy already).
    pub fn remove(&self, found: &Found) -> Result<(), DeliverError> {
        match self.dir_of(found) {
            Some((fd, path)) => outfs::remove_file(fd, &found.name, &path),
            None => Ok(()),
        }
    }

    /// Makes the removal or renaming out of `found`'s folder durable.
    pub fn sync(&self, found: &Found) -> Result<(), DeliverError> {
        match self.dir_of(found) {
            Some((fd, path)) => outfs::sync_dir(fd, path.parent().unwrap_or(&path)),
            None => Ok(()),
        }
    }
}

/// Keyword letter → name, from the Maildir's `dovecot-keywords` (empty without one).
fn keywords(
    base: std::os::fd::BorrowedFd<'_>,
    base_path: &Path,
) -> Result<BTreeMap<char, String>, DeliverError> {
    let path = base_path.join("dovecot-keywords");
    let mut text = String::new();
    if let Some(mut f) = outfs::open_regular(base, "dovecot-keywords", &path)? {
        f.read_to_string(&mut text)
            .map_err(|source| DeliverError::Io { path, source })?;
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            let (n, name) = l.split_once(' ')?;
            let n: u8 = n.parse().ok().filter(|n| *n < 26)?;
            Some(((b'a' + n) as char, name.trim().to_string()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn a_moved_name_keeps_flags_and_shared_keywords_and_changes_key_and_confidence() {
        let out = tempfile::tempdir().expect("tmp");
        for (folder, keywords) in [
            (
                "alice",
                "0 popsplit-high\n1 popsplit-low\n2 $Important\n3 private\n",
            ),
            (
                "bob",
                "0 $Important\n1 popsplit-high\n5 popsplit-reviewed\n",
            ),
        ] {
            for sub in ["cur", "new", "tmp"] {
                fs::create_dir_all(out.path().join(folder).join(sub)).expect("mkdir");
            }
            fs::write(out.path().join(folder).join("dovecot-keywords"), keywords).expect("kw");
        }
        const OLD: &str = "00000000000000000000000a";
        const NEW: &str = "00000000000000000000000b";
        let name = format!("1000.{OLD}.popsplit,S=24:2,FSbcd");
        fs::write(out.path().join("alice/cur").join(&name), "x").expect("write");
        fs::write(out.path().join("alice/cur/1001.mine:2,S"), "y").expect("write");
        let mut earlier = Earlier::scan(out.path()).expect("scan");
        assert_eq!(earlier.unclaimed(), 1, "only popsplit's file is known");
        let found = earlier.take("alice", OLD).expect("found");
        assert!(earlier.take("alice", OLD).is_none(), "taken once");
        // F and S stay; popsplit-low (b) goes; $Important (c) is a in bob; private (d) is
        // unknown there; bob's reviewed letter is f.
        assert_eq!(
            earlier.new_name(&found, "bob", NEW, 'f'),
            format!("1000.{NEW}.popsplit,S=24:2,FSaf")
        );
        assert_eq!(found.relative(), format!("alice/cur/{name}"));
    }
}

/// One message's earlier copies that this run moved or removed (or, dry, would).
#[derive(Debug, Default)]
pub(crate) struct Rehomed {
    /// (from, to), relative to `--out`.
    pub(crate) moved: Vec<(String, String)>,
    /// Removed files, relative to `--out`.
    pub(crate) removed: Vec<String>,
    /// The folders a moved copy now fills, which need no new copy.
    pub(crate) filled: Vec<String>,
    /// The planned folders that held the copy before this run (what a dry run reports as
    /// already there).
    pub(crate) present: Vec<String>,
}

/// Makes the earlier copies of a batch's messages match the current decisions: each
/// copy of a message in a folder its plan does not name is renamed into a planned folder
/// that lacks the copy, or removed when none does. Claims every planned copy that is
/// there. With no `outbox` (a dry run), only says what it would do. On failure, the
/// position of the message in the batch.
///
/// With the source's folders kept, a message's stray copies are looked for only in the
/// same folder of other users, and in the INBOXes, where a run with `--flatten` put
/// every copy: the same message in another folder of the shared box (a copy filed in
/// `Archive`) is a copy of its own, which that folder's source claims.
pub(crate) fn rehome(
    earlier: &mut Earlier,
    outbox: Option<&Outbox>,
    work: &[Decided<'_>],
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
                .filter(|g| {
                    user_of(g) != DUPLICATES
                        && (any_folder || sub_of(g) == sub || sub_of(g).is_empty())
                })
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

/// User folders (Maildirs, or `<user>.mbox` files) in the output that the directory has
/// no user for. A rerun with another directory decides anew but never moves or removes a
/// copy, so the admin must hear that the earlier copies are still there.
pub(crate) fn earlier_folders(config: &Config) -> Vec<String> {
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
                OutputFormat::Maildir => {
                    (e.file_type().ok()?.is_dir() && holds_mail(&e.path())).then_some(name)
                }
                OutputFormat::Mbox => name.strip_suffix(".mbox").map(str::to_string),
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

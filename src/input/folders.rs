//! Folders given as input: Maildirs and their Maildir++ subfolders, `.eml` trees,
//! Thunderbird profiles (mbox files and `.sbd/` folders), and Outlook PST files through
//! `readpst`.

use crate::input::inflate::open_compressed;
use crate::input::mapped::open_mbox;
use crate::input::sniff::{has_ext, quoted, sniff, what_is};
use crate::input::{Body, Early, InputFormat, MailFile, Source, SourceError, eml_sources, io_err};
use std::fs::{self};
use std::io;
use std::path::{Path, PathBuf};

/// What an entry of an input folder is, links followed: a regular file to read, a folder,
/// or neither (with a note for the admin on why it is not read).
pub(crate) enum Entry {
    File,
    Folder,
    Not(String),
}

/// The resolved form of an input folder, which links inside it must stay in.
pub(crate) fn inside(folder: &Path) -> PathBuf {
    fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf())
}

/// What `p` (of type `ft`, found in the input folder resolved as `top`) is. A link is read
/// only when its file is inside `top`: a run as root must not copy a file the input's
/// owner cannot read (a link to /etc/shadow) into a mailbox.
pub(crate) fn entry_kind(p: &Path, ft: fs::FileType, top: &Path) -> Entry {
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

/// An Outlook PST or OST file: `readpst` writes every mail folder of it as an mbox into a
/// temporary folder, which is then read as a folder of mboxes. Each source is named by
/// the PST file and the folder inside it (`Outlook.pst/Outlook/Inbox/mbox`).
pub(crate) fn open_pst(
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
                crate::text::one_line(String::from_utf8_lossy(&out.stderr).trim())
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

/// A Maildir and its Maildir++ subfolders (`.Sent/`, `.Archive.2019/`): one source each.
pub(crate) fn open_maildir(
    path: &Path,
    skipped: &mut Vec<String>,
) -> Result<Vec<Source>, SourceError> {
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

pub(crate) fn maildir_source(
    path: &Path,
    skipped: &mut Vec<String>,
) -> Result<Source, SourceError> {
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
    })
}

/// Files that mail clients keep beside their mboxes and that are not mail.
pub(crate) fn is_index_file(p: &Path) -> bool {
    pub(crate) const SKIP: [&str; 8] =
        ["msf", "dat", "json", "sqlite", "html", "htm", "lock", "ini"];
    p.extension()
        .is_some_and(|e| SKIP.iter().any(|s| e.eq_ignore_ascii_case(s)))
        || p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

/// A folder that is not a Maildir: every mbox, gzip'd mbox, Maildir and `.eml` in it.
pub(crate) fn open_folder(
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
            Ok(
                f @ (InputFormat::Gzip | InputFormat::Xz | InputFormat::Bzip2 | InputFormat::Zstd),
            ) => sources.push(open_compressed(p, f, temp, early)),
            // Never skipped: an Outlook file in the folder is read, or stops the run.
            Ok(InputFormat::Pst) => match open_pst(p, temp, skipped, early) {
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
    out.extend(eml_sources(root, emls));
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
pub(crate) fn walk(
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

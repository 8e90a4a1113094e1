//! End-to-end: nothing is written outside `--out`, nothing of the input or output is lost,
//! and the output is private: against links planted by a local user who owns part of the
//! output, folders swapped during a run, output paths that name an input, two runs at once.
//! Tests are named after the finding of issue 13 they pin.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).expect("meta").permissions().mode() & 0o777
}

/// An mbox of `n` messages for `user@example.com`, each a few hundred bytes.
fn mbox_for(dir: &Path, name: &str, user: &str, n: usize) -> PathBuf {
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!(
            "From s@example.org Mon Jan  1 00:00:00 2001\nX-Original-To: {user}@example.com\nTo: {user}@example.com\nMessage-ID: <{i}.{user}@x>\nSubject: m {i}\n\n{}\n\n",
            "body line\n".repeat(20)
        ));
    }
    let p = dir.join(name);
    fs::write(&p, text).expect("write");
    p
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).into_iter().flatten().flatten() {
            let t = e.file_type().expect("type");
            if t.is_dir() {
                todo.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn private_mail_files_are_0600_and_folders_0700() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report, html) = (
        tmp.path().join("out"),
        tmp.path().join("r.jsonl"),
        tmp.path().join("a.html"),
    );
    // An existing report readable by all is made private too.
    fs::write(&report, "old").expect("write");
    fs::set_permissions(&report, fs::Permissions::from_mode(0o644)).expect("chmod");
    let (r, h) = (report.to_str().expect("utf8"), html.to_str().expect("utf8"));
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&["--report", r, "--html", h])
        .ok();
    assert_eq!(mode(&report), 0o600);
    assert_eq!(mode(&html), 0o600);
    assert_eq!(mode(&out), 0o700);
    let mut seen = 0;
    for user in fs::read_dir(&out).expect("out").flatten() {
        let p = user.path();
        if !p.is_dir() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            continue;
        }
        assert_eq!(mode(&p), 0o700, "{}", p.display());
        for sub in ["tmp", "new", "cur"] {
            assert_eq!(mode(&p.join(sub)), 0o700, "{}/{sub}", p.display());
        }
        for f in files_under(&p) {
            assert_eq!(mode(&f), 0o600, "{}", f.display());
            seen += 1;
        }
    }
    assert!(seen > 30, "{seen}");
    let mbox_out = tmp.path().join("mbox-out");
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&mbox_out)
        .args(&["--format", "mbox"])
        .ok();
    let files = files_under(&mbox_out);
    assert!(files.len() > 3);
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

/// The one file in `out/user/cur`.
fn only_copy(out: &Path, user: &str) -> PathBuf {
    let cur: Vec<PathBuf> = fs::read_dir(out.join(user).join("cur"))
        .expect("cur")
        .map(|e| e.expect("e").path())
        .collect();
    assert_eq!(cur.len(), 1, "{cur:?}");
    cur.into_iter().next().expect("one")
}

fn secret(dir: &Path) -> PathBuf {
    let victim = dir.join("secret");
    fs::write(&victim, "root's own\n").expect("write");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o600)).expect("chmod");
    victim
}

#[test]
fn issue13_1_a_link_planted_in_tmp_for_a_staged_copy_is_not_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 1);
    let out = tmp.path().join("out");
    Run::split(&input).out(&out).ok();
    // The copy's staged name is predictable from its name in cur/: the owner of alice/
    // removes the copy (so that the next run writes it again) and plants a link at it.
    let copy = only_copy(&out, "alice");
    let name = copy
        .file_name()
        .expect("name")
        .to_string_lossy()
        .into_owned();
    let staged = out
        .join("alice/tmp")
        .join(name.split(':').next().expect("stem"));
    fs::remove_file(&copy).expect("rm");
    let victim = secret(tmp.path());
    std::os::unix::fs::symlink(&victim, &staged).expect("symlink");
    let res = Run::split(&input).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains(&*staged.to_string_lossy()), "{err}");
    assert_eq!(fs::read_to_string(&victim).expect("read"), "root's own\n");
    assert!(
        fs::read_dir(out.join("alice/cur"))
            .expect("cur")
            .next()
            .is_none()
    );
}

#[test]
fn issue13_1_a_link_planted_for_the_keywords_file_is_not_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 1);
    let out = tmp.path().join("out");
    Run::split(&input).out(&out).ok();
    let victim = secret(tmp.path());
    // With the keywords file gone, the next run writes it again through tmp/.
    fs::remove_file(out.join("alice/dovecot-keywords")).expect("rm");
    std::os::unix::fs::symlink(&victim, out.join("alice/tmp/dovecot-keywords.new"))
        .expect("symlink");
    let res = Run::split(&input).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains("dovecot-keywords.new"), "{err}");
    assert_eq!(fs::read_to_string(&victim).expect("read"), "root's own\n");
    // The keywords file itself as a link: refused too, not read through.
    fs::remove_file(out.join("alice/tmp/dovecot-keywords.new")).expect("rm");
    std::os::unix::fs::symlink(&victim, out.join("alice/dovecot-keywords")).expect("symlink");
    let res = Run::split(&input).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains("dovecot-keywords") && err.contains("symbolic link"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&victim).expect("read"), "root's own\n");
}

#[test]
fn issue13_1_a_link_with_a_copys_name_in_cur_stops_the_run() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 1);
    let out = tmp.path().join("out");
    Run::split(&input).out(&out).ok();
    // A link in place of the copy would make the rerun believe the copy is there.
    let copy = only_copy(&out, "alice");
    fs::remove_file(&copy).expect("rm");
    std::os::unix::fs::symlink(secret(tmp.path()), &copy).expect("symlink");
    let res = Run::split(&input).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(err.contains(&*copy.to_string_lossy()), "{err}");
}

#[test]
fn issue13_2_a_user_folder_swapped_for_a_link_during_the_run_redirects_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    const N: usize = 6000;
    let input = mbox_for(tmp.path(), "in.mbox", "alice", N);
    let out = tmp.path().join("out");
    // Where the link points: a Maildir the attacker wants root to fill (or any folder).
    let target = tmp.path().join("elsewhere");
    for sub in ["tmp", "new", "cur"] {
        fs::create_dir_all(target.join(sub)).expect("mkdir");
    }
    let swapper = {
        let (out, target) = (out.clone(), target.clone());
        std::thread::spawn(move || {
            let cur = out.join("alice/cur");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            // Swap as soon as the first copies are in: the folder was checked by then.
            while fs::read_dir(&cur).map_or(true, |mut d| d.next().is_none()) {
                if std::time::Instant::now() > deadline {
                    return false;
                }
                std::thread::yield_now();
            }
            fs::rename(out.join("alice"), out.join("alice.moved")).expect("move");
            std::os::unix::fs::symlink(&target, out.join("alice")).expect("symlink");
            true
        })
    };
    // A commit per batch: the first copies reach cur/ with later batches still to write.
    let res = Run::split(&input)
        .out(&out)
        .args(&["--commit-every", "1000"])
        .output();
    let swapped = swapper.join().expect("thread");
    assert!(swapped, "the run ended before its first copies were seen");
    let stray = files_under(&target);
    assert!(
        stray.is_empty(),
        "{} copies written through the link",
        stray.len()
    );
    // Every copy landed in the folder the run opened, wherever it is now.
    if res.status.success() {
        let moved = fs::read_dir(out.join("alice.moved/cur"))
            .expect("cur")
            .count();
        assert_eq!(moved, N);
    }
}

/// Holds the lock of `out` as a running popsplit would, with `pid` written in it.
fn hold_lock(out: &Path, pid: &str) -> fs::File {
    fs::create_dir_all(out).expect("mkdir");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(out.join(".popsplit.lock"))
        .expect("lock file");
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::NonBlockingLockExclusive).expect("flock");
    fs::write(out.join(".popsplit.lock"), pid).expect("pid");
    lock
}

#[test]
fn issue13_6_a_run_on_an_output_in_use_is_refused_naming_the_holder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 3);
    let out = tmp.path().join("out");
    let held = hold_lock(&out, "4242\n");
    for format in ["maildir", "mbox"] {
        let res = Run::split(&input)
            .out(&out)
            .args(&["--format", format])
            .output();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{format}: {err}");
        assert!(
            err.contains("in use by another popsplit run (process 4242)"),
            "{format}: {err}"
        );
        let written: Vec<_> = fs::read_dir(&out)
            .expect("out")
            .map(|e| e.expect("e").file_name())
            .collect();
        assert_eq!(written, [".popsplit.lock"], "{format}");
    }
    // The lock of an existing output is taken before the inputs are read: the run stops at
    // once, not after reading them all.
    let pdf = tmp.path().join("scan.pdf");
    fs::write(&pdf, "%PDF-1.7\n").expect("write");
    let err = String::from_utf8_lossy(&Run::split(&pdf).out(&out).output().stderr).into_owned();
    assert!(err.contains("in use by another popsplit run"), "{err}");
    drop(held);
    Run::split(&input).out(&out).ok();
    assert_eq!(fs::read_dir(out.join("alice/cur")).expect("cur").count(), 3);
}

#[test]
fn issue13_5_two_mbox_runs_at_once_never_corrupt_a_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    const N: usize = 3000;
    let input = mbox_for(tmp.path(), "in.mbox", "alice", N);
    let out = tmp.path().join("out");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (input, out) = (input.clone(), out.clone());
            std::thread::spawn(move || {
                Run::split(&input)
                    .out(&out)
                    .args(&["--format", "mbox"])
                    .output()
            })
        })
        .collect();
    let results: Vec<_> = runs.into_iter().map(|r| r.join().expect("run")).collect();
    let ok = results.iter().filter(|r| r.status.success()).count();
    assert_eq!(ok, 1, "exactly one run may write the output");
    for r in results.iter().filter(|r| !r.status.success()) {
        let err = String::from_utf8_lossy(&r.stderr);
        // Refused while the other ran, or after it, by the finished file.
        assert!(
            err.contains("in use by another popsplit run") || err.contains("never overwrites"),
            "{err}"
        );
    }
    let mbox = fs::read(out.join("alice.mbox")).expect("alice.mbox");
    assert!(!mbox.contains(&0), "NUL bytes in alice.mbox");
    assert_eq!(naive_messages(&mbox, "2001").len(), N);
}

#[test]
fn issue13_6_two_maildir_runs_at_once_one_refused_none_left_in_tmp() {
    let tmp = tempfile::tempdir().expect("tmp");
    const N: usize = 3000;
    let input = mbox_for(tmp.path(), "in.mbox", "alice", N);
    let out = tmp.path().join("out");
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let (input, out) = (input.clone(), out.clone());
            std::thread::spawn(move || Run::split(&input).out(&out).output())
        })
        .collect();
    let results: Vec<_> = runs.into_iter().map(|r| r.join().expect("run")).collect();
    for r in results.iter().filter(|r| !r.status.success()) {
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains("in use by another popsplit run"), "{err}");
    }
    assert!(results.iter().any(|r| r.status.success()));
    assert_eq!(fs::read_dir(out.join("alice/cur")).expect("cur").count(), N);
    assert_eq!(fs::read_dir(out.join("alice/tmp")).expect("tmp").count(), 0);
}

/// Runs split with `args` after the input and `--out`, expecting a refusal that says
/// `says`, with nothing written to `out`.
/// [`refused_with`] exit 2: a path mistake on the command line.
fn refused(input: &[&Path], out: &Path, args: &[&str], says: &str) {
    refused_with(2, input, out, args, says);
}

/// A run that stops before writing with exit `code` and a message that `says` why.
fn refused_with(code: i32, input: &[&Path], out: &Path, args: &[&str], says: &str) {
    let mut all = vec!["split"];
    all.extend(input.iter().map(|p| p.to_str().expect("utf8")));
    all.extend([
        "--domain",
        "example.com",
        "--out",
        out.to_str().expect("utf8"),
    ]);
    all.extend_from_slice(args);
    let res = Run::new(&all).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(code), "{all:?}: {err}");
    assert!(err.contains(says), "{all:?}: {err}");
    assert!(!out.exists(), "{all:?}: output written");
}

#[test]
fn issue13_3_an_output_file_that_is_or_is_inside_an_input_is_refused_before_writing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let input = mbox_for(t, "in.mbox", "alice", 3);
    let before = fs::read(&input).expect("read");
    let out = t.join("out");
    let s = |p: &Path| p.to_str().expect("utf8").to_string();
    // A hard link of the input.
    let hard = t.join("hard.mbox");
    fs::hard_link(&input, &hard).expect("link");
    refused(&[&input], &out, &["--report", &s(&hard)], "--report");
    refused(&[&input], &out, &["--html", &s(&hard)], "--html");
    assert_eq!(fs::read(&input).expect("read"), before);
    // A file inside a folder input, and a message in an input Maildir.
    let tree = t.join("tree");
    fs::create_dir(&tree).expect("mkdir");
    let sent = mbox_for(&tree, "Sent", "bob", 2);
    let sent_bytes = fs::read(&sent).expect("read");
    refused(
        &[&tree],
        &out,
        &["--report", &s(&sent)],
        "inside, the input",
    );
    refused(&[&tree], &out, &["--html", &s(&sent)], "inside, the input");
    refused(
        &[&tree],
        &out,
        &["--report", &s(&tree.join("new.jsonl"))],
        "inside, the input",
    );
    assert_eq!(fs::read(&sent).expect("read"), sent_bytes);
    let maildir = t.join("md");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(maildir.join(sub)).expect("mkdir");
    }
    let msg = maildir.join("cur/1.x:2,S");
    fs::write(&msg, "To: alice@example.com\n\nhi\n").expect("write");
    refused(
        &[&maildir],
        &out,
        &["--report", &s(&msg)],
        "inside, the input",
    );
    assert_eq!(
        fs::read(&msg).expect("read"),
        b"To: alice@example.com\n\nhi\n"
    );
    // The directory CSV, and one file for both outputs.
    let csv = t.join("dir.csv");
    fs::write(&csv, "address,user\nalice@example.com,alice\n").expect("write");
    refused(
        &[&input],
        &out,
        &["--directory", &s(&csv), "--report", &s(&csv)],
        "is the --directory file",
    );
    assert_eq!(
        fs::read_to_string(&csv).expect("read"),
        "address,user\nalice@example.com,alice\n"
    );
    let both = s(&t.join("both"));
    refused(
        &[&input],
        &out,
        &["--report", &both, "--html", &both],
        "also given as --report",
    );
    // A folder.
    refused(&[&input], &out, &["--report", &s(&tree)], "is a folder");
}

#[test]
fn issue13_4_an_output_file_inside_a_folder_of_out_is_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 2);
    let out = tmp.path().join("out");
    Run::split(&input).out(&out).ok();
    let copy = only_copy_of(&out, "alice");
    let bytes = fs::read(&copy).expect("read");
    for (flag, path) in [
        ("--report", copy.clone()),
        ("--html", out.join("alice/new/page.html")),
        ("--report", out.join("alice/r.jsonl")),
        ("--report", out.join(".popsplit.lock")),
        ("--report", out.join("alice.mbox")),
    ] {
        let res = Run::split(&input)
            .out(&out)
            .args(&[flag, path.to_str().expect("utf8")])
            .output();
        let err = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(2), "{}: {err}", path.display());
        assert!(err.contains("inside a folder of --out"), "{err}");
    }
    assert_eq!(fs::read(&copy).expect("read"), bytes);
    assert!(!out.join("alice/new/page.html").exists());
    // At the top of --out, under a name popsplit does not use, is fine.
    let report = out.join("report.jsonl");
    Run::split(&input)
        .out(&out)
        .args(&["--report", report.to_str().expect("utf8")])
        .ok();
    assert_eq!(report_rows(&report).len(), 2);
}

/// One file of `out/user/cur`.
fn only_copy_of(out: &Path, user: &str) -> PathBuf {
    fs::read_dir(out.join(user).join("cur"))
        .expect("cur")
        .next()
        .expect("a copy")
        .expect("entry")
        .path()
}

#[test]
fn issue13_7_overlapping_inputs_and_output_are_refused() {
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let tree = t.join("tree");
    fs::create_dir(&tree).expect("mkdir");
    let inbox = mbox_for(&tree, "Inbox", "alice", 2);
    // --out inside an input folder: a rerun would read its own output.
    refused(&[&tree], &tree.join("out"), &[], "is inside the input");
    // An input inside --out: the output would grow with each rerun.
    let out = t.join("out");
    fs::create_dir(&out).expect("mkdir");
    let inside = mbox_for(&out, "old.mbox", "bob", 1);
    let res = Run::split(&inside).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    assert!(err.contains("is inside --out"), "{err}");
    assert_eq!(fs::read_dir(&out).expect("out").count(), 1);
    // The same input twice, by the same path, through a link, or inside a folder given too.
    let link = t.join("link.mbox");
    std::os::unix::fs::symlink(&inbox, &link).expect("symlink");
    let out2 = t.join("out2");
    refused(&[&inbox, &inbox], &out2, &[], "are the same mail");
    refused(&[&inbox, &link], &out2, &[], "are the same mail");
    refused(&[&tree, &inbox], &out2, &[], "are the same mail");
}

#[test]
fn issue13_7_the_same_mailbox_under_another_path_or_gzipped_is_recognised() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let out = t.join("out");
    let first = t.join("a.mbox");
    fs::copy(sample("shared-pop.mbox"), &first).expect("copy");
    let stdout = Run::split(&first).office().out(&out).ok();
    assert!(stdout.contains("0 already there"), "{stdout}");
    let files = all_files(&out).len();
    assert!(read_tree(&out).contains_key("_duplicates"));
    // Another name in another folder, and the same bytes gzip'd.
    fs::create_dir(t.join("elsewhere")).expect("mkdir");
    let moved = t.join("elsewhere/export.mbox");
    fs::rename(&first, &moved).expect("move");
    let stdout = Run::split(&moved).office().out(&out).ok();
    assert!(stdout.contains(" 0 copies written"), "{stdout}");
    let gz = t.join("export.mbox.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).expect("create"),
        flate2::Compression::fast(),
    );
    enc.write_all(&fs::read(&moved).expect("read"))
        .expect("gzip");
    enc.finish().expect("finish");
    let stdout = Run::split(&gz).office().out(&out).ok();
    assert!(stdout.contains(" 0 copies written"), "{stdout}");
    assert_eq!(all_files(&out).len(), files);
}

#[test]
fn issue13_8_fifos_and_devices_are_refused_by_name() {
    let tmp = tempfile::tempdir().expect("tmp");
    let fifo = tmp.path().join("pipe.mbox");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .expect("mkfifo");
    // No writer: reading would wait forever, so the run must not even open it.
    let out = tmp.path().join("out");
    refused_with(
        1,
        &[&fifo],
        &out,
        &[],
        "pipe.mbox: is a FIFO, not a regular file",
    );
    refused_with(
        1,
        &[Path::new("/dev/zero")],
        &out,
        &["--input-format", "mbox"],
        "/dev/zero: is a device",
    );
}

#[test]
fn issue13_8_a_linked_message_file_in_a_maildir_is_read_and_odd_entries_named() {
    let tmp = tempfile::tempdir().expect("tmp");
    let md = tmp.path().join("md");
    for sub in ["cur", "new", "tmp", "store"] {
        fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    fs::write(
        md.join("cur/1.a:2,S"),
        "To: alice@example.com\nMessage-ID: <1@x>\n\none\n",
    )
    .expect("write");
    // A link to a message kept elsewhere in the Maildir is read.
    let kept = md.join("store/2.eml");
    fs::write(&kept, "To: bob@example.com\nMessage-ID: <2@x>\n\ntwo\n").expect("write");
    std::os::unix::fs::symlink(&kept, md.join("cur/2.b:2,S")).expect("symlink");
    // A dangling link, and a link to a file outside the input (root must not copy a file
    // the input's owner could not read into a mailbox): named, not read.
    std::os::unix::fs::symlink(tmp.path().join("gone"), md.join("cur/3.c:2,S")).expect("symlink");
    let secret = secret(tmp.path());
    std::os::unix::fs::symlink(&secret, md.join("cur/4.d:2,S")).expect("symlink");
    let out = tmp.path().join("out");
    let res = Run::split(&md).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    let tree = read_tree(&out);
    assert_eq!(tree["alice"].len(), 1);
    assert_eq!(tree["bob"].len(), 1, "the linked message was skipped");
    assert_eq!(tree.values().map(Vec::len).sum::<usize>(), 2);
    assert!(
        err.contains("3.c:2,S: a link that cannot be followed"),
        "{err}"
    );
    assert!(
        err.contains("4.d:2,S: a link to a file outside the input folder, not read"),
        "{err}"
    );
}

/// Runs split on `input`, committing every batch, while a thread calls `meddle` on it once
/// the first copies are in `out/alice/cur` (with later batches still to read); returns the
/// run's output.
fn split_while(
    input: &Path,
    out: &Path,
    meddle: impl FnOnce(&Path) + Send + 'static,
) -> std::process::Output {
    let thread = {
        let (input, cur) = (input.to_path_buf(), out.join("alice/cur"));
        std::thread::spawn(move || {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while fs::read_dir(&cur).map_or(true, |mut d| d.next().is_none()) {
                if std::time::Instant::now() > deadline {
                    return false;
                }
                std::thread::yield_now();
            }
            meddle(&input);
            true
        })
    };
    let res = Run::split(input)
        .out(out)
        .args(&["--commit-every", "1000"])
        .output();
    assert!(
        thread.join().expect("thread"),
        "the run ended before it was meddled with"
    );
    res
}

#[test]
fn issue13_9_an_mbox_appended_to_during_the_run_stops_it() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 6000);
    let out = tmp.path().join("out");
    let res = split_while(&input, &out, |p| {
        let mut f = fs::OpenOptions::new().append(true).open(p).expect("open");
        f.write_all(
            b"From s@example.org Mon Jan  1 00:00:00 2001\nTo: alice@example.com\n\nlate\n",
        )
        .expect("append");
    });
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains("in.mbox: changed while popsplit read it"),
        "{err}"
    );
}

#[test]
fn issue13_9_an_mbox_truncated_during_the_run_stops_it_with_a_reason() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = mbox_for(tmp.path(), "in.mbox", "alice", 6000);
    let out = tmp.path().join("out");
    let res = split_while(&input, &out, |p| {
        let f = fs::OpenOptions::new().write(true).open(p).expect("open");
        f.set_len(1000).expect("truncate");
    });
    let err = String::from_utf8_lossy(&res.stderr);
    // Caught between batches, or by the signal the lost pages raise: either way a reason
    // and exit status 1, never death by signal.
    assert_eq!(res.status.code(), Some(1), "{:?} {err}", res.status);
    assert!(
        err.contains("changed while popsplit read it")
            || err.contains("truncated by another process"),
        "{err}"
    );
}

#[test]
fn issue13_15_zero_width_and_format_characters_never_reach_the_terminal_or_report() {
    let tmp = tempfile::tempdir().expect("tmp");
    let hidden = ['\u{200B}', '\u{FEFF}', '\u{2060}', '\u{E0041}', '\u{202E}'];
    let input = tmp.path().join("in.mbox");
    fs::write(
        &input,
        "From s@example.org Mon Jan  1 00:00:00 2001\nFrom: Pay\u{200B}Pal <s@example.org>\nTo: alice@example.com\nSubject: in\u{FEFF}voice\u{2060} \u{E0041}\u{202E}txt\nMessage-ID: <1@x>\n\nbody\n",
    )
    .expect("write");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    let explained = Run::split(&input)
        .out(&out)
        .args(&["--explain", "1"])
        .output();
    let shown = String::from_utf8_lossy(&explained.stdout).into_owned()
        + &String::from_utf8_lossy(&explained.stderr);
    assert!(shown.contains("Subject: in?voice? ??txt"), "{shown}");
    Run::split(&input)
        .out(&out)
        .args(&["--report", report.to_str().expect("utf8")])
        .ok();
    let text = fs::read_to_string(&report).expect("report");
    for c in hidden {
        assert!(!shown.contains(c), "{c:?} shown on the terminal");
        assert!(!text.contains(c), "{c:?} in the report");
    }
    let rows = report_rows(&report);
    assert_eq!(rows[0]["from"], "Pay?Pal <s@example.org>");
}

#[test]
fn issue13_12_a_huge_jobs_count_is_capped_with_a_note() {
    let tmp = tempfile::tempdir().expect("tmp");
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&tmp.path().join("out"))
        .args(&["--jobs", "100000"])
        .output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(res.status.success(), "{err}");
    assert!(
        err.contains("--jobs 100000 is more than four threads"),
        "{err}"
    );
}

/// A message naming 50,000 local addresses (without a directory it once made a Maildir
/// of each, and cost grew with the square of the count) is a mass mailing: one copy in
/// `_unassigned`, its verdict in the report; a message naming 100 still goes to each.
#[test]
fn issue13_10_a_mass_mailing_is_unassigned_not_a_folder_per_address() {
    let tmp = tempfile::tempdir().expect("tmp");
    let to = |n: usize| -> String {
        (0..n)
            .map(|i| format!("u{i}@example.com"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mbox = format!(
        "From s@example.org Mon Jan  1 00:00:00 2001\nFrom: s@example.org\nTo: {}\nMessage-ID: <mass@x>\n\nbody\n\nFrom s@example.org Mon Jan  1 00:00:01 2001\nFrom: s@example.org\nTo: {}\nMessage-ID: <staff@x>\n\nbody\n",
        to(50_000),
        to(100)
    );
    let input = tmp.path().join("in.mbox");
    fs::write(&input, mbox).expect("write");
    let out = tmp.path().join("out");
    let report = tmp.path().join("r.jsonl");
    Run::split(&input)
        .out(&out)
        .args(&["--report", report.to_str().expect("utf8")])
        .ok();
    let rows = report_rows(&report);
    assert_eq!(rows[0]["delivered_to"], serde_json::json!(["_unassigned"]));
    assert_eq!(rows[0]["evidence"][0]["verdict"], "mass-mailing");
    assert!(
        rows[0]["decisive"]
            .as_str()
            .expect("text")
            .contains("mass mailing")
    );
    assert_eq!(
        rows[1]["delivered_to"].as_array().expect("folders").len(),
        100
    );
    let folders = fs::read_dir(&out)
        .expect("out")
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().is_dir()))
        .count();
    assert_eq!(folders, 101, "100 users and _unassigned");
}

#[test]
fn issue13_14_different_addresses_never_share_a_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let locals = [
        "jürgen", "jörgen", "j_rgen", "\"a/b\"", "a_b", "-rf", "Alice", "alice",
    ];
    let mut mbox = String::new();
    for (i, l) in locals.iter().enumerate() {
        mbox.push_str(&format!(
            "From s@example.org Mon Jan  1 00:00:{i:02} 2001\nX-Original-To: {l}@example.com\nTo: {l}@example.com\nMessage-ID: <{i}@x>\n\nbody {i}\n\n"
        ));
    }
    let input = tmp.path().join("in.mbox");
    fs::write(&input, mbox).expect("write");
    let out = tmp.path().join("out");
    let stdout = Run::split(&input).out(&out).ok();
    let tree = read_tree(&out);
    // Alice and alice are one person; every other address has a folder of its own.
    assert_eq!(tree.len(), locals.len() - 1, "{:?}", tree.keys());
    assert_eq!(tree["alice"].len(), 2);
    assert_eq!(tree["j_rgen"].len(), 1);
    assert_eq!(tree["a_b"].len(), 1);
    assert!(
        tree.keys().all(|k| !k.starts_with('-')),
        "{:?}",
        tree.keys()
    );
    // The summary says whose the changed names are.
    for address in [
        "jürgen@example.com",
        "jörgen@example.com",
        "-rf@example.com",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("folder ") && l.contains(&format!("is for {address}"))),
            "{address}: {stdout}"
        );
    }
}

#[test]
fn issue13_13_a_failed_commit_counts_the_copies_it_moved() {
    use std::os::unix::fs::chown;
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    // bob's mail is known; then five new messages for alice and one for bob, in one batch.
    let first = t.join("first.mbox");
    let second = t.join("second.mbox");
    let msg = |i: usize, user: &str| {
        format!(
            "From s@example.org Mon Jan  1 00:00:00 2001\nTo: {user}@example.com\nMessage-ID: <{i}@x>\n\nbody {i}\n\n"
        )
    };
    fs::write(&first, msg(0, "bob")).expect("write");
    let mut text = String::new();
    for i in 1..=5 {
        text.push_str(&msg(i, "alice"));
    }
    text.push_str(&msg(6, "bob"));
    fs::write(&second, text).expect("write");
    let out = t.join("out");
    fs::create_dir(&out).expect("mkdir");
    chown(&out, Some(NOBODY), Some(NOBODY)).expect("chown");
    fs::set_permissions(t, fs::Permissions::from_mode(0o755)).expect("chmod");
    let run = |input: &Path| Some(Run::split(input).out(&out).by_nobody()?.output());
    let Some(res) = run(&first) else { return };
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    // bob's cur/ can no longer be written (by its owner, who is not root).
    fs::set_permissions(out.join("bob/cur"), fs::Permissions::from_mode(0o500)).expect("chmod");
    let res = run(&second).expect("as nobody");
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    let in_cur = fs::read_dir(out.join("alice/cur")).expect("cur").count();
    assert_eq!(in_cur, 5);
    assert!(
        err.contains("5 copies of the failing batches were moved into cur/"),
        "{err}"
    );
}

/// A small tmpfs mounted in `dir` for the life of the value; `None` (after saying so) when
/// this process may not mount one.
struct SmallFs(PathBuf);

impl SmallFs {
    fn mount(dir: &Path, megabytes: u32) -> Option<SmallFs> {
        fs::create_dir_all(dir).expect("mkdir");
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            skipped("cannot mount a small tmpfs here");
            return None;
        }
        Some(SmallFs(dir.to_path_buf()))
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn issue13_11_a_gzip_that_inflates_past_the_temporary_folder_stops_before_filling_it() {
    use std::io::Write;
    let tmp = tempfile::tempdir().expect("tmp");
    let gz = tmp.path().join("bomb.mbox.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).expect("create"),
        flate2::Compression::fast(),
    );
    let body = "x".repeat(1 << 20);
    for i in 0..40 {
        write!(
            enc,
            "From s@example.org Mon Jan  1 00:00:00 2001\nTo: alice@example.com\nMessage-ID: <{i}@x>\n\n{body}\n\n"
        )
        .expect("gzip");
    }
    enc.finish().expect("finish");
    let out = tmp.path().join("out");
    // A missing folder is named as such.
    let missing = tmp.path().join("no-such-folder");
    let res = Run::split(&gz)
        .out(&out)
        .args(&["--temp-dir", missing.to_str().expect("utf8")])
        .output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("in the folder {}", missing.display())) && err.contains("--temp-dir"),
        "{err}"
    );
    let Some(small) = SmallFs::mount(&tmp.path().join("small"), 16) else {
        return;
    };
    let res = Run::split(&gz)
        .out(&out)
        .args(&["--temp-dir", small.0.to_str().expect("utf8")])
        .output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1), "{err}");
    assert!(
        err.contains("bomb.mbox.gz: decompressing it needs more room than the folder")
            && err.contains(&*small.0.to_string_lossy())
            && err.contains("--temp-dir")
            && err.contains("bytes inflated so far"),
        "{err}"
    );
    // popsplit's own check stopped it (the numbers say so), not the full disk's ENOSPC.
    assert!(!out.exists());
}

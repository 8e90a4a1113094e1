//! End-to-end: input variants, reruns, and the errors an admin can run into.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// Folder → sorted Message-IDs of the files in it.
fn ids_by_folder(out: &Path) -> Vec<(String, Vec<String>)> {
    read_tree(out)
        .into_iter()
        .map(|(folder, files)| {
            let mut ids: Vec<String> = files
                .iter()
                .map(|d| d.header("Message-ID").unwrap_or_default())
                .collect();
            ids.sort();
            (folder, ids)
        })
        .collect()
}

#[test]
fn crlf_file_with_leading_blank_line_and_no_final_newline_splits_alike() {
    let tmp = tempfile::tempdir().expect("tmp");
    let lf = fs::read(sample("shared-pop.mbox")).expect("mbox");
    let text = String::from_utf8(lf).expect("utf8").replace("\r\n", "\n");
    let mut crlf = format!("\r\n{}", text.replace('\n', "\r\n")).into_bytes();
    while crlf.ends_with(b"\r\n") {
        crlf.truncate(crlf.len() - 2);
    }
    let input = tmp.path().join("crlf.mbox");
    fs::write(&input, &crlf).expect("write");
    assert!(
        Run::split(&sample("shared-pop.mbox"))
            .office()
            .out(&tmp.path().join("a"))
            .output()
            .status
            .success()
    );
    assert!(
        Run::split(&input)
            .office()
            .out(&tmp.path().join("b"))
            .output()
            .status
            .success()
    );
    assert_eq!(
        ids_by_folder(&tmp.path().join("a")),
        ids_by_folder(&tmp.path().join("b"))
    );
    // The last message kept its last line although the file has no final newline.
    let tree = read_tree(&tmp.path().join("b"));
    let last = tree["bob"]
        .iter()
        .find(|d| d.header("Message-ID").as_deref() == Some("<s34@partner.example.org>"))
        .expect("s34");
    assert!(last.bytes.ends_with(b"nothing in it names him.)"));
}

#[test]
fn without_directory_every_local_part_is_a_user() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let mbox = sample("shared-pop.mbox");
    Run::split(&mbox).out(&out).ok();
    let tree = read_tree(&out);
    let folders: Vec<&str> = tree.keys().map(String::as_str).collect();
    // erin (departed) is a user now; the alias and list addresses are users of their own.
    for f in ["a.smith", "erin", "info", "sales", "_unassigned"] {
        assert!(folders.contains(&f), "{f} missing from {folders:?}");
    }
    assert!(
        tree["erin"]
            .iter()
            .any(|d| d.header("Message-ID").as_deref() == Some("<s14@else.example.org>"))
    );
}

#[test]
fn not_an_mbox_is_refused_with_file_and_offset_and_nothing_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let pdf = tmp.path().join("scan.pdf");
    fs::write(&pdf, b"\n%PDF-1.4\n%\xe2\xe3\xcf\xd3\n").expect("write");
    let out = tmp.path().join("out");
    // The good input comes first: nothing may be written before every input is checked.
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&[pdf.to_str().expect("utf8")])
        .output();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("scan.pdf") && err.contains("byte offset 1") && err.contains("not an mbox"),
        "{err}"
    );
    // Said once, on one line: causes are not repeated after the message that holds them.
    assert_eq!(err.matches("not an mbox").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!out.exists());
}

#[test]
fn source_is_never_modified_even_when_read_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("box.mbox");
    fs::copy(sample("shared-pop.mbox"), &input).expect("copy");
    let mut perms = fs::metadata(&input).expect("meta").permissions();
    perms.set_readonly(true);
    fs::set_permissions(&input, perms).expect("chmod");
    let before = fs::read(&input).expect("read");
    let mtime_before = fs::metadata(&input)
        .expect("meta")
        .modified()
        .expect("mtime");
    assert!(
        Run::split(&input)
            .office()
            .out(&tmp.path().join("out"))
            .output()
            .status
            .success()
    );
    assert_eq!(fs::read(&input).expect("read"), before);
    assert_eq!(
        fs::metadata(&input)
            .expect("meta")
            .modified()
            .expect("mtime"),
        mtime_before
    );
    // A report path that is the input itself is refused before anything is opened for writing.
    let res = Run::split(&input)
        .office()
        .out(&tmp.path().join("out2"))
        .args(&["--report", input.to_str().expect("utf8")])
        .output();
    assert!(!res.status.success());
    assert!(String::from_utf8_lossy(&res.stderr).contains("never writes to its input"));
    assert_eq!(fs::read(&input).expect("read"), before);
}

#[test]
fn rerun_adds_nothing_and_overwrites_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .ok();
    let first = all_files(&out);
    let stdout = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .ok();
    let (_, _, _, copies) = expected_counts(&expected());
    assert!(
        stdout.contains(&format!(
            "; 0 copies written, {copies} already there from an earlier run"
        )),
        "{stdout}"
    );
    let second = all_files(&out);
    assert_eq!(first, second);
}

#[test]
fn a_second_input_with_the_same_messages_gives_nobody_a_second_copy() {
    let tmp = tempfile::tempdir().expect("tmp");
    let copy = tmp.path().join("second.mbox");
    fs::copy(sample("shared-pop.mbox"), &copy).expect("copy");
    let out = tmp.path().join("out");
    // The second input comes after the first on the command line.
    let stdout = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&[copy.to_str().expect("utf8")])
        .ok();
    let rows = expected();
    let (delivered, unassigned, duplicates, _) = expected_counts(&rows);
    let line = format!(
        "messages read: {} = {delivered} delivered to users + {unassigned} unassigned + {} duplicates set aside",
        2 * rows.len(),
        rows.len() + duplicates
    );
    assert!(stdout.contains(&line), "{stdout}");
    let tree = read_tree(&out);
    for (folder, files) in &tree {
        if folder == "_duplicates" {
            assert_eq!(files.len(), rows.len() + duplicates);
            assert!(
                files
                    .iter()
                    .all(|d| d.header("X-Popsplit-Duplicate-Of").is_some())
            );
            continue;
        }
        let mut ids: Vec<String> = files
            .iter()
            .map(|d| d.header("Message-ID").expect("id"))
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{folder} got a message twice");
    }
}

#[test]
fn bad_directory_row_is_named_by_line() {
    let tmp = tempfile::tempdir().expect("tmp");
    let csv = tmp.path().join("dir.csv");
    fs::write(
        &csv,
        "address,user\nalice@example.com,alice\nbob@example.com,../../etc\n",
    )
    .expect("write");
    let mbox = sample("shared-pop.mbox");
    let out = tmp.path().join("out");
    let res = Run::split(&mbox).directory(&csv).out(&out).output();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("dir.csv: line 3") && err.contains("safe folder name"),
        "{err}"
    );
    assert!(!out.exists());
}

#[cfg(unix)]
#[test]
fn symlink_inside_out_is_not_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let elsewhere = tmp.path().join("elsewhere");
    fs::create_dir_all(&out).expect("mkdir");
    fs::create_dir_all(&elsewhere).expect("mkdir");
    std::os::unix::fs::symlink(&elsewhere, out.join("carol")).expect("symlink");
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .output();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("carol") && err.contains("symbolic link") && err.contains("were written"),
        "{err}"
    );
    assert_eq!(fs::read_dir(&elsewhere).expect("list").count(), 0);
}

#[test]
fn output_failure_stops_with_what_was_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    fs::create_dir_all(&out).expect("mkdir");
    fs::write(out.join("bob"), b"not a maildir").expect("write");
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .output();
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("bob: exists and is not a directory"), "{err}");
    assert!(
        err.contains("copies of") && err.contains("were written"),
        "{err}"
    );
    assert_eq!(fs::read(out.join("bob")).expect("read"), b"not a maildir");
}

#[test]
fn empty_input_reads_zero_messages() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty = tmp.path().join("empty.mbox");
    fs::write(&empty, b"").expect("write");
    let res = Run::split(&empty)
        .office()
        .out(&tmp.path().join("out"))
        .output();
    assert!(res.status.success());
    assert!(String::from_utf8_lossy(&res.stdout).contains("messages read: 0 = 0 delivered"));
}

#[test]
fn progress_bar_stays_off_when_stderr_is_not_a_terminal() {
    let tmp = tempfile::tempdir().expect("tmp");
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&tmp.path().join("out"))
        .output();
    assert!(res.status.success());
    assert!(
        res.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&res.stderr)
    );
}

#[test]
fn every_sync_policy_writes_the_same_files() {
    let tmp = tempfile::tempdir().expect("tmp");
    let names = |out: &Path| -> Vec<String> {
        read_tree(out)
            .into_iter()
            .flat_map(|(f, files)| files.into_iter().map(move |d| format!("{f}/{}", d.name)))
            .collect()
    };
    let mut seen = Vec::new();
    for policy in ["batch", "file", "none"] {
        let out = tmp.path().join(policy);
        Run::split(&sample("shared-pop.mbox"))
            .office()
            .out(&out)
            .args(&["--sync", policy])
            .ok();
        seen.push(names(&out));
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[0], seen[2]);
    assert_eq!(seen[0].len(), expected_counts(&expected()).3);
}

//! End-to-end: every command-line mistake exits 2 with a message that names the problem
//! and the fix, before anything is read or written.

mod common;

use std::fs;
use std::process::Output;

use common::*;

/// Asserts that `res` is a usage error (exit 2) whose message holds every one of `says`.
fn refused(res: Output, says: &[&str]) {
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(2), "{err}");
    for s in says {
        assert!(err.contains(s), "`{s}` not in: {err}");
    }
}

#[test]
fn bad_option_values_exit_2_with_advice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = sample("shared-pop.mbox");
    let m = mbox.to_str().expect("utf8");
    let out = tmp.path().join("out");
    let o = out.to_str().expect("utf8");
    refused(
        Run::new(&["split", m, "--domain", "@example.com", "--out", o]).output(),
        &[
            "--domain `@example.com` is not a domain name",
            "without `@`",
        ],
    );
    refused(
        Run::split(&mbox).out(&out).args(&["--jobs", "0"]).output(),
        &["--jobs 0", "at least 1"],
    );
    refused(
        Run::split(&mbox)
            .out(&out)
            .args(&["--unassigned", "review"])
            .output(),
        &["must start with `_`"],
    );
    refused(
        Run::split(&mbox)
            .out(&out)
            .args(&["--explain", "0"])
            .output(),
        &["--explain `0`", "from 1"],
    );
    // clap's own errors keep their 2.
    refused(
        Run::split(&mbox)
            .out(&out)
            .args(&["--no-such-flag"])
            .output(),
        &["--no-such-flag"],
    );
    assert!(!out.exists(), "a refused run created --out");
}

#[test]
fn a_missing_input_or_directory_exits_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let missing = tmp.path().join("no-such.mbox");
    refused(
        Run::split(&missing).out(&out).output(),
        &["no-such.mbox: no such file or folder", "exported mailbox"],
    );
    refused(
        Run::new(&[
            "profile",
            missing.to_str().expect("utf8"),
            "--domain",
            "example.com",
        ])
        .output(),
        &["no-such.mbox: no such file or folder"],
    );
    let no_csv = tmp.path().join("no-such.csv");
    refused(
        Run::split(&sample("shared-pop.mbox"))
            .directory(&no_csv)
            .out(&out)
            .output(),
        &["no-such.csv"],
    );
    assert!(!out.exists(), "a refused run created --out");
}

#[test]
fn a_directory_csv_with_a_header_typo_or_an_empty_user_exits_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let csv = tmp.path().join("dir.csv");
    fs::write(&csv, "Adress;User\r\nalice@example.com;alice\r\n").expect("write");
    refused(
        Run::split(&sample("shared-pop.mbox"))
            .directory(&csv)
            .out(&out)
            .output(),
        &["dir.csv: line 1: found `Adress;User`, expected the header line `address;user`"],
    );
    fs::write(
        &csv,
        "address,user\nalice@example.com,alice\nbob@example.com,\n",
    )
    .expect("write");
    refused(
        Run::split(&sample("shared-pop.mbox"))
            .directory(&csv)
            .out(&out)
            .output(),
        &["dir.csv: line 3: the user is empty for `bob@example.com`"],
    );
    assert!(!out.exists(), "a refused run created --out");
}

#[test]
fn a_directory_csv_saved_by_excel_is_read() {
    let tmp = tempfile::tempdir().expect("tmp");
    let text = fs::read_to_string(sample("directory.csv")).expect("csv");
    let excel = format!("\u{feff}{}", text.replace(',', ";").replace('\n', "\r\n"));
    let csv = tmp.path().join("excel.csv");
    fs::write(&csv, excel).expect("write");
    let (plain, semi) = (tmp.path().join("plain"), tmp.path().join("semi"));
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&plain)
        .ok();
    Run::split(&sample("shared-pop.mbox"))
        .directory(&csv)
        .out(&semi)
        .ok();
    assert_eq!(all_files(&plain), all_files(&semi));
}

#[test]
fn an_out_that_is_a_file_is_not_a_directory() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out.txt");
    fs::write(&out, b"notes").expect("write");
    refused(
        Run::split(&sample("shared-pop.mbox")).out(&out).output(),
        &["--out", "out.txt is not a directory", "give a folder"],
    );
    assert_eq!(fs::read(&out).expect("read"), b"notes");
}

#[test]
fn html_and_report_in_a_missing_folder_are_refused_before_any_work() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let gone = tmp.path().join("gone");
    for flag in ["--html", "--report"] {
        let page = gone.join("page");
        refused(
            Run::split(&sample("shared-pop.mbox"))
                .out(&out)
                .args(&[flag, page.to_str().expect("utf8")])
                .output(),
            &[flag, "gone does not exist", "mkdir -p"],
        );
        refused(
            Run::split(&sample("shared-pop.mbox"))
                .out(&out)
                .args(&[flag, tmp.path().to_str().expect("utf8")])
                .output(),
            &[flag, "is a folder"],
        );
        assert!(!out.exists(), "{flag}: a refused run created --out");
    }
    // A bare file name is in the current folder, which exists.
    let mbox = sample("shared-pop.mbox");
    let args = [
        "split",
        mbox.to_str().expect("utf8"),
        "--domain",
        "example.com",
    ];
    let extra = ["--out", "out", "--report", "r.jsonl", "--html", "a.html"];
    Run::new(&[&args[..], &extra[..]].concat())
        .in_dir(tmp.path())
        .ok();
    assert!(tmp.path().join("r.jsonl").is_file() && tmp.path().join("a.html").is_file());
}

#[test]
fn a_rerun_with_another_directory_moves_the_copies_and_names_what_is_left() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let mbox = sample("shared-pop.mbox");
    let first = Run::split(&mbox).office().out(&out).output();
    assert!(!String::from_utf8_lossy(&first.stderr).contains("earlier run"));
    let carol = read_tree(&out)["carol"].len();
    // A file that popsplit did not write, in carol's folder: it is never touched.
    fs::write(
        out.join("carol/cur/1551430800.foreign:2,S"),
        "From: x\n\nmine\n",
    )
    .expect("write");
    // carol is renamed caroline: her old folder is no user any more.
    let text = fs::read_to_string(sample("directory.csv")).expect("csv");
    let csv = tmp.path().join("renamed.csv");
    fs::write(&csv, text.replace(",carol", ",caroline")).expect("write");
    let res = Run::split(&mbox).directory(&csv).out(&out).output();
    let err = String::from_utf8_lossy(&res.stderr).into_owned();
    assert!(res.status.success(), "rerun with another directory: {err}");
    assert!(
        err.contains("also holds 1 folder that --directory has no user for (carol)")
            && err.contains("is not touched"),
        "{err}"
    );
    let tree = read_tree(&out);
    assert_eq!(tree["caroline"].len(), carol, "popsplit's copies moved");
    let left: Vec<&str> = tree["carol"].iter().map(|d| d.name.as_str()).collect();
    assert_eq!(left, vec!["1551430800.foreign:2,S"]);
}

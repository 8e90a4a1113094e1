//! End-to-end: the command line as sysadmins expect it: short options, `explain` as its
//! own command, `--quiet`, `profile --json`, examples in every `--help`, completions and
//! a manual page.

mod common;

use std::fs;

use common::*;

/// `explain` on the sample with its office, for `which`.
fn explain(inputs: &[&str], which: &str) -> String {
    let dir = sample("directory.csv");
    let mut args = vec!["explain"];
    args.extend_from_slice(inputs);
    args.extend([which, "-d", "example.com", "--directory"]);
    args.push(dir.to_str().expect("utf8"));
    Run::new(&args).ok()
}

#[test]
fn explain_takes_n_file_n_or_a_message_id_and_says_it_in_words() {
    let mbox = sample("shared-pop.mbox");
    let m = mbox.to_str().expect("utf8");
    let by_number = explain(&[m], "8");
    golden("explain-8.txt", &by_number);
    // Said in words, not with the program's own type names.
    for type_name in ["ReceivedFor", "Envelope(", "Content]", "Other]"] {
        assert!(!by_number.contains(type_name), "{by_number}");
    }
    assert_eq!(explain(&[m], &format!("{m}:8")), by_number);
    assert_eq!(explain(&[m], "<s08@lottery.example.biz>"), by_number);
    assert_eq!(explain(&[m], "s08@lottery.example.biz"), by_number);
    // `split --explain` still says the same.
    let tmp = tempfile::tempdir().expect("tmp");
    let old = Run::split(&mbox)
        .office()
        .out(&tmp.path().join("out"))
        .args(&["--explain", "8"])
        .ok();
    assert_eq!(old, by_number);
    let none = Run::new(&["explain", m, "-d", "example.com", "<nobody@nowhere>"]).output();
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no message has the Message-ID"));
}

#[test]
fn explain_takes_a_report_rows_source_and_index_for_maildir_input() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .ok();
    let maildir = out.join("dave");
    let report = tmp.path().join("dave.jsonl");
    Run::split(&maildir)
        .out(&tmp.path().join("again"))
        .args(&["-n", "--report", report.to_str().expect("utf8")])
        .ok();
    let rows = report_rows(&report);
    let row = &rows[rows.len() - 1];
    let (source, index) = (
        row["source"].as_str().expect("source"),
        row["index"].as_u64().expect("index"),
    );
    assert!(source.contains("/cur/"), "{source}");
    let text = explain(
        &[maildir.to_str().expect("utf8")],
        &format!("{source}:{index}"),
    );
    assert!(
        text.starts_with(&format!("message {index} of {source}")),
        "{text}"
    );
    assert!(
        text.contains(row["message_id"].as_str().expect("id")),
        "{text}"
    );
}

#[test]
fn short_options_and_the_old_format_flag_work() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = sample("shared-pop.mbox");
    let m = mbox.to_str().expect("utf8");
    let dry = tmp.path().join("dry");
    let stdout = Run::new(&[
        "split",
        m,
        "-d",
        "example.com",
        "-o",
        dry.to_str().expect("utf8"),
        "-j",
        "2",
        "-n",
    ])
    .ok();
    assert!(stdout.contains("would be written"), "{stdout}");
    assert!(!dry.exists(), "-n wrote output");
    for flag in ["--output-format", "--format"] {
        let out = tmp.path().join(flag.trim_start_matches('-'));
        Run::split(&mbox).out(&out).args(&[flag, "mbox"]).ok();
        assert!(out.join("alice.mbox").is_file(), "{flag}");
    }
}

#[test]
fn quiet_prints_nothing_on_success() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let stdout = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&["--quiet"])
        .ok();
    assert_eq!(stdout, "");
    assert!(out.join("alice").is_dir());
}

#[test]
fn profile_json_is_one_object() {
    let mbox = sample("shared-pop.mbox");
    let text = Run::new(&[
        "profile",
        mbox.to_str().expect("utf8"),
        "-d",
        "example.com",
        "--json",
    ])
    .ok();
    let v: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert!(v.is_object(), "{v}");
    golden("profile.json", &text);
}

#[test]
fn every_help_ends_with_examples_and_split_lists_required_options_first() {
    for command in [
        vec!["--help"],
        vec!["split", "--help"],
        vec!["profile", "--help"],
        vec!["explain", "--help"],
        vec!["completions", "--help"],
        vec!["man", "--help"],
    ] {
        let help = Run::new(&command).ok();
        let examples = help.find("Examples:").unwrap_or_else(|| panic!("{help}"));
        assert!(
            help[examples..].contains("popsplit "),
            "{command:?}: {help}"
        );
    }
    let help = Run::new(&["split", "--help"]).ok();
    let at = |flag: &str| help.find(flag).unwrap_or_else(|| panic!("{flag}: {help}"));
    assert!(at("-o, --out") < at("--directory") && at("-d, --domain") < at("--directory"));
    assert!(help.contains("-n, --dry-run") && help.contains("-j, --jobs"));
    assert!(help.contains("--output-format") && help.contains("-q, --quiet"));
}

#[test]
fn completions_and_manual_pages_come_from_the_flags() {
    let bash = Run::new(&["completions", "bash"]).ok();
    assert!(
        bash.contains("popsplit") && bash.contains("--output-format"),
        "{bash}"
    );
    for shell in ["zsh", "fish"] {
        assert!(Run::new(&["completions", shell]).ok().contains("explain"));
    }
    let page = Run::new(&["man"]).ok();
    assert!(
        page.contains(".TH popsplit 1") && page.contains("explain"),
        "{page}"
    );
    let tmp = tempfile::tempdir().expect("tmp");
    Run::new(&["man", tmp.path().to_str().expect("utf8")]).ok();
    for name in ["popsplit.1", "popsplit-split.1", "popsplit-explain.1"] {
        let text = fs::read_to_string(tmp.path().join(name)).expect(name);
        assert!(text.contains(".TH"), "{name}");
    }
    let split = fs::read_to_string(tmp.path().join("popsplit-split.1")).expect("page");
    assert!(split.contains("output\\-format"), "{split}");
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `popsplit profile … | head`: the reader closes the pipe before popsplit writes. The
    // read end is closed before the program starts, so every write fails (EPIPE).
    let sample = sample("shared-pop.mbox");
    let sample = sample.to_str().expect("utf-8");
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let out = out.to_str().expect("utf-8");
    let runs: [&[&str]; 4] = [
        &["profile", sample, "-d", "example.com"],
        &["completions", "bash"],
        &["man"],
        &[
            "split",
            sample,
            "-d",
            "example.com",
            "-o",
            out,
            "--sync",
            "none",
        ],
    ];
    for argv in runs {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let done = Run::new(argv)
            .command()
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&done.stderr);
        assert!(!err.contains("panicked"), "{argv:?}: {err}");
        assert!(done.status.success(), "{argv:?}: {:?} {err}", done.status);
    }
    // The split's work is done before its summary is printed.
    assert!(read_tree(std::path::Path::new(out)).contains_key("alice"));
}

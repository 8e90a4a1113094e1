//! End-to-end: the real binary on the shipped sample, checked message by message.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::*;
use popsplit::text::count;

fn run_sample(out: &std::path::Path, report: &std::path::Path, extra: &[&str]) -> String {
    let mut args = vec!["--report", report.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(out)
        .args(&args)
        .ok()
}

#[test]
fn every_sample_message_lands_where_expected_with_its_confidence() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    golden("split.txt", &run_sample(&out, &report, &[]));
    let tree = read_tree(&out);
    let expected = expected();
    // Every expected copy is a file whose Message-ID and confidence header match.
    let mut want: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for e in &expected {
        for f in &e.folders {
            want.entry(f.clone())
                .or_default()
                .push((e.message_id.clone(), e.confidence.clone()));
        }
    }
    let mut got: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for (folder, files) in &tree {
        for d in files {
            let id = d.header("Message-ID").expect("message id");
            let conf = d.header("X-Popsplit-Confidence").expect("confidence");
            got.entry(folder.clone()).or_default().push((id, conf));
        }
    }
    for v in want.values_mut().chain(got.values_mut()) {
        v.sort();
    }
    assert_eq!(got, want);
    // The report agrees, message by message.
    let rows = report_rows(&report);
    assert_eq!(rows.len(), expected.len());
    for (row, e) in rows.iter().zip(&expected) {
        assert_eq!(row["index"], e.index as u64);
        let to: Vec<String> = serde_json::from_value(row["delivered_to"].clone()).expect("list");
        assert_eq!(to, e.folders, "message {}", e.index);
        assert_eq!(
            row["confidence"],
            e.confidence.as_str(),
            "message {}",
            e.index
        );
    }
}

#[test]
fn delivered_bytes_are_the_original_after_added_headers_only() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    let mbox = fs::read(sample("shared-pop.mbox")).expect("mbox");
    let originals = naive_messages(&mbox, "2019");
    assert_eq!(originals.len(), expected().len());
    let tree = read_tree(&out);
    let mut checked = 0;
    for files in tree.values() {
        for d in files {
            let id = d.header("Message-ID").expect("id");
            let sender_of = |from: &str| from.split_whitespace().nth(1).unwrap_or("").to_string();
            let candidates: Vec<&(String, Vec<u8>)> = originals
                .iter()
                .filter(|(_, m)| d.bytes.ends_with(m) && String::from_utf8_lossy(m).contains(&id))
                .collect();
            assert!(
                !candidates.is_empty(),
                "{} is not an original message plus a prefix",
                d.name
            );
            let (from_line, original) = candidates[0];
            let prefix =
                String::from_utf8_lossy(&d.bytes[..d.bytes.len() - original.len()]).into_owned();
            for line in prefix.lines() {
                let ok = line.starts_with("X-Popsplit-Confidence: ")
                    || line.starts_with("X-Popsplit-Evidence: ")
                    || line.starts_with("X-Popsplit-Duplicate-Of: ")
                    || line.starts_with("Return-Path: <");
                assert!(ok, "unexpected added line {line:?} in {}", d.name);
            }
            if !String::from_utf8_lossy(original).starts_with("Return-Path:") {
                let sender = sender_of(from_line);
                let want = if sender == "MAILER-DAEMON" {
                    String::new()
                } else {
                    sender
                };
                assert_eq!(
                    d.header("Return-Path"),
                    Some(format!("<{want}>")),
                    "{}",
                    d.name
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, expected_counts(&expected()).3);
    // mboxrd quoting undone once; an unquoted mboxo body line kept inside its message.
    let alice = &tree["alice"];
    let quoted = alice
        .iter()
        .find(|d| d.header("Message-ID").as_deref() == Some("<s24@press.example.org>"))
        .expect("s24");
    let text = String::from_utf8_lossy(&quoted.bytes);
    assert!(
        text.contains(
            "\nFrom the desk of the editor.\n>From a line that was already quoted once.\n"
        )
    );
    let bob = &tree["bob"];
    let damaged = bob
        .iter()
        .find(|d| d.header("Message-ID").as_deref() == Some("<s25@partner.example.org>"))
        .expect("s25");
    assert!(
        String::from_utf8_lossy(&damaged.bytes).ends_with(
            "From what I hear, the project is on time.\nIt must stay in this message.\n"
        )
    );
    // The CRLF message got CRLF added headers.
    let crlf = tree["dave"]
        .iter()
        .find(|d| d.header("Message-ID").as_deref() == Some("<s31@crlf.example.org>"))
        .expect("s31");
    assert!(crlf.bytes.starts_with(
        b"X-Popsplit-Confidence: medium\r\nX-Popsplit-Evidence: To: dave@example.com\r\n"
    ));
}

#[test]
fn mtimes_flags_and_confidence_keywords() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    let tree = read_tree(&out);
    let expected = expected();
    let mut seen = 0;
    for (folder, files) in &tree {
        let letters = keyword_letters(&out.join(folder));
        for d in files {
            let id = d.header("Message-ID").expect("id");
            let conf = d.header("X-Popsplit-Confidence").expect("conf");
            let e = expected
                .iter()
                .find(|e| e.message_id == id && e.folders.contains(folder))
                .expect("expected row");
            assert_eq!(d.mtime, epoch(&e.arrival), "mtime of {id} in {folder}");
            assert_eq!(d.sub, "cur");
            let letter = letters[&format!("popsplit-{conf}")];
            assert_eq!(
                d.info(),
                format!("{}{letter}", e.flags),
                "flags of {id} in {folder}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, expected_counts(&expected).3);
    // Unassigned mail carries the `none` keyword.
    let un = &tree["_unassigned"];
    let none = keyword_letters(&out.join("_unassigned"))["popsplit-none"];
    assert!(un.iter().all(|d| d.info().ends_with(none)));
}

#[test]
fn another_maildir_reader_sees_the_same_messages_and_flags() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    let expected = expected();
    for (folder, files) in read_tree(&out) {
        let md = maildir::Maildir::from(out.join(&folder));
        let mut entries: Vec<maildir::MailEntry> =
            md.list_cur().map(|e| e.expect("entry")).collect();
        assert_eq!(entries.len(), files.len(), "{folder}");
        assert_eq!(md.count_new(), 0);
        for e in &mut entries {
            let id = e
                .headers()
                .expect("headers")
                .iter()
                .find(|h| h.get_key().eq_ignore_ascii_case("message-id"))
                .map(|h| h.get_value());
            let row = expected
                .iter()
                .find(|x| Some(&x.message_id) == id.as_ref() && x.folders.contains(&folder))
                .expect("expected row");
            assert_eq!(e.is_seen(), row.flags.contains('S'), "{folder} {:?}", id);
            assert_eq!(e.is_replied(), row.flags.contains('R'), "{folder} {:?}", id);
            assert_eq!(e.is_flagged(), row.flags.contains('F'), "{folder} {:?}", id);
        }
    }
}

#[test]
fn hostile_display_name_cannot_inject_headers() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    for files in read_tree(&out).values() {
        for d in files {
            assert_eq!(d.count_headers("X-Popsplit-Confidence:"), 1, "{}", d.name);
            assert_eq!(d.count_headers("X-Popsplit-Evidence:"), 1, "{}", d.name);
        }
    }
}

#[test]
fn summary_proves_conservation_and_dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    let stdout = run_sample(&out, &report, &["--dry-run"]);
    assert!(!out.exists(), "a dry run created the output folder");
    let rows = expected();
    let (delivered, unassigned, duplicates, copies) = expected_counts(&rows);
    assert_eq!(report_rows(&report).len(), rows.len());
    let line = format!(
        "messages read: {} = {delivered} delivered to users + {unassigned} unassigned + {} set aside; {} would be written",
        rows.len(),
        count(duplicates as u64, "duplicate", "duplicates"),
        count(copies as u64, "copy", "copies"),
    );
    assert!(stdout.contains(&line), "{stdout}");
    golden("split-dry-run.txt", &stdout);
    let alice_row = stdout
        .lines()
        .find(|l| l.starts_with("alice "))
        .expect("alice row");
    let nums: Vec<&str> = alice_row.split_whitespace().collect();
    let alice: Vec<&Expected> = rows
        .iter()
        .filter(|e| e.folders.contains(&"alice".to_string()))
        .collect();
    let by = |c: &str| {
        alice
            .iter()
            .filter(|e| e.confidence == c)
            .count()
            .to_string()
    };
    assert_eq!(
        nums,
        vec![
            "alice".to_string(),
            by("high"),
            by("medium"),
            by("low"),
            by("none"),
            alice.len().to_string()
        ]
    );
}

#[test]
fn one_thread_and_many_decide_alike() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (r1, r2) = (tmp.path().join("r1"), tmp.path().join("r2"));
    run_sample(&tmp.path().join("o1"), &r1, &["--jobs", "1", "--dry-run"]);
    run_sample(&tmp.path().join("o2"), &r2, &["--jobs", "4", "--dry-run"]);
    assert_eq!(fs::read(&r1).expect("r1"), fs::read(&r2).expect("r2"));
}

#[test]
fn report_rows_point_at_their_messages_with_all_evidence() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    let mbox = fs::read(sample("shared-pop.mbox")).expect("mbox");
    for row in report_rows(&report) {
        let offset = row["offset"].as_u64().expect("offset") as usize;
        assert!(
            mbox[offset..].starts_with(b"From "),
            "offset of message {}",
            row["index"]
        );
        assert!(
            row["source"]
                .as_str()
                .expect("source")
                .ends_with("shared-pop.mbox")
        );
        // A first run writes one file per folder the message was delivered to.
        let files = row["files"].as_array().expect("files");
        let folders = row["delivered_to"].as_array().expect("delivered_to");
        assert_eq!(files.len(), folders.len(), "message {}", row["index"]);
        for f in files {
            assert!(out.join(f.as_str().expect("path")).is_file());
        }
    }
    let rows = report_rows(&report);
    // Message 8: the forged Received `for` is reported as untrusted.
    let spam = &rows[7];
    assert_eq!(spam["evidence"][0]["verdict"], "untrusted");
    // Message 14: the departed user is reported as not a user.
    assert!(
        rows[13]["evidence"]
            .as_array()
            .expect("ev")
            .iter()
            .any(|e| e["verdict"] == "not-a-user")
    );
    // Message 18 points back at its first copy.
    assert_eq!(rows[17]["duplicate_of"]["index"], 17);
}

#[test]
fn a_message_for_several_users_is_one_file_linked_into_each_folder() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    let mut shared = 0;
    for row in report_rows(&report) {
        let files: Vec<fs::Metadata> = row["files"]
            .as_array()
            .expect("files")
            .iter()
            .map(|f| fs::metadata(out.join(f.as_str().expect("path"))).expect("copy"))
            .collect();
        // The copies of one message, with the same added fields, are one inode (as
        // Dovecot's delivery agent links them): written once, linked into each folder.
        let inodes: std::collections::BTreeSet<(u64, u64)> =
            files.iter().map(|m| (m.dev(), m.ino())).collect();
        assert!(inodes.len() <= 1, "message {}: {inodes:?}", row["index"]);
        for m in &files {
            assert_eq!(m.nlink(), files.len() as u64, "message {}", row["index"]);
        }
        shared += usize::from(files.len() > 1);
    }
    // Messages 4, 11, 12 and 17 go to two users each.
    assert_eq!(shared, 4);
}

#[test]
fn copy_names_stay_those_earlier_versions_wrote() {
    // A rerun recognises its copies by the key in their names, also copies an earlier
    // version wrote: these names are what popsplit wrote before its hashing was reworked.
    let tmp = tempfile::tempdir().expect("tmp");
    let (out, report) = (tmp.path().join("out"), tmp.path().join("r.jsonl"));
    run_sample(&out, &report, &[]);
    // A long message: its header block and its body each longer than the 16 KB that the
    // hashing copies before it hashes the rest in place.
    let mut long = String::from(
        "From bob@example.org Mon Mar  4 10:00:00 2019\nFrom: bob@example.org\n\
         To: alice@example.com\nSubject: long\nMessage-ID: <long@example.org>\n\
         Date: Mon, 4 Mar 2019 10:00:00 +0000\nX-Note: filler\n",
    );
    long.extend((0..1500).map(|i| format!(" filler {i:05}\n")));
    long.push('\n');
    long.extend((0..3000).map(|i| format!("body line {i:05}\n")));
    let input = tmp.path().join("long.mbox");
    fs::write(&input, long).expect("write");
    let long_out = tmp.path().join("long-out");
    Run::split(&input).office().out(&long_out).ok();
    // Arrival and key; the rest of a name holds the size, which the added fields change
    // (a set-aside copy names the input it came from).
    for (root, folder, name) in [
        (
            &out,
            "alice",
            "1551430800.fedd2428106b34ea931ff878.popsplit,",
        ),
        (&out, "bob", "1551435301.c22263a731c3326fd5dbf7bf.popsplit,"),
        // Set aside: its key also holds its place among the message's extra copies.
        (
            &out,
            "_duplicates",
            "1551873602.a53efe7da0968fe51c6c706f.popsplit,",
        ),
        (
            &long_out,
            "alice",
            "1551693600.833edd5ee5aefec2e4a041d1.popsplit,",
        ),
    ] {
        let names: Vec<String> = fs::read_dir(root.join(folder).join("cur"))
            .expect("cur")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().any(|n| n.starts_with(name)),
            "{folder}/cur/{name}* missing: {names:?}"
        );
    }
}

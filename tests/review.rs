//! The review loop: a person's corrections (`--corrections`) decide the doubtful mail,
//! and a rerun makes `--out` match the decisions.

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// The sample's file, as the report names it when the test passes its absolute path.
fn sample_box() -> String {
    sample("shared-pop.mbox").display().to_string()
}

/// Writes a corrections file into `dir` and returns its path.
fn corrections(dir: &Path, lines: &[&str]) -> String {
    let path = dir.join("corrections.csv");
    let mut text = String::from("message,users\n");
    for l in lines {
        text.push_str(l);
        text.push('\n');
    }
    fs::write(&path, text).expect("write corrections");
    path.display().to_string()
}

/// The files of `folder` whose Message-ID is `id`.
fn copies_of(out: &Path, folder: &str, id: &str) -> Vec<Delivered> {
    read_tree(out)
        .remove(folder)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.header("Message-ID").as_deref() == Some(id))
        .collect()
}

#[test]
fn corrected_messages_go_exactly_where_the_file_says_as_reviewed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let report = tmp.path().join("report.jsonl");
    let file = corrections(
        tmp.path(),
        &[
            // Unassigned spam that a person knows was for carol.
            "<s08@lottery.example.biz>,carol",
            // A message the box got once per recipient (alice and bob): every copy follows.
            "s02@partner.example.org,dave",
            // By the report's place: the low-confidence message 11 goes nowhere.
            &format!("{}:11,_unassigned", sample_box()),
        ],
    );
    let stdout = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&[
            "--corrections",
            &file,
            "--report",
            report.to_str().expect("utf8"),
        ])
        .ok();
    assert!(stdout.contains("reviewed"), "{stdout}");

    let s08 = copies_of(&out, "carol", "<s08@lottery.example.biz>");
    assert_eq!(s08.len(), 1);
    assert_eq!(
        s08[0].header("X-Popsplit-Confidence").as_deref(),
        Some("reviewed")
    );
    assert_eq!(
        s08[0].header("X-Popsplit-Evidence"),
        Some(format!("corrected by {file} line 2"))
    );
    let letter = keyword_letters(&out.join("carol"))["popsplit-reviewed"];
    assert!(s08[0].info().ends_with(letter), "{}", s08[0].name);
    assert!(copies_of(&out, "_unassigned", "<s08@lottery.example.biz>").is_empty());

    // Both copies of s02 name dave now: one reaches him, the other is set aside.
    assert_eq!(
        copies_of(&out, "dave", "<s02@partner.example.org>").len(),
        1
    );
    assert_eq!(
        copies_of(&out, "_duplicates", "<s02@partner.example.org>").len(),
        1
    );
    for user in ["alice", "bob"] {
        assert!(copies_of(&out, user, "<s02@partner.example.org>").is_empty());
    }

    let rows = report_rows(&report);
    let row11 = &rows[10];
    assert_eq!(row11["confidence"], "reviewed");
    assert_eq!(row11["delivered_to"], serde_json::json!(["_unassigned"]));
    assert_eq!(row11["decisive"], format!("corrected by {file} line 4"));
    let reviewed = rows
        .iter()
        .filter(|r| r["confidence"] == "reviewed")
        .count();
    assert_eq!(reviewed, 4, "s08, both copies of s02 and message 11");
    // Every other message is decided as without corrections.
    let expected = expected();
    for (row, e) in rows.iter().zip(&expected) {
        if row["confidence"] != "reviewed" {
            assert_eq!(
                row["confidence"],
                e.confidence.as_str(),
                "message {}",
                e.index
            );
        }
    }
}

#[test]
fn a_bad_corrections_line_is_an_error_naming_it_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tmp");
    for (lines, line, says) in [
        (
            vec!["<s08@lottery.example.biz>,mallory"],
            2,
            "`mallory` is not a user",
        ),
        (
            vec!["<s01@supplier.example.org>,bob", "<nobody@nowhere>,bob"],
            3,
            "no message of the inputs",
        ),
        (
            vec![
                "<s01@supplier.example.org>,bob",
                "<s01@supplier.example.org>,alice",
            ],
            3,
            "same message as line 2",
        ),
        (vec!["elsewhere.mbox:1,bob"], 2, "no message of the inputs"),
    ] {
        let file = corrections(tmp.path(), &lines);
        let out = tmp.path().join("out");
        let res = Run::split(&sample("shared-pop.mbox"))
            .office()
            .out(&out)
            .args(&["--corrections", &file])
            .output();
        assert_eq!(res.status.code(), Some(1), "{lines:?}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains(&format!("line {line}:")) && err.contains(says),
            "{lines:?}: {err}"
        );
        assert!(!out.exists(), "{lines:?}: the run wrote before refusing");
    }
    // A place line and a Message-ID line that turn out to be one message.
    let file = corrections(
        tmp.path(),
        &[
            &format!("{}:1,bob", sample_box()),
            "<s01@supplier.example.org>,alice",
        ],
    );
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&tmp.path().join("o2"))
        .args(&["--corrections", &file])
        .output();
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("line 3:") && err.contains("same message as line 2"),
        "{err}"
    );
}

/// Renames the file of `folder` whose Message-ID is `id` to carry the flag `flag`, as a
/// mail client serving the Maildir would; returns its bytes.
fn flag(out: &Path, folder: &str, id: &str, flag: char) -> Vec<u8> {
    let d = copies_of(out, folder, id).pop().expect("the copy");
    let (stem, info) = d.name.split_once(":2,").expect("info");
    let mut flags: Vec<char> = info.chars().chain([flag]).collect();
    flags.sort_unstable();
    let to = format!("{stem}:2,{}", flags.into_iter().collect::<String>());
    let dir = out.join(folder).join(&d.sub);
    fs::rename(dir.join(&d.name), dir.join(to)).expect("rename");
    d.bytes
}

#[test]
fn a_rerun_moves_earlier_copies_to_the_corrected_folders_keeping_flags() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .ok();
    // A person read and flagged the unassigned spam; a file popsplit did not write sits
    // beside alice's copies.
    let s08 = flag(&out, "_unassigned", "<s08@lottery.example.biz>", 'F');
    let foreign = out.join("alice/cur/1.foreign:2,S");
    fs::write(&foreign, "Subject: mine\n\nnot popsplit's\n").expect("write");
    let before = read_tree(&out);

    let file = corrections(
        tmp.path(),
        &[
            "<s08@lottery.example.biz>,carol",
            "<s02@partner.example.org>,dave",
            // Went to alice and bob (sales@): now to alice only.
            "<s11@shop.example.org>,alice",
        ],
    );
    let args = ["--corrections", file.as_str()];
    let dry = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&[&args[..], &["--dry-run"]].concat())
        .ok();
    assert!(dry.contains("would move _unassigned/cur/"), "{dry}");
    assert!(dry.contains("would remove bob/cur/"), "{dry}");
    assert!(
        dry.contains("3 would be moved to their folder, 1 would be removed"),
        "{dry}"
    );
    let tree = read_tree(&out);
    assert_eq!(
        tree.iter()
            .map(|(f, d)| (
                f.clone(),
                d.iter().map(|d| d.name.clone()).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|(f, d)| (
                f.clone(),
                d.iter().map(|d| d.name.clone()).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>(),
        "a dry run changed the output"
    );

    let report = tmp.path().join("report.jsonl");
    let stdout = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&[&args[..], &["--report", report.to_str().expect("utf8")]].concat())
        .ok();
    assert!(
        stdout.contains("3 moved to their folder, 1 removed (their folder had them already)"),
        "{stdout}"
    );
    // Renamed, not rewritten: the same bytes, the client's flag kept, the new keyword.
    let moved = copies_of(&out, "carol", "<s08@lottery.example.biz>");
    assert_eq!(moved.len(), 1);
    assert_eq!(moved[0].bytes, s08);
    let letters = keyword_letters(&out.join("carol"));
    assert!(
        moved[0].info().contains('F') && moved[0].info().contains(letters["popsplit-reviewed"]),
        "{}",
        moved[0].name
    );
    assert!(
        !moved[0].info().contains(letters["popsplit-none"]),
        "{}",
        moved[0].name
    );
    assert!(copies_of(&out, "_unassigned", "<s08@lottery.example.biz>").is_empty());
    // Every copy of each corrected message is in exactly the folders the file says.
    for (id, want) in [
        ("<s02@partner.example.org>", vec!["_duplicates", "dave"]),
        ("<s11@shop.example.org>", vec!["alice"]),
        ("<s08@lottery.example.biz>", vec!["carol"]),
    ] {
        let mut have: Vec<String> = read_tree(&out)
            .into_iter()
            .flat_map(|(f, files)| {
                files
                    .into_iter()
                    .filter(|d| d.header("Message-ID").as_deref() == Some(id))
                    .map(move |_| f.clone())
            })
            .collect();
        have.sort();
        assert_eq!(have, want, "{id}");
    }
    assert!(
        foreign.exists(),
        "a file popsplit did not write was touched"
    );
    let rows = report_rows(&report);
    let moved_rows: usize = rows
        .iter()
        .map(|r| r["moved"].as_array().map_or(0, Vec::len))
        .sum();
    let removed_rows: usize = rows
        .iter()
        .map(|r| r["removed"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!((moved_rows, removed_rows), (3, 1));
    assert_eq!(
        rows[7]["moved"][0]["to"]
            .as_str()
            .map(|t| t.starts_with("carol/cur/")),
        Some(true)
    );

    // The output now matches the decisions: a third run moves nothing.
    let again = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .args(&args)
        .ok();
    assert!(
        again.contains("0 copies written") && !again.contains("moved"),
        "{again}"
    );
}

#[test]
fn per_user_figures_list_every_directory_user_and_zero_for_a_missing_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("directory.csv");
    let mut text = fs::read_to_string(sample("directory.csv")).expect("directory");
    text.push_str("zoe@example.com,zoe\n");
    fs::write(&dir, text).expect("write");
    let out = tmp.path().join("out");
    let page = tmp.path().join("audit.html");
    let stdout = Run::split(&sample("shared-pop.mbox"))
        .directory(&dir)
        .out(&out)
        .args(&["--html", page.to_str().expect("utf8")])
        .ok();
    let line = |user: &str| -> Vec<String> {
        stdout
            .lines()
            .skip_while(|l| !l.contains("messages") || !l.contains("bytes"))
            .find(|l| l.split_whitespace().next() == Some(user))
            .unwrap_or_else(|| panic!("no figures for {user}: {stdout}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    assert_eq!(line("zoe"), ["zoe", "0", "0", "-", "-"]);
    // alice's figures from the expected destinations and an independent mbox reader.
    let messages = naive_messages(&fs::read(sample("shared-pop.mbox")).expect("mbox"), "2019");
    let rows: Vec<Expected> = expected()
        .into_iter()
        .filter(|e| e.folders.iter().any(|f| f == "alice"))
        .collect();
    let bytes: usize = rows.iter().map(|e| messages[e.index - 1].1.len()).sum();
    let days: Vec<&str> = rows.iter().map(|e| &e.arrival[..10]).collect();
    let (first, last) = (
        days.iter().min().expect("one"),
        days.iter().max().expect("one"),
    );
    assert_eq!(
        line("alice"),
        [
            "alice".to_string(),
            rows.len().to_string(),
            bytes.to_string(),
            first.to_string(),
            last.to_string()
        ]
    );
    let html = fs::read_to_string(&page).expect("page");
    assert!(html.contains("<th>zoe</th>"), "zoe missing from the page");
    assert!(html.contains(&format!("{bytes} bytes, {first} to {last}")));
}

#[test]
fn the_report_may_not_overwrite_the_corrections_file() {
    let tmp = tempfile::tempdir().expect("tmp");
    let file = corrections(tmp.path(), &["<s08@lottery.example.biz>,carol"]);
    let before = fs::read(&file).expect("read");
    let res = Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&tmp.path().join("out"))
        .args(&["--corrections", &file, "--report", &file])
        .output();
    // A path mistake on the command line: exit 2, like every usage error.
    assert_eq!(res.status.code(), Some(2));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("is the --corrections file"), "{err}");
    assert_eq!(fs::read(&file).expect("read"), before);
}

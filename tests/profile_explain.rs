//! End-to-end: `popsplit profile`, `split --explain`, and the options that override what
//! the profile learned.

mod common;

use std::fs;

use common::*;

fn mailbox_args<'a>(mbox: &'a str, dir: &'a str) -> Vec<&'a str> {
    vec![mbox, "--domain", "example.com", "--directory", dir]
}

#[test]
fn profile_shows_envelope_fields_relays_and_strangers() {
    let (mbox, dir) = (sample("shared-pop.mbox"), sample("directory.csv"));
    let mut args = vec!["profile"];
    args.extend(mailbox_args(
        mbox.to_str().expect("utf8"),
        dir.to_str().expect("utf8"),
    ));
    golden("profile.txt", &Run::new(&args).ok());
}

/// A qmail-style box whose ISP prefixes every envelope address and names the box itself.
fn prefixed_box(n: usize) -> String {
    let users = ["alice", "bob", "carol", "dave"];
    (0..n)
        .map(|i| {
            let u = users[i % users.len()];
            format!(
                "From s@org{i}.example Mon Jan  7 10:{:02}:00 2019\nDelivered-To: acmepop@isp.example.net\nDelivered-To: acmepop-{u}@isp.example.net\nReceived: (qmail {i} invoked from network); 7 Jan 2019 10:00:00 -0000\nReceived: from mail.org{i}.example by mail.isp.example.net; 7 Jan 2019 10:00:00 -0000\nFrom: s@org{i}.example\nTo: {u}@example.com\nMessage-ID: <{i}@org{i}.example>\n\nhello {u}\n\n",
                i % 60
            )
        })
        .collect()
}

#[test]
fn learned_prefix_and_box_deliver_at_high() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = tmp.path().join("q.mbox");
    fs::write(&mbox, prefixed_box(40)).expect("write");
    let m = mbox.to_str().expect("utf8");
    let profile = Run::new(&["profile", m, "--domain", "example.com"]).ok();
    assert!(
        profile.contains("strip prefix `acmepop-` at @isp.example.net, deliver as @example.com"),
        "{profile}"
    );
    let the_box = profile
        .lines()
        .skip_while(|l| !l.contains("shared box"))
        .nth(1)
        .expect("box line");
    assert!(the_box.contains("acmepop@isp.example.net"), "{profile}");
    let out = tmp.path().join("out");
    let report = tmp.path().join("r.jsonl");
    Run::split(&mbox)
        .out(&out)
        .args(&["--report", report.to_str().expect("utf8")])
        .ok();
    let tree = read_tree(&out);
    assert_eq!(
        tree.keys().collect::<Vec<_>>(),
        vec!["alice", "bob", "carol", "dave"]
    );
    for (user, files) in &tree {
        assert_eq!(files.len(), 10);
        for d in files {
            assert_eq!(d.header("X-Popsplit-Confidence").as_deref(), Some("high"));
            assert_eq!(
                d.header("X-Popsplit-Evidence"),
                Some(format!("Delivered-To: acmepop-{user}@isp.example.net"))
            );
        }
    }
    let row: serde_json::Value = serde_json::from_str(
        fs::read_to_string(&report)
            .expect("report")
            .lines()
            .next()
            .expect("row"),
    )
    .expect("json");
    assert_eq!(row["evidence"][0]["verdict"], "shared-box");
}

#[test]
fn strip_prefix_option_applies_where_there_is_too_little_to_learn() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = tmp.path().join("q.mbox");
    fs::write(&mbox, prefixed_box(2)).expect("write");
    let (without, with) = (tmp.path().join("a"), tmp.path().join("b"));
    Run::split(&mbox).out(&without).ok();
    Run::split(&mbox)
        .out(&with)
        .args(&["--strip-prefix", "acmepop-@isp.example.net"])
        .ok();
    let conf = |out: &std::path::Path| {
        read_tree(out)["alice"][0]
            .header("X-Popsplit-Confidence")
            .unwrap_or_default()
    };
    assert_eq!(conf(&without), "medium");
    assert_eq!(conf(&with), "high");
}

#[test]
fn envelope_header_option_restricts_envelope_evidence() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (mbox, dir) = (sample("shared-pop.mbox"), sample("directory.csv"));
    let report = tmp.path().join("r.jsonl");
    let mut args = vec!["split"];
    args.extend(mailbox_args(
        mbox.to_str().expect("utf8"),
        dir.to_str().expect("utf8"),
    ));
    let out = tmp.path().join("out");
    args.extend([
        "--out",
        out.to_str().expect("utf8"),
        "--dry-run",
        "--report",
        report.to_str().expect("utf8"),
        "--envelope-header",
        "X-Original-To",
    ]);
    Run::new(&args).ok();
    let rows = report_rows(&report);
    // Message 6 (qmail Delivered-To) falls back to its To field.
    assert_eq!(rows[5]["confidence"], "medium");
    assert_eq!(rows[5]["evidence"][0]["verdict"], "ignored");
    // Message 1 (X-Original-To) is unchanged.
    assert_eq!(rows[0]["confidence"], "high");
}

#[test]
fn explain_says_why_for_each_piece_of_evidence() {
    let (mbox, dir) = (sample("shared-pop.mbox"), sample("directory.csv"));
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let run = |which: &str| {
        let mut args = vec!["split"];
        args.extend(mailbox_args(
            mbox.to_str().expect("utf8"),
            dir.to_str().expect("utf8"),
        ));
        args.extend(["--out", out.to_str().expect("utf8"), "--explain", which]);
        Run::new(&args).ok()
    };
    // Spam naming alice below the ISP's own Received fields: untrusted, unassigned.
    golden("explain-8.txt", &run("8"));
    // A reply in bob's thread: inferred, at low.
    golden(
        "explain-34.txt",
        &run(&format!("{}:34", mbox.to_str().expect("utf8"))),
    );
    assert!(!out.exists(), "--explain wrote output");
    let bad = Run::split(&mbox)
        .out(&out)
        .args(&["--explain", "99"])
        .output();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("has no message 99"));
}

#[test]
fn a_box_at_the_office_domain_is_never_a_user_without_directory() {
    use synth::{Spec, Style, generate};
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = tmp.path().join("bare.mbox");
    let mut bytes = Vec::new();
    generate(
        &Spec {
            style: Style::Bare,
            messages: 300,
            seed: 3,
            per_recipient_copies: true,
            body_bytes: 200,
        },
        &mut bytes,
    )
    .expect("generate");
    assert!(String::from_utf8_lossy(&bytes).contains("Delivered-To: office@example.com"));
    fs::write(&mbox, &bytes).expect("write");
    let out = tmp.path().join("out");
    Run::split(&mbox).out(&out).ok();
    let tree = read_tree(&out);
    assert!(
        !tree.contains_key("office"),
        "the shared box became a user: {:?}",
        tree.keys().collect::<Vec<_>>()
    );
    assert!(tree.contains_key("alice"));
}

#[test]
fn trusted_relay_option_moves_the_trust_boundary() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = sample("shared-pop.mbox");
    let run = |extra: &[&str]| -> serde_json::Value {
        let report = tmp.path().join("r.jsonl");
        let mut args = vec!["--dry-run", "--report", report.to_str().expect("utf8")];
        args.extend_from_slice(extra);
        Run::split(&mbox)
            .office()
            .out(&tmp.path().join("out"))
            .args(&args)
            .ok();
        let text = fs::read_to_string(&report).expect("report");
        serde_json::from_str(text.lines().nth(7).expect("message 8")).expect("json")
    };
    // Message 8's `for <alice@…>` sits four Received fields down, below the ISP's line.
    assert_eq!(run(&[])["confidence"], "none");
    // An admin who declares every one of those hosts a relay makes it trusted.
    let trusting = run(&[
        "--trusted-relay",
        "example.net",
        "--trusted-relay",
        "b",
        "--trusted-relay",
        "d",
        "--trusted-relay",
        "f",
        "--trusted-relay",
        "example.com",
    ]);
    assert_eq!(trusting["delivered_to"], serde_json::json!(["alice"]));
    assert_eq!(trusting["confidence"], "high");
}

#[test]
fn unassigned_folder_name_is_chosen_and_checked() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = sample("shared-pop.mbox");
    let out = tmp.path().join("out");
    Run::split(&mbox)
        .office()
        .out(&out)
        .args(&["--unassigned", "_review"])
        .ok();
    let tree = read_tree(&out);
    let unassigned = expected()
        .iter()
        .filter(|e| e.folders == ["_unassigned"])
        .count();
    assert_eq!(tree["_review"].len(), unassigned);
    assert!(!tree.contains_key("_unassigned"));
    for bad in ["review", "_../x", "_duplicates"] {
        let res = Run::split(&mbox)
            .office()
            .out(&tmp.path().join("bad"))
            .args(&["--unassigned", bad])
            .output();
        assert_eq!(res.status.code(), Some(2), "{bad}");
        assert!(!tmp.path().join("bad").exists());
    }
}

/// A catch-all account that the directory maps to a person (info@ → carol): learning
/// leaves it carol's address and says so; `--shared-box` makes its Delivered-To no
/// recipient, while mail `To:` info@ still reaches carol.
#[test]
fn a_catch_all_in_the_directory_is_named_and_shared_box_overrides_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = tmp.path().join("catchall.mbox");
    let mut text = String::new();
    for i in 0..30 {
        let to = if i % 10 == 3 {
            "info"
        } else {
            ["alice", "bob", "dave"][i % 3]
        };
        text.push_str(&format!(
            "From s@example.org Mon Mar  4 10:00:00 2019\nDelivered-To: info@example.com\nReceived: from s{i}.example.org by mx1.isp.example.net; Mon, 4 Mar 2019 10:00:00 +0000\nFrom: s@example.org\nTo: {to}@example.com\nMessage-ID: <c{i}@example.org>\nSubject: m{i}\n\nbody\n\n"
        ));
    }
    fs::write(&mbox, text).expect("write");
    let m = mbox.to_str().expect("utf8");
    let dir = sample("directory.csv");
    let d = dir.to_str().expect("utf8");
    let profile = Run::new(&["profile", m, "--domain", "example.com", "--directory", d]).ok();
    assert!(
        profile.contains("info@example.com looks like it")
            && profile.contains("the directory maps it to carol"),
        "{profile}"
    );
    let report = tmp.path().join("r.jsonl");
    let r = report.to_str().expect("utf8");
    let base = ["--dry-run", "--report", r];
    Run::split(&mbox)
        .office()
        .out(&tmp.path().join("out"))
        .args(&base)
        .ok();
    let rows = report_rows(&report);
    assert!(
        rows.iter()
            .all(|r| r["decided"] == serde_json::json!(["carol"]))
    );
    let mut shared = base.to_vec();
    shared.extend(["--shared-box", "info@example.com"]);
    Run::split(&mbox)
        .office()
        .out(&tmp.path().join("out"))
        .args(&shared)
        .ok();
    let rows = report_rows(&report);
    let to_whom: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["decided"][0].as_str().expect("one user"),
                r["confidence"].as_str().expect("confidence"),
            )
        })
        .take(4)
        .collect();
    assert_eq!(
        to_whom,
        vec![
            ("alice", "medium"),
            ("bob", "medium"),
            ("dave", "medium"),
            ("carol", "medium")
        ]
    );
    assert!(profile.contains("info@example.com"));
    assert_eq!(rows[0]["evidence"][0]["verdict"], "shared-box");
}

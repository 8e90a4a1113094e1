//! Real mail whose recipients are known (`../shared/corpora/kernel-lists`: two public
//! kernel lists received by one host at two +tag addresses, merged into one box). Every
//! message must reach its list's user and no other, also when only the receiving hops'
//! Received `for` clauses are left; with every envelope trace gone, nobody gets anything.
//!
//! The corpus lives beside the repository, not in it: on a clone without it this test
//! says so and passes; under `CI=true` (where it is present) a missing corpus fails.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use common::*;

/// The corpus folder, or `None` (after saying so) when this clone has none beside it.
fn corpus() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpora/kernel-lists");
    if dir.join("mailbox.mbox.gz").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{} is missing under CI=true",
        dir.display()
    );
    skipped("../shared/corpora/kernel-lists is not beside this clone (CI has it)");
    None
}

/// Message-ID → the users it belongs to, and each message's Message-ID in mailbox order.
fn truth(dir: &Path) -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let text = fs::read_to_string(dir.join("truth.tsv")).expect("truth.tsv");
    let (mut owners, mut order) = (BTreeMap::<String, BTreeSet<String>>::new(), Vec::new());
    for line in text.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let user = cols[2].strip_prefix("linux-").expect("list name");
        owners
            .entry(cols[1].to_string())
            .or_default()
            .insert(user.to_string());
        order.push(cols[1].to_string());
    }
    (owners, order)
}

/// What to write for one header field (name lower case, raw text, names seen so far in
/// the message), or `None` to drop it.
type Keep<'a> = &'a dyn Fn(&str, &str, &mut BTreeSet<String>) -> Option<String>;

/// The mailbox with each header block passed through `keep`, which sees one unfolded
/// field at a time (name lower case, whole raw text) and returns what to write instead.
fn rewrite(mbox: &[u8], keep: Keep<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(mbox.len());
    let (mut in_header, mut field, mut seen) = (false, String::new(), BTreeSet::new());
    let flush = |field: &mut String, seen: &mut BTreeSet<String>, out: &mut Vec<u8>| {
        if field.is_empty() {
            return;
        }
        let name = field.split(':').next().unwrap_or("").to_ascii_lowercase();
        if let Some(kept) = keep(&name, field, seen) {
            out.extend_from_slice(kept.as_bytes());
        }
        field.clear();
    };
    for line in mbox.split_inclusive(|b| *b == b'\n') {
        if line.starts_with(b"From ") {
            in_header = true;
            seen.clear();
            out.extend_from_slice(line);
            continue;
        }
        if !in_header {
            out.extend_from_slice(line);
            continue;
        }
        if line == b"\n" {
            flush(&mut field, &mut seen, &mut out);
            in_header = false;
            out.extend_from_slice(line);
            continue;
        }
        if !line.starts_with(b" ") && !line.starts_with(b"\t") {
            flush(&mut field, &mut seen, &mut out);
        }
        field.push_str(&String::from_utf8_lossy(line));
    }
    flush(&mut field, &mut seen, &mut out);
    out
}

/// Removes a Received field's `for <…>` clause.
fn without_for(field: &str) -> String {
    let mut out = field.to_string();
    while let Some(at) = out.find("for <") {
        let end = out[at..].find('>').map_or(out.len(), |e| at + e + 1);
        let start = out[..at].trim_end_matches([' ', '\t', '\n']).len();
        out.replace_range(start..end, "");
    }
    out
}

/// Runs a dry split with the corpus's directory and returns the report's rows.
fn split(dir: &Path, input: &Path, tmp: &Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let report = tmp.join("report.jsonl");
    let mut args = vec!["--dry-run", "--report", report.to_str().expect("utf8")];
    args.extend_from_slice(extra);
    let out = tmp.join("out");
    Run::split(input)
        .domain("lfdr.de")
        .directory(&dir.join("directory.csv"))
        .out(&out)
        .args(&args)
        .ok();
    report_rows(&report)
}

/// (wrong deliveries, messages not delivered to their own list's user).
fn score(
    rows: &[serde_json::Value],
    owners: &BTreeMap<String, BTreeSet<String>>,
    order: &[String],
) -> (usize, usize) {
    assert_eq!(rows.len(), order.len(), "one report row per message");
    let (mut wrong, mut missed) = (0, 0);
    for (row, id) in rows.iter().zip(order) {
        let decided: BTreeSet<String> = row["decided"]
            .as_array()
            .expect("decided")
            .iter()
            .map(|u| u.as_str().expect("user").to_string())
            .collect();
        wrong += decided.difference(&owners[id]).count();
        missed += usize::from(decided.is_empty());
    }
    (wrong, missed)
}

#[test]
fn real_list_mail_reaches_exactly_its_reader() {
    let Some(dir) = corpus() else { return };
    let (owners, order) = truth(&dir);
    let tmp = tempfile::tempdir().expect("tmp");
    let rows = split(&dir, &dir.join("mailbox.mbox.gz"), tmp.path(), &[]);
    assert_eq!(score(&rows, &owners, &order), (0, 0));
    let high = rows.iter().filter(|r| r["confidence"] == "high").count();
    assert_eq!(high, rows.len(), "every message by its envelope");

    let mut mbox = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(dir.join("mailbox.mbox.gz")).expect("gz"))
        .read_to_end(&mut mbox)
        .expect("inflate");
    // Only the receiving hops' Received `for` left: the top Delivered-To and X-Original-To
    // go (the list server's X-Original-To lower down stays, as history).
    let only_for = rewrite(&mbox, &|name, field, seen| {
        let top =
            (name == "delivered-to" || name == "x-original-to") && seen.insert(name.to_string());
        (!top).then(|| field.to_string())
    });
    let input = tmp.path().join("only-for.mbox");
    fs::write(&input, &only_for).expect("write");
    let rows = split(&dir, &input, tmp.path(), &[]);
    assert_eq!(score(&rows, &owners, &order), (0, 0));

    // No envelope trace at all: To/Cc name only the lists, so nobody here gets anything.
    let bare = rewrite(&mbox, &|name, field, _| match name {
        "delivered-to" | "x-original-to" => None,
        "received" => Some(without_for(field)),
        _ => Some(field.to_string()),
    });
    assert!(!String::from_utf8_lossy(&bare).contains("for <lists+"));
    let input = tmp.path().join("bare.mbox");
    fs::write(&input, &bare).expect("write");
    // The office's domain is then named nowhere: popsplit stops and says what it saw.
    let stopped = Run::new(&[
        "split",
        input.to_str().expect("utf8"),
        "--domain",
        "lfdr.de",
        "--out",
        tmp.path().join("o").to_str().expect("utf8"),
    ])
    .output();
    let said = String::from_utf8_lossy(&stopped.stderr);
    assert!(!stopped.status.success());
    assert!(
        said.contains("--domain lfdr.de") && said.contains("vger.kernel.org"),
        "{said}"
    );
    assert!(!tmp.path().join("o").exists(), "nothing written");
    let rows = split(&dir, &input, tmp.path(), &["--allow-unseen-domain"]);
    let delivered: usize = rows
        .iter()
        .map(|r| r["decided"].as_array().expect("decided").len())
        .sum();
    assert_eq!(delivered, 0);
}

//! Real mail written by other people (tests/data, see its README): every message lands in
//! some Maildir byte for byte, counted against an independent reader (Python's `mailbox`).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use common::*;

/// Writes every message Python's `mailbox.mbox` reads (mboxrd quoting undone) as a file.
fn python_messages(mbox: &Path, dir: &Path) -> Vec<Vec<u8>> {
    let script = r#"
import mailbox, re, sys, os
mb = mailbox.mbox(sys.argv[1])
for i, k in enumerate(mb.keys()):
    b = re.sub(rb'(?m)^>(>*From )', rb'\1', mb.get_bytes(k))
    open(os.path.join(sys.argv[2], '%06d' % i), 'wb').write(b)
"#;
    let status = Command::new("python3")
        .args(["-c", script])
        .arg(mbox)
        .arg(dir)
        .status()
        .expect("python3 runs");
    assert!(
        status.success(),
        "python3 could not read {}",
        mbox.display()
    );
    let mut names: Vec<_> = fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .collect();
    names.sort();
    names.iter().map(|p| fs::read(p).expect("read")).collect()
}

#[test]
fn every_real_message_lands_byte_exact() {
    if !tool_present("python3", "--version", "python3") {
        return;
    }
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let mut ran = 0;
    for name in ["spamassassin-tdata.mbox", "sisimai-set-of-emails.mbox"] {
        // popsplit reads the gzip'd file itself; Python's reader gets the plain bytes.
        let gz = data.join(format!("{name}.gz"));
        let tmp = tempfile::tempdir().expect("tmp");
        let mbox = test_data(&format!("{name}.gz"), tmp.path(), name);
        let py = tmp.path().join("py");
        fs::create_dir(&py).expect("mkdir");
        let originals = python_messages(&mbox, &py);
        let out = tmp.path().join("out");
        let stdout = Run::new(&[
            "split",
            gz.to_str().expect("utf8"),
            "--domain",
            "example.org",
            "--domain",
            "example.jp",
            // One corpus names only example.org, the other only example.jp.
            "--allow-unseen-domain",
            "--out",
            out.to_str().expect("utf8"),
        ])
        .ok();
        assert!(
            stdout.contains(&format!("messages read: {} =", originals.len())),
            "{stdout}"
        );
        let mut delivered: Vec<Vec<u8>> = read_tree(&out)
            .into_values()
            .flatten()
            .map(|d| d.bytes)
            .collect();
        assert_eq!(
            delivered.len(),
            originals.len(),
            "{name}: one file per message"
        );
        for (i, o) in originals.iter().enumerate() {
            let at = delivered.iter().position(|d| {
                d.ends_with(o)
                    && String::from_utf8_lossy(&d[..d.len() - o.len()])
                        .lines()
                        .all(|l| l.starts_with("X-Popsplit-") || l.starts_with("Return-Path: <"))
            });
            let at = at.unwrap_or_else(|| {
                panic!("{name}: message {} is in no Maildir byte for byte", i + 1)
            });
            delivered.swap_remove(at);
            ran += 1;
        }
    }
    assert_eq!(ran, 831);
}

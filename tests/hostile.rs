//! End-to-end: broken and hostile input. Each case is either a clear error naming the
//! file and offset, or is delivered intact; never a panic, never a write outside --out.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::*;

/// The message as delivered, without popsplit's added fields.
fn strip_added(bytes: &[u8]) -> &[u8] {
    let mut at = 0;
    while let Some(end) = bytes[at..]
        .iter()
        .position(|&b| b == b'\n')
        .map(|i| at + i + 1)
    {
        let line = &bytes[at..end];
        if line.starts_with(b"X-Popsplit-") || line.starts_with(b"Return-Path: <") {
            at = end;
        } else {
            break;
        }
    }
    &bytes[at..]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, bytes).expect("write");
    p
}

#[test]
fn files_that_are_not_mail_are_refused_by_name_and_offset() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut random = Vec::new();
    let mut x: u64 = 0x1234_5678;
    for _ in 0..4096 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push((x % 251) as u8 + 1);
    }
    for (name, bytes) in [
        (
            "scan.pdf",
            b"%PDF-1.7\n%\xb5\xb5\xb5\xb5\n1 0 obj\n".to_vec(),
        ),
        ("noise.bin", random),
    ] {
        let input = write(tmp.path(), name, &bytes);
        let out = tmp.path().join(format!("out-{name}"));
        let res = Run::split(&input).out(&out).output();
        assert_eq!(res.status.code(), Some(1), "{name}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains(name) && err.contains("byte offset") && err.contains("not an mbox"),
            "{name}: {err}"
        );
        assert!(!out.exists(), "{name}: output written");
    }
}

#[test]
fn damaged_messages_are_delivered_intact() {
    let tmp = tempfile::tempdir().expect("tmp");
    let long_value = "x".repeat(150_000);
    let messages: Vec<Vec<u8>> = vec![
        // NUL bytes and invalid UTF-8 in the header block.
        b"To: \"\xff\xfe\x00bad\" <alice@example.com>\nX-Junk: \x00\x01\x02\xc3\x28\nSubject: \xe9t\xe9\n\nbody\n".to_vec(),
        // No header block at all.
        b"\nonly a body, nothing names anyone\n".to_vec(),
        // Headers and no body.
        b"To: bob@example.com\nSubject: no body".to_vec(),
        // A header line over 100 KB.
        format!("X-Long: {long_value}\nTo: carol@example.com\n\nbody\n").into_bytes(),
        // 100,000 Received fields.
        {
            let mut m = Vec::new();
            for i in 0..100_000 {
                m.extend_from_slice(format!("Received: from h{i}.example.org by r{i}.example.org for <dave@example.com>; x\n").as_bytes());
            }
            m.extend_from_slice(b"To: dave@example.com\n\nbody\n");
            m
        },
        // A truncated last message: cut inside its header block.
        b"To: erin@example.com\nSubject: cut he".to_vec(),
    ];
    let mut mbox = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        mbox.extend_from_slice(
            format!("From s@example.org Mon Jan  {} 00:00:00 2001\n", i + 1).as_bytes(),
        );
        mbox.extend_from_slice(m);
        if i + 1 < messages.len() {
            if !m.ends_with(b"\n") {
                mbox.push(b'\n');
            }
            mbox.push(b'\n');
        }
    }
    let input = write(tmp.path(), "damaged.mbox", &mbox);
    let out = tmp.path().join("out");
    Run::split(&input).out(&out).ok();
    let files = all_files(&out);
    assert_eq!(files.len(), messages.len());
    for (i, m) in messages.iter().enumerate() {
        // The writer added a newline to the header-only message before its separator.
        let want: Vec<u8> = if i == 2 {
            [m.as_slice(), b"\n"].concat()
        } else {
            m.clone()
        };
        assert!(
            files.iter().any(|(_, b)| strip_added(b) == want.as_slice()),
            "message {} not delivered intact",
            i + 1
        );
    }
    let folder_of = |needle: &[u8]| {
        files
            .iter()
            .find(|(_, b)| b.windows(needle.len()).any(|w| w == needle))
            .map(|(p, _)| {
                p.iter()
                    .next()
                    .expect("folder")
                    .to_string_lossy()
                    .into_owned()
            })
    };
    assert_eq!(folder_of(b"\xff\xfe").as_deref(), Some("alice"));
    assert_eq!(folder_of(b"only a body").as_deref(), Some("_unassigned"));
    assert_eq!(folder_of(b"X-Long:").as_deref(), Some("carol"));
    assert_eq!(folder_of(b"cut he").as_deref(), Some("erin"));
}

#[test]
fn a_single_200_mb_message_is_delivered_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let input = tmp.path().join("big.mbox");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(fs::File::create(&input).expect("create"));
        f.write_all(
            b"From s@example.org Mon Jan  1 00:00:00 2001\nTo: alice@example.com\nSubject: big\n\n",
        )
        .expect("write");
        let line = [b'A'; 76];
        for _ in 0..(200 << 20) / 77 {
            f.write_all(&line).expect("write");
            f.write_all(b"\n").expect("write");
        }
    }
    let out = tmp.path().join("out");
    Run::split(&input).out(&out).ok();
    let cur = out.join("alice/cur");
    let entries: Vec<_> = fs::read_dir(&cur)
        .expect("cur")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1);
    let src = fs::read(&input).expect("read");
    let body_at = src.iter().position(|&b| b == b'\n').expect("line") + 1;
    let got = fs::read(&entries[0]).expect("read");
    assert!(got.len() > 200 << 20);
    assert!(strip_added(&got) == &src[body_at..]);
}

#[test]
fn mboxcl2_content_length_and_lying_lengths() {
    let tmp = tempfile::tempdir().expect("tmp");
    let body = "Forwarded below, never quoted:\n\nFrom x@example.org Mon Jan  1 00:00:00 2001\nTo: mallory@example.com\n\nnot a message\n";
    let mbox = format!(
        "From a@example.org Mon Jan  1 00:00:00 2001\nTo: alice@example.com\nContent-Length: {}\n\n{body}\nFrom b@example.org Tue Jan  2 00:00:00 2001\nTo: bob@example.com\nContent-Length: 9999\n\nshort\n\nFrom c@example.org Wed Jan  3 00:00:00 2001\nTo: carol@example.com\n\nlast\n",
        body.len()
    );
    let input = write(tmp.path(), "cl.mbox", mbox.as_bytes());
    let out = tmp.path().join("out");
    let report = tmp.path().join("r.jsonl");
    let res = Run::split(&input)
        .out(&out)
        .args(&["--report", report.to_str().expect("utf8")])
        .output();
    assert!(res.status.success());
    let tree = read_tree(&out);
    assert!(
        !tree.contains_key("mallory"),
        "an unquoted From line inside a Content-Length body split the message"
    );
    assert!(String::from_utf8_lossy(&tree["alice"][0].bytes).ends_with("not a message\n"));
    assert!(tree.contains_key("bob") && tree.contains_key("carol"));
    let rows = report_rows(&report);
    assert_eq!(rows.len(), 3);
    assert!(
        rows[1]["split_note"]
            .as_str()
            .expect("note")
            .contains("Content-Length")
    );
    assert!(
        String::from_utf8_lossy(&res.stdout)
            .contains("1 message was split from its neighbours with doubt")
    );
}

#[test]
fn addresses_built_to_escape_the_output_stay_inside_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let locals = [
        "\"../../escape\"",
        "\"/etc/passwd\"",
        "\"a\u{0}b\"",
        &"l".repeat(300),
        "Alice",
        "alice",
        "\".\"",
        "\"..\"",
        "_unassigned",
        "_duplicates",
        "\"x/../../y\"",
    ];
    let mut mbox = String::new();
    for (i, l) in locals.iter().enumerate() {
        mbox.push_str(&format!("From s@example.org Mon Jan  1 00:00:{i:02} 2001\nX-Original-To: {l}@example.com\nMessage-ID: <{i}@x>\n\nbody {i}\n\n"));
    }
    let input = write(tmp.path(), "evil.mbox", mbox.as_bytes());
    let out = tmp.path().join("box").join("out");
    Run::split(&input).out(&out).ok();
    // Nothing beside the output folder, nothing but plain folders inside it.
    let siblings: Vec<_> = fs::read_dir(tmp.path().join("box"))
        .expect("list")
        .map(|e| e.expect("e").file_name())
        .collect();
    assert_eq!(siblings, vec![std::ffi::OsString::from("out")]);
    for e in fs::read_dir(&out).expect("list") {
        let e = e.expect("entry");
        let name = e.file_name().to_string_lossy().into_owned();
        if name == ".popsplit.lock" {
            // The run's lock, a plain file at the top.
            assert!(e.file_type().expect("type").is_file());
            continue;
        }
        assert!(e.file_type().expect("type").is_dir(), "{name}");
        assert!(
            name.len() <= 64 && !name.starts_with('.') && !name.contains('/'),
            "{name}"
        );
        assert!(
            name.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c)),
            "{name}"
        );
    }
    let tree = read_tree(&out);
    assert_eq!(tree.values().map(Vec::len).sum::<usize>(), locals.len());
    // Alice and alice are one user; popsplit's own folders keep their meaning.
    assert_eq!(tree["alice"].len(), 2);
    let changed = |stem: &str| {
        let (_, files) = tree
            .iter()
            .find(|(k, _)| k.starts_with(&format!("{stem}-")))
            .expect(stem);
        files.len()
    };
    assert!(changed("u_unassigned") == 1 && changed("u_duplicates") == 1);
}

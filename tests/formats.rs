//! End-to-end: the same shared mailbox exported every way an admin meets it (mbox, gzip'd,
//! xz'd, bzip2'd or zstd'd mbox, Maildir, a tree of .eml files, a Thunderbird profile
//! folder) lands the same way.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;

use common::*;

/// Message-ID → sorted folders, from an output tree.
fn destinations(out: &Path) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (folder, files) in read_tree(out) {
        for d in files {
            m.entry(d.header("Message-ID").unwrap_or_default())
                .or_default()
                .push(folder.clone());
        }
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

fn expected_destinations() -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in expected() {
        m.entry(e.message_id.clone())
            .or_default()
            .extend(e.folders.iter().cloned());
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

fn sample_messages() -> Vec<(String, Vec<u8>)> {
    naive_messages(&fs::read(sample("shared-pop.mbox")).expect("mbox"), "2019")
}

#[test]
fn gzip_mbox_lands_like_the_plain_one() {
    let tmp = tempfile::tempdir().expect("tmp");
    let gz = tmp.path().join("shared-pop.mbox.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).expect("create"),
        flate2::Compression::default(),
    );
    enc.write_all(&fs::read(sample("shared-pop.mbox")).expect("mbox"))
        .expect("write");
    enc.finish().expect("finish");
    Run::split(&gz).office().out(&tmp.path().join("out")).ok();
    assert_eq!(
        destinations(&tmp.path().join("out")),
        expected_destinations()
    );
}

#[test]
fn maildir_input_keeps_its_flags_and_arrival_times() {
    let tmp = tempfile::tempdir().expect("tmp");
    let md = tmp.path().join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    for (i, (_, m)) in sample_messages().iter().enumerate() {
        let p = if i % 2 == 0 {
            md.join(format!("cur/{:04}.M1P1.oldhost:2,FS", i))
        } else {
            md.join(format!("new/{:04}.M1P1.oldhost", i))
        };
        fs::write(&p, m).expect("write");
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000 + i as u64);
        fs::File::options()
            .write(true)
            .open(&p)
            .expect("open")
            .set_modified(t)
            .expect("mtime");
    }
    let out = tmp.path().join("out");
    Run::split(&md).office().out(&out).ok();
    assert_eq!(destinations(&out), expected_destinations());
    // Flags from the file names are carried over, and the file mtimes are the arrival times.
    let tree = read_tree(&out);
    let first = tree["alice"]
        .iter()
        .find(|d| d.header("Message-ID").as_deref() == Some("<s01@supplier.example.org>"))
        .expect("s01");
    assert!(first.info().starts_with("FS"), "{}", first.name);
    assert_eq!(first.mtime, 1_000_000_000);
}

#[test]
fn eml_tree_and_thunderbird_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let emls = tmp.path().join("export");
    for (i, (_, m)) in sample_messages().iter().enumerate() {
        let dir = emls.join(format!("folder{}", i % 3));
        fs::create_dir_all(&dir).expect("mkdir");
        fs::write(dir.join(format!("{i:04}.eml")), m).expect("write");
    }
    // Flattened: its folders kept are tests/folders.rs's.
    Run::split(&emls)
        .office()
        .out(&tmp.path().join("out-eml"))
        .args(&["--flatten"])
        .ok();
    assert_eq!(
        destinations(&tmp.path().join("out-eml")),
        expected_destinations()
    );
    // No separator line and a file time that only says when it was saved: a copy is
    // dated by its Date field (Fri, 1 Mar 2019 08:59:50 +0000).
    let s01 = read_tree(&tmp.path().join("out-eml"))["alice"]
        .iter()
        .find(|d| d.header("Message-ID").as_deref() == Some("<s01@supplier.example.org>"))
        .expect("s01")
        .mtime;
    assert_eq!(s01, 1_551_430_790);

    // Thunderbird: Inbox holds half of the messages, Inbox.sbd/Archive the rest, with .msf files.
    let profile = tmp.path().join("Local Folders");
    fs::create_dir_all(profile.join("Inbox.sbd")).expect("mkdir");
    let mbox = fs::read(sample("shared-pop.mbox")).expect("mbox");
    let cut = String::from_utf8_lossy(&mbox)
        .find("From list-bounces@lists.example.org Thu Mar  7 08:00:00 2019")
        .expect("cut");
    fs::write(profile.join("Inbox"), &mbox[..cut]).expect("write");
    fs::write(
        profile.join("Inbox.msf"),
        b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n",
    )
    .expect("write");
    fs::write(profile.join("Inbox.sbd/Archive"), &mbox[cut..]).expect("write");
    fs::write(
        profile.join("Inbox.sbd/Archive.msf"),
        b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n",
    )
    .expect("write");
    // Flattened, the profile lands as the one mbox does (its folders kept: tests/folders.rs).
    Run::split(&profile)
        .office()
        .out(&tmp.path().join("out-tb"))
        .args(&["--flatten"])
        .ok();
    assert_eq!(
        destinations(&tmp.path().join("out-tb")),
        expected_destinations()
    );
}

#[test]
fn format_option_overrides_detection() {
    let tmp = tempfile::tempdir().expect("tmp");
    let odd = tmp.path().join("mail.dat");
    fs::copy(sample("shared-pop.mbox"), &odd).expect("copy");
    Run::split(&odd)
        .office()
        .out(&tmp.path().join("out"))
        .args(&["--input-format", "mbox"])
        .ok();
    assert_eq!(
        destinations(&tmp.path().join("out")),
        expected_destinations()
    );
    let res = Run::split(&odd)
        .out(Path::new("x"))
        .args(&["--input-format", "gzip"])
        .output();
    assert_eq!(res.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&res.stderr).contains("mail.dat"));
}

/// Past 64 MB inflated, a compressed input is split and learned from while it inflates, its
/// temporary file is written out as it grows (every 32 MB) and given back batch by batch
/// as it is delivered: the output is still the plain file's, byte for byte.
#[test]
fn a_large_gzip_input_lands_like_the_plain_one() {
    use synth::{Spec, Style, directory_csv, generate};
    let tmp = tempfile::tempdir().expect("tmp");
    let mut plain = Vec::new();
    generate(
        &Spec {
            style: Style::Postfix,
            messages: 1_700,
            seed: 5,
            per_recipient_copies: true,
            body_bytes: 40_000,
        },
        &mut plain,
    )
    .expect("generate");
    assert!(
        plain.len() > 70 << 20,
        "{} bytes: too small to look early",
        plain.len()
    );
    let mbox = tmp.path().join("box.mbox");
    fs::write(&mbox, &plain).expect("write");
    let gz = tmp.path().join("box.mbox.gz");
    let mut enc = flate2::write::GzEncoder::new(
        fs::File::create(&gz).expect("create"),
        flate2::Compression::fast(),
    );
    enc.write_all(&plain).expect("write");
    enc.finish().expect("finish");
    drop(plain);
    let dir = tmp.path().join("directory.csv");
    fs::write(&dir, directory_csv()).expect("dir");
    let run = |input: &Path, name: &str| {
        let out = tmp.path().join(name);
        let report = tmp.path().join(format!("{name}.jsonl"));
        Run::split(input)
            .directory(&dir)
            .out(&out)
            .args(&["--report", report.to_str().expect("utf8")])
            .ok();
        (all_files(&out), report_rows(&report))
    };
    let (plain_files, plain_rows) = run(&mbox, "plain");
    let (gz_files, gz_rows) = run(&gz, "gz");
    // Copies set aside as duplicates name their source in their key and header.
    let kept = |files: Vec<(std::path::PathBuf, Vec<u8>)>| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        files
            .into_iter()
            .filter(|(p, _)| !p.starts_with("_duplicates"))
            .collect()
    };
    let plain_count = plain_files.len();
    assert_eq!(gz_files.len(), plain_count);
    assert!(plain_count > 1_700, "{plain_count} files");
    assert!(kept(gz_files) == kept(plain_files), "gzip output differs");
    let sourceless = |rows: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        rows.into_iter()
            .filter(|r| r["delivered_to"][0] != "_duplicates")
            .map(|mut r| {
                r["source"] = serde_json::Value::Null;
                r
            })
            .collect()
    };
    assert_eq!(gz_rows.len(), plain_rows.len());
    assert!(
        sourceless(gz_rows) == sourceless(plain_rows),
        "reports differ"
    );
}

/// The sample mailbox compressed by `program` (`xz`, `bzip2`, `zstd`) into `dir`.
fn compressed_sample(program: &str, dir: &Path) -> std::path::PathBuf {
    let packed = dir.join(format!("shared-pop.mbox.{program}"));
    let status = std::process::Command::new(program)
        .arg("-c")
        .stdin(fs::File::open(sample("shared-pop.mbox")).expect("sample"))
        .stdout(fs::File::create(&packed).expect("create"))
        .status()
        .expect("compress");
    assert!(status.success(), "{program}");
    packed
}

#[test]
fn xz_bzip2_and_zstd_mboxes_land_like_the_plain_one() {
    let mut ran = 0;
    for (program, package) in [("xz", "xz-utils"), ("bzip2", "bzip2"), ("zstd", "zstd")] {
        if !tool_present(program, "--version", package) {
            continue;
        }
        let tmp = tempfile::tempdir().expect("tmp");
        let packed = compressed_sample(program, tmp.path());
        // Named on the command line, and found in a folder (where the file is a folder of
        // the shared box, `.shared-pop`: flattened to compare).
        for input in [packed.as_path(), tmp.path()] {
            let out = tempfile::tempdir().expect("out");
            let flat: &[&str] = if input.is_dir() { &["--flatten"] } else { &[] };
            Run::split(input).office().out(out.path()).args(flat).ok();
            assert_eq!(
                destinations(out.path()),
                expected_destinations(),
                "{program}"
            );
        }
        // A truncated archive is an error, not a shorter mailbox.
        let bytes = fs::read(&packed).expect("read");
        let cut = tmp.path().join(format!("cut.{program}"));
        fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
        let res = Run::split(&cut)
            .office()
            .out(&tmp.path().join("cut-out"))
            .output();
        assert_eq!(res.status.code(), Some(1), "{program}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains(&format!("{program} stream unreadable after"))
                && err.contains("truncated or damaged"),
            "{err}"
        );
        // Without the program, the package to install is named.
        let empty = tmp.path().join("bin");
        fs::create_dir(&empty).expect("mkdir");
        let res = Run::new(&[
            "split",
            packed.to_str().expect("utf8"),
            "-d",
            "example.com",
            "-o",
            tmp.path().join("no-tool").to_str().expect("utf8"),
        ])
        .env("PATH", &empty)
        .output();
        assert_eq!(res.status.code(), Some(1), "{program}");
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains(&format!("compressed with {program}"))
                && err.contains(&format!("apt-get install {package}")),
            "{err}"
        );
        ran += 1;
    }
    if ran == 0 {
        skipped("none of xz, bzip2, zstd is installed");
    }
}

//! End-to-end: an Outlook PST read through readpst, every folder of it; without readpst,
//! refused with the package to install; archives of several files (zip, 7-Zip, tar)
//! refused with the command that unpacks them. Neither is ever skipped inside an input
//! folder. (xz, bzip2 and zstd mboxes are read: tests/formats.rs.)

mod common;

use std::fs;
use std::path::Path;

use common::*;

/// `split INPUT --domain xp.local --out OUT --report REPORT`.
fn split_outlook(input: &Path, out: &Path, report: &Path) -> Run {
    Run::split(input)
        .domain("xp.local")
        .out(out)
        .args(&["--report", report.to_str().expect("utf8")])
}

#[test]
fn a_pst_is_read_through_readpst_every_folder_also_inside_a_folder() {
    if !tool_present("readpst", "-V", "pst-utils") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    // The export folder apart from --out and the report: an output inside an input is
    // refused.
    let export = tmp.path().join("export");
    fs::create_dir(&export).expect("mkdir");
    let pst = test_data("Outlook.pst.gz", &export, "Outlook.pst");
    for (input, prefix) in [
        (pst.clone(), pst.display().to_string()),
        (export.clone(), pst.display().to_string()),
    ] {
        let out = tmp.path().join("out");
        let report = tmp.path().join("report.jsonl");
        let stdout = split_outlook(&input, &out, &report).ok();
        assert!(stdout.contains("messages read: 14 ="), "{stdout}");
        let rows = report_rows(&report);
        let from = |folder: &str| {
            rows.iter()
                .filter(|r| r["source"] == format!("{prefix}/Outlook/{folder}/mbox"))
                .count()
        };
        assert_eq!((from("Inbox"), from("Sent Items")), (8, 6), "{rows:?}");
        assert_eq!(read_tree(&out)["saqib.razzaq"].len(), 8);
        // The PST's top folder and its Inbox are each user's INBOX; Sent Items is the
        // user's Maildir++ folder `.Sent Items`.
        for r in &rows {
            let sent = r["source"] == format!("{prefix}/Outlook/Sent Items/mbox");
            for to in r["delivered_to"].as_array().expect("delivered_to") {
                let to = to.as_str().expect("str");
                assert_eq!(to.ends_with("/.Sent Items"), sent, "{r}");
                assert_eq!(to.contains('/'), sent, "{r}");
            }
            for f in r["files"].as_array().expect("files") {
                assert!(out.join(f.as_str().expect("str")).is_file(), "{r}");
            }
        }
        fs::remove_dir_all(&out).expect("rm");
    }
}

#[test]
fn a_pst_without_readpst_is_refused_with_the_package_to_install() {
    let tmp = tempfile::tempdir().expect("tmp");
    let empty_path = tmp.path().join("bin");
    fs::create_dir(&empty_path).expect("mkdir");
    let folder = tmp.path().join("export");
    fs::create_dir(&folder).expect("mkdir");
    fs::write(
        folder.join("inbox"),
        b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nbody\n",
    )
    .expect("write");
    // Only the signature matters: readpst is never reached.
    let pst = folder.join("archive.ost");
    fs::write(&pst, b"!BDN\0\0\0\0").expect("write");
    for input in [&pst, &folder] {
        let out = tmp.path().join("out");
        let res = split_outlook(input, &out, &tmp.path().join("r.jsonl"))
            .env("PATH", &empty_path)
            .output();
        assert_eq!(res.status.code(), Some(1));
        let err = String::from_utf8_lossy(&res.stderr);
        assert!(
            err.contains("archive.ost: an Outlook PST/OST file")
                && err.contains("apt-get install pst-utils")
                && err.contains("readpst -r -o FOLDER"),
            "{err}"
        );
        assert!(!out.exists(), "a refused run created --out");
    }
}

#[test]
fn zip_7z_and_tar_archives_are_refused_with_the_command_that_unpacks_them() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut tar = vec![0u8; 512];
    tar[257..262].copy_from_slice(b"ustar");
    let archives: [(&str, Vec<u8>, &str); 3] = [
        (
            "export.zip",
            b"PK\x03\x04\x14\0\0\0\x08\0".to_vec(),
            "unzip ",
        ),
        (
            "export.7z",
            b"7z\xbc\xaf\x27\x1c\0\x04".to_vec(),
            "7z x -oFOLDER ",
        ),
        ("maildir.tar", tar, "mkdir FOLDER && tar -xf "),
    ];
    for (name, bytes, command) in archives {
        let folder = tmp.path().join(format!("in-{name}"));
        fs::create_dir(&folder).expect("mkdir");
        fs::write(
            folder.join("inbox"),
            b"From a@x Mon Jan  1 00:00:00 2001\nSubject: a\n\nbody\n",
        )
        .expect("write");
        let file = folder.join(name);
        fs::write(&file, bytes).expect("write");
        // Named on the command line, or found in a folder: refused either way.
        for input in [&file, &folder] {
            let out = tmp.path().join("out");
            let res = Run::split(input).out(&out).output();
            assert_eq!(res.status.code(), Some(1), "{name}");
            let err = String::from_utf8_lossy(&res.stderr);
            assert!(
                err.contains(&format!("{name}: a"))
                    && err.contains("which popsplit does not unpack")
                    && err.contains(&format!("`{command}")),
                "{name}: {err}"
            );
            assert!(!out.exists(), "{name}: a refused run created --out");
        }
    }
}

//! End-to-end: the shared box's folders kept under each user. A Thunderbird profile and a
//! Maildir++ box with subfolders, split by the real binary: each user's Maildir++ folder
//! (`.Archive`, `.Archive.2019`, …) holds the messages of that source folder, `--flatten`
//! puts them all in INBOX, a rerun adds nothing, and the same message filed in two
//! folders is kept in both (once when flattened).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use common::*;

/// The sample's messages by their index in expected.csv (1-based): (From line, message).
fn messages() -> Vec<(String, Vec<u8>)> {
    let mbox = fs::read(sample("shared-pop.mbox")).expect("mbox");
    let msgs = naive_messages(&mbox, "2019");
    assert_eq!(msgs.len(), expected().len(), "the sample's message count");
    msgs
}

/// An mboxrd file of the messages `which` (1-based indexes).
fn mbox_of(msgs: &[(String, Vec<u8>)], which: &[usize]) -> Vec<u8> {
    let mut out = Vec::new();
    for &i in which {
        let (from, body) = &msgs[i - 1];
        out.extend_from_slice(from.as_bytes());
        out.push(b'\n');
        for line in body.split_inclusive(|&b| b == b'\n') {
            let gts = line.iter().take_while(|&&b| b == b'>').count();
            if line[gts..].starts_with(b"From ") {
                out.push(b'>');
            }
            out.extend_from_slice(line);
        }
        out.push(b'\n');
    }
    out
}

/// Message-IDs of the copies in one Maildir folder (`cur/` and `new/`), counted.
fn ids_in(maildir: &Path) -> BTreeMap<String, usize> {
    let mut ids = BTreeMap::new();
    for sub in ["cur", "new"] {
        let Ok(dir) = fs::read_dir(maildir.join(sub)) else {
            continue;
        };
        for f in dir {
            let text = fs::read(f.expect("entry").path()).expect("read");
            let text = String::from_utf8_lossy(&text);
            let id = text
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .expect("Message-ID")
                .trim()
                .to_string();
            *ids.entry(id).or_default() += 1;
        }
    }
    ids
}

/// Every Maildir++ subfolder of `out`'s Maildirs, as `user/.Folder`.
fn subfolders(out: &Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for user in fs::read_dir(out).expect("out") {
        let user = user.expect("entry");
        if !user.file_type().expect("type").is_dir() {
            continue;
        }
        for sub in fs::read_dir(user.path()).expect("user") {
            let name = sub
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned();
            if name.starts_with('.') {
                found.insert(format!("{}/{name}", user.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Where each message goes in the profile of [`thunderbird_profile`]: (folders on disk
/// of Thunderbird, Maildir++ folder), with message 1 filed twice.
const LAYOUT: [(&str, &str, &[usize]); 5] = [
    ("Inbox", "", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
    (
        "Inbox.sbd/Archive",
        ".Archive",
        &[13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 1],
    ),
    (
        "Inbox.sbd/Archive.sbd/2019",
        ".Archive.2019",
        &[25, 26, 27, 28, 29, 30],
    ),
    ("Rechnungen Ä", ".Rechnungen &AMQ-", &[31, 32]),
    ("Rechnungen Ä.sbd/v1.2", ".Rechnungen &AMQ-.v1_2", &[33, 34]),
];

/// A Thunderbird "Local Folders" with the sample's messages in the folders of [`LAYOUT`],
/// each with its `.msf` index beside it.
fn thunderbird_profile(dir: &Path) -> std::path::PathBuf {
    let msgs = messages();
    let profile = dir.join("Local Folders");
    for (path, _, which) in LAYOUT {
        let file = profile.join(path);
        fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
        fs::write(&file, mbox_of(&msgs, which)).expect("write");
        fs::write(
            file.with_file_name(format!(
                "{}.msf",
                file.file_name().expect("name").to_string_lossy()
            )),
            b"// <!-- <mdb:mork:z v=\"1.4\"/> -->\n",
        )
        .expect("msf");
    }
    profile
}

/// What each user's folder must hold when the folders are kept: Message-IDs counted.
fn kept_layout() -> BTreeMap<String, BTreeMap<String, usize>> {
    let expected = expected();
    let mut want: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (_, folder, which) in LAYOUT {
        for &i in which {
            let e = &expected[i - 1];
            for user in &e.folders {
                let at = match folder {
                    "" => user.clone(),
                    f => format!("{user}/{f}"),
                };
                *want
                    .entry(at)
                    .or_default()
                    .entry(e.message_id.clone())
                    .or_default() += 1;
            }
        }
    }
    want
}

/// What the output holds, folder by folder, in the same form as [`kept_layout`].
fn held(out: &Path) -> BTreeMap<String, BTreeMap<String, usize>> {
    let mut held = BTreeMap::new();
    for user in read_tree(out).keys() {
        let ids = ids_in(&out.join(user));
        if !ids.is_empty() {
            held.insert(user.clone(), ids);
        }
    }
    for sub in subfolders(out) {
        let ids = ids_in(&out.join(&sub));
        if !ids.is_empty() {
            held.insert(sub, ids);
        }
    }
    held
}

/// Asserts that each sample message of `layout` (folder, 1-based indexes) is in that
/// Maildir++ folder of every user expected.csv gives it.
fn each_in_its_folder(out: &Path, layout: &[(&str, &[usize])]) {
    let expected = expected();
    for (folder, which) in layout {
        for &i in *which {
            let e = &expected[i - 1];
            for user in &e.folders {
                let at = out.join(user).join(folder);
                assert!(
                    ids_in(&at).contains_key(&e.message_id),
                    "{} not in {}",
                    e.message_id,
                    at.display()
                );
            }
        }
    }
}

#[test]
fn a_thunderbird_profile_keeps_its_folders_under_each_user() {
    let tmp = tempfile::tempdir().expect("tmp");
    let profile = thunderbird_profile(tmp.path());
    let out = tmp.path().join("out");
    let report = tmp.path().join("report.jsonl");
    let report = report.to_str().expect("utf-8");
    Run::split(&profile)
        .office()
        .out(&out)
        .args(&["--report", report])
        .ok();

    // The duplicate the sample holds (18 of 17, both in Archive) is set aside in
    // `_duplicates/.Archive`: the duplicates folder keeps the folders too.
    let want = kept_layout();
    assert!(want.contains_key("_duplicates/.Archive"), "{want:?}");
    assert_eq!(
        want["alice/.Archive"].get("<s01@supplier.example.org>"),
        Some(&1)
    );
    assert_eq!(held(&out), want);
    // Message 1 filed in Inbox and in Archive: alice has it in both.
    assert!(held(&out)["alice"].contains_key("<s01@supplier.example.org>"));

    // A Maildir++ subfolder is private and marked as such.
    use std::os::unix::fs::PermissionsExt;
    let archive = out.join("alice/.Archive");
    let mode = |p: &Path| fs::metadata(p).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode(&archive), 0o700);
    assert_eq!(mode(&archive.join("cur")), 0o700);
    assert!(archive.join("maildirfolder").is_file());
    for f in fs::read_dir(archive.join("cur")).expect("cur") {
        assert_eq!(mode(&f.expect("entry").path()), 0o600);
    }
    assert!(!keyword_letters(&archive).is_empty());

    // The report names each copy's folder, and its files are there.
    let rows = report_rows(Path::new(report));
    let row = rows
        .iter()
        .find(|r| {
            r["source"]
                .as_str()
                .is_some_and(|s| s.ends_with("Archive.sbd/2019"))
        })
        .expect("a row of Archive/2019");
    for to in row["delivered_to"].as_array().expect("delivered_to") {
        assert!(
            to.as_str().expect("str").ends_with("/.Archive.2019"),
            "{row}"
        );
    }
    for f in row["files"].as_array().expect("files") {
        let f = f.as_str().expect("str");
        assert!(
            f.contains("/.Archive.2019/cur/") && out.join(f).is_file(),
            "{f}"
        );
    }

    // `_duplicates` holds mail only in its `.Archive`, and is a whole Maildir all the
    // same: handed over as a login like every other folder.
    assert!(ids_in(&out.join("_duplicates")).is_empty());
    assert!(out.join("_duplicates/cur").is_dir());
    let handover = tmp.path().join("handover");
    Run::new(&[
        "handover",
        out.to_str().expect("utf-8"),
        "--to",
        handover.to_str().expect("utf-8"),
        "--domain",
        "example.com",
    ])
    .ok();
    let passwd = fs::read_to_string(handover.join("passwd")).expect("passwd");
    let logins: Vec<&str> = passwd.lines().filter_map(|l| l.split(':').next()).collect();
    assert_eq!(
        logins,
        [
            "_duplicates",
            "_unassigned",
            "alice",
            "bob",
            "carol",
            "dave"
        ]
    );

    // A rerun finds every copy where it is.
    let before = all_files(&out);
    let again = Run::split(&profile).office().out(&out).ok();
    assert!(again.contains("0 copies written"), "{again}");
    assert_eq!(all_files(&out), before);
}

#[test]
fn flatten_puts_every_folder_in_inbox_and_keeps_one_copy_of_a_message_filed_twice() {
    let tmp = tempfile::tempdir().expect("tmp");
    let profile = thunderbird_profile(tmp.path());
    let flat = tmp.path().join("flat");
    let said = Run::split(&profile)
        .office()
        .out(&flat)
        .args(&["--flatten"])
        .ok();
    assert!(subfolders(&flat).is_empty(), "{:?}", subfolders(&flat));
    // As the sample in one mbox, but for message 1's second copy, set aside.
    let mut want: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for (at, ids) in kept_layout() {
        let user = at.split('/').next().expect("user").to_string();
        for (id, n) in ids {
            *want.entry(user.clone()).or_default().entry(id).or_default() += n;
        }
    }
    let alice = want.get_mut("alice").expect("alice");
    alice.insert("<s01@supplier.example.org>".into(), 1);
    *want
        .get_mut("_duplicates")
        .expect("duplicates")
        .entry("<s01@supplier.example.org>".into())
        .or_default() += 1;
    assert_eq!(held(&flat), want);
    assert!(said.contains("2 duplicates set aside"), "{said}");

    let again = Run::split(&profile)
        .office()
        .out(&flat)
        .args(&["--flatten"])
        .ok();
    assert!(again.contains("0 copies written"), "{again}");
}

#[test]
fn a_maildir_plus_plus_box_keeps_its_subfolders() {
    let tmp = tempfile::tempdir().expect("tmp");
    let msgs = messages();
    let input = tmp.path().join("Maildir");
    let layout: [(&str, &[usize]); 4] = [
        ("", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
        (".Invoices", &[11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]),
        (".Archive.2019", &[22, 23, 24, 25, 26, 27, 28]),
        (".Rechnungen &AMQ-", &[29, 30, 31, 32, 33, 34]),
    ];
    for (folder, which) in layout {
        let cur = input.join(folder).join("cur");
        fs::create_dir_all(&cur).expect("mkdir");
        fs::create_dir_all(input.join(folder).join("new")).expect("mkdir");
        for &i in which {
            fs::write(cur.join(format!("{i:04}.host:2,")), &msgs[i - 1].1).expect("write");
        }
    }
    let out = tmp.path().join("out");
    Run::split(&input).office().out(&out).ok();
    each_in_its_folder(&out, &layout);
    let subs = subfolders(&out);
    for want in [
        "bob/.Invoices",
        "alice/.Archive.2019",
        "dave/.Rechnungen &AMQ-",
    ] {
        assert!(subs.contains(want), "{subs:?}");
    }
    let again = Run::split(&input).office().out(&out).ok();
    assert!(again.contains("0 copies written"), "{again}");
}

#[test]
fn a_single_mbox_and_mbox_output_stay_flat() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    Run::split(&sample("shared-pop.mbox"))
        .office()
        .out(&out)
        .ok();
    assert!(subfolders(&out).is_empty());

    // mbox output has one file per user, whatever the folders.
    let profile = thunderbird_profile(tmp.path());
    let mboxes = tmp.path().join("mboxes");
    Run::split(&profile)
        .office()
        .out(&mboxes)
        .args(&["--output-format", "mbox"])
        .ok();
    let mut names: Vec<String> = fs::read_dir(&mboxes)
        .expect("out")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "_duplicates.mbox",
            "_unassigned.mbox",
            "alice.mbox",
            "bob.mbox",
            "carol.mbox",
            "dave.mbox"
        ]
    );
}

#[test]
fn a_rerun_with_another_directory_moves_copies_within_their_folder() {
    let tmp = tempfile::tempdir().expect("tmp");
    let profile = thunderbird_profile(tmp.path());
    let out = tmp.path().join("out");
    Run::split(&profile).office().out(&out).ok();
    let bob = held(&out)
        .into_iter()
        .filter(|(at, _)| at == "bob" || at.starts_with("bob/"))
        .collect::<BTreeMap<_, _>>();
    assert!(bob.contains_key("bob/.Archive"), "{bob:?}");

    // bob is robert now: his copies move to robert's folder of the same name.
    let directory = tmp.path().join("directory.csv");
    let csv = fs::read_to_string(sample("directory.csv")).expect("csv");
    fs::write(&directory, csv.replace(",bob", ",robert")).expect("write");
    let said = Run::split(&profile).directory(&directory).out(&out).ok();
    let moved: usize = bob.values().flat_map(|ids| ids.values()).sum();
    assert!(
        said.contains(&format!("{moved} moved to their folder")),
        "{said}"
    );
    let now = held(&out);
    for (at, ids) in &bob {
        let to = at.replacen("bob", "robert", 1);
        assert_eq!(now.get(&to), Some(ids), "{to}");
        assert!(!now.contains_key(at), "{at} still holds copies");
    }
    // The same message in Inbox and Archive stays in both folders.
    assert!(now["alice"].contains_key("<s01@supplier.example.org>"));
    assert!(now["alice/.Archive"].contains_key("<s01@supplier.example.org>"));
    let again = Run::split(&profile).directory(&directory).out(&out).ok();
    assert!(again.contains("0 copies written"), "{again}");
}

#[test]
fn explain_names_the_folder_of_a_message() {
    let tmp = tempfile::tempdir().expect("tmp");
    let profile = thunderbird_profile(tmp.path());
    let which = format!("{}:1", profile.join("Inbox.sbd/Archive.sbd/2019").display());
    let said = Run::new(&[
        "explain",
        profile.to_str().expect("utf-8"),
        &which,
        "--domain",
        "example.com",
        "--directory",
        sample("directory.csv").to_str().expect("utf-8"),
    ])
    .ok();
    assert!(
        said.contains("folder: Archive/2019 (`.Archive.2019` in each Maildir"),
        "{said}"
    );
}

#[test]
fn a_folder_planted_as_a_link_is_not_followed() {
    let tmp = tempfile::tempdir().expect("tmp");
    let profile = thunderbird_profile(tmp.path());
    let out = tmp.path().join("out");
    let victim = tmp.path().join("victim");
    fs::create_dir_all(out.join("alice")).expect("mkdir");
    fs::create_dir_all(&victim).expect("mkdir");
    std::os::unix::fs::symlink(&victim, out.join("alice/.Archive")).expect("symlink");
    let res = Run::split(&profile).office().out(&out).output();
    assert!(
        !res.status.success(),
        "a run through a planted link succeeded"
    );
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("alice/.Archive"), "{err}");
    assert_eq!(fs::read_dir(&victim).expect("victim").count(), 0);
}

#[test]
fn a_rerun_that_keeps_folders_after_a_flat_run_moves_the_copies_into_them() {
    let tmp = tempfile::tempdir().expect("tmp");
    let profile = thunderbird_profile(tmp.path());
    let out = tmp.path().join("out");
    Run::split(&profile)
        .office()
        .out(&out)
        .args(&["--flatten"])
        .ok();
    let said = Run::split(&profile).office().out(&out).ok();
    // Every user folder holds what a first run keeping folders gives, no copy twice; the
    // flat run's set-aside copy of the message filed twice stays in _duplicates.
    let users: BTreeMap<_, _> = held(&out)
        .into_iter()
        .filter(|(at, _)| !at.starts_with("_duplicates"))
        .collect();
    let want: BTreeMap<_, _> = kept_layout()
        .into_iter()
        .filter(|(at, _)| !at.starts_with("_duplicates"))
        .collect();
    assert_eq!(users, want, "{said}");
    assert!(said.contains("moved to their folder"), "{said}");
    let again = Run::split(&profile).office().out(&out).ok();
    assert!(again.contains("0 copies written"), "{again}");
}

#[test]
fn an_eml_tree_keeps_its_folders() {
    // A Windows Mail or Outlook Express export: a folder of `.eml` files per mail folder.
    let tmp = tempfile::tempdir().expect("tmp");
    let msgs = messages();
    let input = tmp.path().join("export");
    let layout: [(&str, &str, &[usize]); 3] = [
        ("", "", &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]),
        (
            "Archive",
            ".Archive",
            &[13, 14, 15, 16, 17, 18, 19, 20, 21, 22],
        ),
        (
            "Archive/2019",
            ".Archive.2019",
            &[23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34],
        ),
    ];
    for (dir, _, which) in layout {
        fs::create_dir_all(input.join(dir)).expect("mkdir");
        for &i in which {
            fs::write(input.join(dir).join(format!("{i:04}.eml")), &msgs[i - 1].1).expect("write");
        }
    }
    let out = tmp.path().join("out");
    Run::split(&input).office().out(&out).ok();
    let kept: Vec<(&str, &[usize])> = layout.iter().map(|(_, f, w)| (*f, *w)).collect();
    each_in_its_folder(&out, &kept);
    let flat = tmp.path().join("flat");
    Run::split(&input)
        .office()
        .out(&flat)
        .args(&["--flatten"])
        .ok();
    assert!(subfolders(&flat).is_empty(), "{:?}", subfolders(&flat));
    let again = Run::split(&input).office().out(&out).ok();
    assert!(again.contains("0 copies written"), "{again}");
}

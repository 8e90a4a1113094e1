//! End-to-end: `--format mbox` writes one mboxrd file per folder with the same decisions
//! and added headers, read back here by a different parser (Python's `mailbox`).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::process::Command;

use common::*;

#[test]
fn mbox_output_reads_back_with_another_parser() {
    let tmp = tempfile::tempdir().expect("tmp");
    let out = tmp.path().join("out");
    let mbox = sample("shared-pop.mbox");
    Run::split(&mbox)
        .office()
        .out(&out)
        .args(&["--format", "mbox"])
        .ok();
    let dump = tmp.path().join("dump");
    fs::create_dir(&dump).expect("mkdir");
    let script = r#"
import mailbox, re, sys, os, glob, json
rows = []
for path in sorted(glob.glob(os.path.join(sys.argv[1], '*.mbox'))):
    folder = os.path.basename(path)[:-5]
    for i, k in enumerate(mailbox.mbox(path).keys()):
        msg = mailbox.mbox(path).get_message(k)
        raw = re.sub(rb'(?m)^>(>*From )', rb'\1', mailbox.mbox(path).get_bytes(k))
        name = '%s.%04d' % (folder, i)
        open(os.path.join(sys.argv[2], name), 'wb').write(raw)
        rows.append({'folder': folder, 'file': name, 'from_line': msg.get_from()})
print(json.dumps(rows))
"#;
    let res = Command::new("python3")
        .args(["-c", script])
        .arg(&out)
        .arg(&dump)
        .output()
        .expect("python3");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&res.stdout).expect("json");
    let expected = expected();
    let originals = naive_messages(&fs::read(&mbox).expect("mbox"), "2019");
    let mut per_folder: BTreeMap<String, usize> = BTreeMap::new();
    for row in &rows {
        let folder = row["folder"].as_str().expect("folder").to_string();
        let bytes = fs::read(dump.join(row["file"].as_str().expect("file"))).expect("read");
        let text = String::from_utf8_lossy(&bytes);
        let id = text
            .lines()
            .find_map(|l| l.strip_prefix("Message-ID: "))
            .expect("Message-ID")
            .trim()
            .to_string();
        let e = expected
            .iter()
            .find(|e| e.message_id == id && e.folders.contains(&folder))
            .expect("an expected destination");
        assert!(
            text.starts_with(&format!("X-Popsplit-Confidence: {}", e.confidence)),
            "{folder} {id}"
        );
        // The original message follows popsplit's added fields, byte for byte.
        assert!(
            originals.iter().any(|(_, o)| bytes.ends_with(o)),
            "{folder} {id}: not the original bytes"
        );
        // The From line carries the arrival time.
        let from_line = row["from_line"].as_str().expect("from line");
        let t = popsplit::input::mbox::parse_from_line(format!("From {from_line}").as_bytes())
            .time
            .expect("dated");
        assert_eq!(t, epoch(&e.arrival), "{folder} {id}");
        *per_folder.entry(folder).or_default() += 1;
    }
    let mut want: BTreeMap<String, usize> = BTreeMap::new();
    for e in &expected {
        for f in &e.folders {
            *want.entry(f.clone()).or_default() += 1;
        }
    }
    assert_eq!(per_folder, want);
    assert!(fs::read_dir(&out).expect("out").all(|e| {
        !e.expect("e")
            .file_name()
            .to_string_lossy()
            .ends_with(".partial")
    }));
    // A second run never overwrites the files of the first.
    let again = Run::split(&mbox)
        .out(&out)
        .args(&["--format", "mbox"])
        .output();
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites an mbox"));
}

//! Exactly once under faults: a run killed at random points (SIGKILL), stopped by Ctrl-C
//! or SIGTERM, or stopped by a write error, leaves no partial file in cur/ or new/, and
//! rerunning the same command finishes the job with every copy exactly once.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use common::*;
use synth::{Spec, Style, directory_csv, generate};

/// Every file name under the Maildirs of `out`, checking on the way that none is partial:
/// the `S=` size in each name must be the file's size.
fn names(out: &Path) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for (folder, files) in read_tree(out) {
        for d in files {
            let size: usize = d
                .name
                .split(",S=")
                .nth(1)
                .and_then(|s| s.split(':').next())
                .and_then(|s| s.parse().ok())
                .expect("S= in name");
            assert_eq!(size, d.bytes.len(), "partial file {folder}/{}", d.name);
            all.insert(format!(
                "{folder}/{}",
                d.name.split(':').next().unwrap_or_default()
            ));
        }
    }
    all
}

/// Held by each test for its whole run: the tests time their runs (kills at random
/// points, signals once a report row is out), and another test's writes make those
/// times lie, as every batch's syncfs flushes the whole file system.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Waits for the other tests of this file to finish (a failed one included).
fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// How many files under `out` hold each content (by a hash of their bytes).
fn contents(out: &Path) -> std::collections::BTreeMap<u64, usize> {
    use std::hash::{Hash, Hasher};
    let mut counts = std::collections::BTreeMap::new();
    for d in read_tree(out).into_values().flatten() {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        d.bytes.hash(&mut h);
        *counts.entry(h.finish()).or_default() += 1;
    }
    counts
}

fn tmp_leftovers(out: &Path) -> usize {
    fs::read_dir(out)
        .map(|it| {
            it.filter_map(Result::ok)
                .filter_map(|e| fs::read_dir(e.path().join("tmp")).ok())
                .map(|d| d.count())
                .sum()
        })
        .unwrap_or(0)
}

struct Fixture {
    _tmp: tempfile::TempDir,
    mbox: String,
    dir: String,
    root: std::path::PathBuf,
}

fn fixture(messages: usize, big_message: bool) -> Fixture {
    let tmp = tempfile::tempdir().expect("tmp");
    let mbox = tmp.path().join("box.mbox");
    let mut bytes = Vec::new();
    generate(
        &Spec {
            style: Style::Postfix,
            messages,
            seed: 42,
            per_recipient_copies: true,
            body_bytes: 600,
        },
        &mut bytes,
    )
    .expect("generate");
    if big_message {
        bytes.extend_from_slice(b"From s@org1.example Mon Jan  1 00:00:00 2024\nX-Original-To: alice@example.com\nTo: alice@example.com\nSubject: large\n\n");
        bytes.extend_from_slice(&b"0123456789abcdef\n".repeat(8192));
    }
    fs::write(&mbox, &bytes).expect("write");
    let dir = tmp.path().join("directory.csv");
    fs::write(&dir, directory_csv()).expect("dir");
    let root = tmp.path().to_path_buf();
    Fixture {
        mbox: mbox.to_string_lossy().into_owned(),
        dir: dir.to_string_lossy().into_owned(),
        root,
        _tmp: tmp,
    }
}

impl Fixture {
    fn command(&self, out: &Path) -> Command {
        let mut c = Run::split(Path::new(&self.mbox))
            .domain("example.com")
            .directory(Path::new(&self.dir))
            .out(out)
            .command();
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        c
    }
}

#[test]
fn killed_at_random_points_then_rerun_delivers_exactly_once() {
    let _alone = alone();
    let f = fixture(6000, false);
    let clean = f.root.join("clean");
    let started = Instant::now();
    assert!(f.command(&clean).status().expect("run").success());
    let full = started.elapsed();
    let want = names(&clean);
    assert!(want.len() > 6000);

    let out = f.root.join("crashed");
    let mut seed: u64 = 0x9E37_79B9;
    let mut kills = 0;
    let mut partial_states = BTreeSet::new();
    while kills < 20 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let delay = full.mul_f64((seed >> 33) as f64 / (1u64 << 31) as f64);
        // Commits of two batches (of 1,024 messages) each, so that a kill can land in any
        // of three commits: the default commits these 6,000 messages once, at the end.
        let mut child = f
            .command(&out)
            .args(["--commit-every", "2000"])
            .spawn()
            .expect("spawn");
        std::thread::sleep(delay);
        if child.try_wait().expect("wait").is_none() {
            child.kill().expect("kill");
            kills += 1;
        }
        child.wait().expect("reap");
        // Whatever was killed, what is in cur/ is complete, and nothing is there twice.
        let now = names(&out);
        assert!(
            now.is_subset(&want),
            "a killed run wrote a copy a clean run does not"
        );
        partial_states.insert(now.len());
    }
    assert!(
        partial_states.len() >= 3,
        "the kills all landed at the same point: {partial_states:?}"
    );
    assert!(f.command(&out).status().expect("run").success());
    assert_eq!(names(&out), want);
    assert_eq!(tmp_leftovers(&out), 0);
}

#[test]
fn a_write_error_stops_the_run_and_a_rerun_finishes_it() {
    let _alone = alone();
    // The large message comes last, in the fourth batch (of 1,024 messages): the three
    // before it are written and wait for their commit when writing it fails.
    let f = fixture(3000, true);
    let clean = f.root.join("clean");
    assert!(f.command(&clean).status().expect("run").success());
    let want = names(&clean);

    // A file-size limit makes writing the large message fail as a full disk would.
    let out = f.root.join("limited");
    let script = format!(
        "trap '' XFSZ; ulimit -f 64; exec \"$0\" split '{}' --domain example.com --directory '{}' --out '{}'",
        f.mbox,
        f.dir,
        out.display()
    );
    let res = Command::new("bash")
        .args(["-c", &script, env!("CARGO_BIN_EXE_popsplit")])
        .output()
        .expect("bash");
    assert_eq!(res.status.code(), Some(1));
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("box.mbox: message")
            && err.contains("byte offset")
            && err.contains("Rerun the same command"),
        "{err}"
    );
    assert!(names(&out).is_subset(&want));
    assert!(names(&out).len() < want.len());
    // The batches written before the failure were committed before the run stopped, and
    // the message counts them.
    let landed = names(&out).len();
    assert!(landed >= 3072, "{landed} copies in cur/");
    assert!(
        err.contains(&format!("{landed} copies of 3072 messages were written")),
        "{err}"
    );
    assert!(f.command(&out).status().expect("run").success());
    assert_eq!(names(&out), want);
}

/// Starts a run with a report, `--sync file` (slow enough to be caught mid-way) and a
/// commit per batch, sends it `signal` (`INT`, `TERM`) once the report holds a row, and
/// returns its exit code and stderr.
fn stop_once_reported(
    f: &Fixture,
    out: &Path,
    report: &Path,
    signal: &str,
) -> (Option<i32>, String) {
    // A report left by an earlier run must not pass for this run's first row.
    let _ = fs::remove_file(report);
    let child = f
        .command(out)
        .args(["--sync", "file", "--commit-every", "1000", "--report"])
        .arg(report)
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while fs::metadata(report).map_or(true, |m| m.len() == 0) {
        assert!(
            started.elapsed().as_secs() < 120,
            "no report row within two minutes"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let sent = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("kill");
    assert!(sent.success());
    let res = child.wait_with_output().expect("wait");
    (
        res.status.code(),
        String::from_utf8_lossy(&res.stderr).into_owned(),
    )
}

/// Every line of a report, checking that each is whole JSON and the file ends with a line end.
fn whole_rows(report: &Path) -> usize {
    let text = fs::read_to_string(report).expect("report");
    assert!(text.ends_with('\n'), "the report ends inside a line");
    for line in text.lines() {
        serde_json::from_str::<serde_json::Value>(line).expect("whole JSON line");
    }
    text.lines().count()
}

#[test]
fn ctrl_c_and_sigterm_stop_cleanly_and_a_rerun_finishes_the_job() {
    let _alone = alone();
    // Twelve batches: one in the report when the signal comes, one committing, and enough
    // to come that a fast (release) build is still reading when the signal arrives; with
    // four, it was past its last batch and finished.
    let f = fixture(12000, false);
    let clean = f.root.join("clean");
    let clean_report = f.root.join("clean.jsonl");
    assert!(
        f.command(&clean)
            .arg("--report")
            .arg(&clean_report)
            .status()
            .expect("run")
            .success()
    );
    let (want, rows) = (names(&clean), whole_rows(&clean_report));

    let out = f.root.join("stopped");
    let report = f.root.join("stopped.jsonl");
    for (signal, code, name) in [("INT", 130, "Ctrl-C (SIGINT)"), ("TERM", 143, "SIGTERM")] {
        let (status, err) = stop_once_reported(&f, &out, &report, signal);
        assert_eq!(status, Some(code), "{signal}: {err}");
        assert!(
            err.contains(&format!("popsplit: stopped by {name}: "))
                && err.contains("written, complete and durable; the report lists them")
                && err.contains("Rerun the same command to finish the job"),
            "{err}"
        );
        let now = names(&out);
        assert!(now.is_subset(&want) && now.len() < want.len(), "{signal}");
        let reported = whole_rows(&report);
        assert!(reported > 0 && reported < rows, "{signal}: {reported} rows");
        assert_eq!(tmp_leftovers(&out), 0, "{signal}: files left in tmp/");
    }
    assert!(
        f.command(&out)
            .arg("--report")
            .arg(&report)
            .status()
            .expect("run")
            .success()
    );
    assert_eq!(names(&out), want);
    assert_eq!(whole_rows(&report), rows);
}

/// The field `name` of process `pid`'s status, as the kernel writes it.
fn status_field(pid: u32, name: &str) -> Option<String> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
    Some(line.trim().to_string())
}

/// Whether process `pid` may get transparent huge pages (Linux 5.0 on: THP_enabled in its
/// status); `None` where the kernel does not say.
fn thp_enabled(pid: u32) -> Option<bool> {
    Some(status_field(pid, "THP_enabled")? == "1")
}

/// Whether process `pid` has a handler for signal `number` (Linux: SigCgt in its status).
fn catches(pid: u32, number: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let mask = s.lines().find_map(|l| l.strip_prefix("SigCgt:"))?;
            u64::from_str_radix(mask.trim(), 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (number - 1)) != 0)
}

#[test]
fn ctrl_c_before_anything_is_written_ends_the_run_at_once() {
    let _alone = alone();
    let f = fixture(8000, false);
    let out = f.root.join("early");
    let child = f.command(&out).spawn().expect("spawn");
    let started = Instant::now();
    // SIGINT is 2. The handler is installed just before the first pass starts.
    while !catches(child.id(), 2) {
        assert!(started.elapsed().as_secs() < 30, "no SIGINT handler");
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Asked for at the top of `main`, before the handler: 4 KB pages, not huge ones.
    assert_ne!(thp_enabled(child.id()), Some(true), "huge pages still on");
    // And a descriptor table grown once for the copies waiting for their commit, where
    // the kernel starts a process with 64.
    let table = status_field(child.id(), "FDSize").and_then(|n| n.parse::<usize>().ok());
    assert!(table.is_some_and(|n| n > 256), "{table:?}");
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let res = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(130), "{err}");
    assert!(
        err.contains(
            "stopped by Ctrl-C (SIGINT) before anything was written; rerun the same command"
        ),
        "{err}"
    );
    assert!(!out.exists(), "the stopped run created --out");
}

#[test]
fn killed_while_moving_then_rerun_leaves_every_copy_once_in_its_right_folder() {
    let _alone = alone();
    let f = fixture(3000, false);
    // alice left, and bob takes her mail: a rerun with the new directory moves every copy
    // of hers to bob, or removes it where bob has the message already.
    let moved_dir = f.root.join("bob-takes-over.csv");
    fs::write(&moved_dir, directory_csv().replace(",alice\n", ",bob\n")).expect("dir");
    let rerun = |out: &Path| {
        let mut c = Run::split(Path::new(&f.mbox))
            .domain("example.com")
            .directory(&moved_dir)
            .out(out)
            .command();
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c
    };
    let clean = f.root.join("clean");
    assert!(f.command(&clean).status().expect("run").success());
    let first = names(&clean);
    let out = rerun(&clean).output().expect("run");
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(" moved to their folder"), "{said}");
    let want = names(&clean);
    assert!(!want.iter().any(|n| n.starts_with("alice/")));

    let out = f.root.join("crashed");
    assert!(f.command(&out).status().expect("run").success());
    let before = contents(&out);
    // A move renames: a copy's bytes are never in two places, whenever the run stops.
    let never_twice = |out: &Path| {
        for (content, n) in contents(out) {
            assert!(
                n <= before.get(&content).copied().unwrap_or(0),
                "a copy is there twice"
            );
        }
    };
    let alice = |out: &Path| {
        fs::read_dir(out.join("alice/cur")).map_or(0, |d| d.filter_map(Result::ok).count())
    };
    let mut seed: u64 = 0x51_7CC1_B727_220A;
    let mut kills = 0;
    let mut states = BTreeSet::new();
    while kills < 10 {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // The moves are the last part of a run: watch for the first, then kill the run
        // up to 20 ms later, in the middle of moving.
        let delay = std::time::Duration::from_micros((seed >> 33) % 20_000);
        let before = alice(&out);
        let mut child = rerun(&out).spawn().expect("spawn");
        while alice(&out) == before && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(delay);
        let killed = child.try_wait().expect("wait").is_none();
        if killed {
            child.kill().expect("kill");
            kills += 1;
        }
        child.wait().expect("reap");
        // Every file is one a run before or after the move has, complete.
        let now = names(&out);
        assert!(now.is_subset(&first.union(&want).cloned().collect()));
        never_twice(&out);
        let left = alice(&out);
        states.insert(left);
        if left == 0 {
            // Everything moved: start again from the first run's output.
            fs::remove_dir_all(&out).expect("rm");
            assert!(f.command(&out).status().expect("run").success());
        }
    }
    assert!(
        states.len() >= 3,
        "the kills all landed at the same point: {states:?}"
    );
    assert!(rerun(&out).status().expect("run").success());
    assert_eq!(names(&out), want);
    never_twice(&out);
    assert_eq!(tmp_leftovers(&out), 0);
}

//! Helpers shared by the end-to-end tests: run the real binary, read back a Maildir tree.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path inside the repository's samples/ folder.
pub fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// Says that a check did not run, in one line on stderr that the test harness does not
/// capture (its capture takes only `print!`/`eprint!`), so that a passing run shows it.
pub fn skipped(why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "skipped: {why}");
}

/// One run of the binary, described step by step and then run: any command line with
/// [`Run::new`], or a `split` with [`Run::split`] and what it needs. The only way the tests
/// run `popsplit`, so that every run is written the same way.
///
/// A split's command line is `split INPUT --domain DOMAIN [--directory CSV] [--out OUT]`
/// then the extra [`Run::args`].
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line before the extra arguments.
    head: Vec<OsString>,
    /// A split's parts, `None` for a command line given whole.
    split: Option<Split>,
    /// Arguments after the rest.
    extra: Vec<OsString>,
    /// Working folder, when not the test's own.
    dir: Option<PathBuf>,
    /// Environment variables set for the run.
    env: Vec<(OsString, OsString)>,
    /// Whether the run is as the user `nobody`.
    nobody: bool,
}

/// The parts of a `split` command line.
#[derive(Debug, Clone)]
struct Split {
    input: PathBuf,
    domain: Option<String>,
    directory: Option<PathBuf>,
    out: Option<PathBuf>,
}

impl Run {
    /// `popsplit ARGS`, the command line given whole.
    pub fn new(args: &[&str]) -> Self {
        Run {
            head: args.iter().map(OsString::from).collect(),
            split: None,
            extra: Vec::new(),
            dir: None,
            env: Vec::new(),
            nobody: false,
        }
    }

    /// `popsplit split INPUT --domain example.com`: without a directory, every local
    /// address is a user.
    pub fn split(input: &Path) -> Self {
        Run {
            split: Some(Split {
                input: input.to_path_buf(),
                domain: None,
                directory: None,
                out: None,
            }),
            ..Run::new(&[])
        }
    }

    /// The split runs for the sample's office: `--directory samples/directory.csv`.
    pub fn office(self) -> Self {
        self.directory(&sample("directory.csv"))
    }

    /// `--directory CSV`. With a directory the domain is written `Example.COM` unless
    /// [`Run::domain`] says otherwise, so that these runs also show that the domain is
    /// matched whatever its case.
    pub fn directory(mut self, csv: &Path) -> Self {
        self.split_mut().directory = Some(csv.to_path_buf());
        self
    }

    /// `--domain DOMAIN` instead of the example's.
    pub fn domain(mut self, domain: &str) -> Self {
        self.split_mut().domain = Some(domain.to_string());
        self
    }

    /// `--out OUT`.
    pub fn out(mut self, out: &Path) -> Self {
        self.split_mut().out = Some(out.to_path_buf());
        self
    }

    /// More arguments, after all the others.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.extra.extend(extra.iter().map(OsString::from));
        self
    }

    /// Runs in the folder `dir`.
    pub fn in_dir(mut self, dir: &Path) -> Self {
        self.dir = Some(dir.to_path_buf());
        self
    }

    /// Sets the environment variable `key` for the run.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs as the user `nobody`, without root's powers; `None` (after saying so) when this
    /// process cannot switch users (it is not root).
    pub fn by_nobody(mut self) -> Option<Self> {
        // SAFETY: geteuid(2) has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            skipped("switching to user nobody needs root");
            return None;
        }
        self.nobody = true;
        Some(self)
    }

    /// The split's parts; only a run made by [`Run::split`] has them.
    fn split_mut(&mut self) -> &mut Split {
        self.split
            .as_mut()
            .expect("a split's part on a run made by Run::split")
    }

    /// The whole command line.
    fn argv(&self) -> Vec<OsString> {
        let mut v = self.head.clone();
        if let Some(s) = &self.split {
            let domain = s.domain.as_deref().unwrap_or(if s.directory.is_some() {
                "Example.COM"
            } else {
                "example.com"
            });
            v.extend([
                "split".into(),
                s.input.clone().into(),
                "--domain".into(),
                domain.into(),
            ]);
            if let Some(d) = &s.directory {
                v.extend(["--directory".into(), d.clone().into()]);
            }
            if let Some(o) = &s.out {
                v.extend(["--out".into(), o.clone().into()]);
            }
        }
        v.extend(self.extra.iter().cloned());
        v
    }

    /// The command, to run another way (spawned, its streams redirected).
    pub fn command(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_popsplit"));
        c.args(self.argv());
        if let Some(d) = &self.dir {
            c.current_dir(d);
        }
        for (k, v) in &self.env {
            c.env(k, v);
        }
        if self.nobody {
            use std::os::unix::process::CommandExt;
            c.uid(NOBODY).gid(NOBODY);
        }
        c
    }

    /// Runs it and returns its output, whatever its exit code.
    pub fn output(&self) -> Output {
        self.command().output().expect("run popsplit")
    }

    /// Runs it and returns its stdout, failing the test with its stderr unless it exits 0.
    pub fn ok(&self) -> String {
        let out = self.output();
        assert!(
            out.status.success(),
            "popsplit {:?} failed: {}",
            self.argv(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// The user and group `nobody`, for tests that need a run without root's powers.
pub const NOBODY: u32 = 65534;

/// A gzip'd file of tests/data (see its README), inflated into `dir` under `name`.
pub fn test_data(gz: &str, dir: &Path, name: &str) -> PathBuf {
    use std::io::Read;
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(gz);
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(fs::File::open(&path).expect("tests/data file"))
        .read_to_end(&mut plain)
        .expect("gunzip");
    let out = dir.join(name);
    fs::write(&out, plain).expect("write");
    out
}

/// Whether `program` runs (`program --version` or `-V`); without it a test says it was
/// skipped, except under CI (CI=true), where `.ci/run` installs `package`.
pub fn tool_present(program: &str, version_flag: &str, package: &str) -> bool {
    let found = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{program} is not installed: .ci/run must install {package}"
        );
        skipped(&format!(
            "{program} is not installed (apt-get install {package}); this test did not run"
        ));
    }
    found
}

/// The rows of a `--report` file.
pub fn report_rows(path: &Path) -> Vec<serde_json::Value> {
    fs::read_to_string(path)
        .expect("report")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

/// Every delivered file under `out`, as (`folder/cur-or-new/name`, bytes), in order.
pub fn all_files(out: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut v = Vec::new();
    for (folder, files) in read_tree(out) {
        for d in files {
            v.push((PathBuf::from(&folder).join(&d.sub).join(&d.name), d.bytes));
        }
    }
    v
}

/// One delivered file.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// File name in cur/ or new/.
    pub name: String,
    /// `cur` or `new`.
    pub sub: String,
    /// Whole file.
    pub bytes: Vec<u8>,
    /// mtime, seconds since the epoch.
    pub mtime: i64,
}

impl Delivered {
    /// The Maildir info part after `:2,`.
    pub fn info(&self) -> &str {
        self.name.split_once(":2,").map_or("", |(_, i)| i)
    }

    /// Value of the first header `name` (case-insensitive) in the file.
    pub fn header(&self, name: &str) -> Option<String> {
        let text = String::from_utf8_lossy(&self.bytes);
        text.lines()
            .take_while(|l| !l.trim_end_matches('\r').is_empty())
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case(name)
                    .then(|| v.trim().trim_end_matches('\r').to_string())
            })
    }

    /// How many header lines start with `prefix`.
    pub fn count_headers(&self, prefix: &str) -> usize {
        String::from_utf8_lossy(&self.bytes)
            .lines()
            .take_while(|l| !l.trim_end_matches('\r').is_empty())
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

/// Every Maildir under `out`: folder name → its files (cur/ and new/), sorted by name.
pub fn read_tree(out: &Path) -> BTreeMap<String, Vec<Delivered>> {
    let mut tree = BTreeMap::new();
    let Ok(entries) = fs::read_dir(out) else {
        return tree;
    };
    for user in entries {
        let user = user.expect("entry");
        if !user.file_type().expect("type").is_dir() {
            continue;
        }
        let mut files = Vec::new();
        for sub in ["cur", "new"] {
            let Ok(dir) = fs::read_dir(user.path().join(sub)) else {
                continue;
            };
            for f in dir {
                let f = f.expect("file");
                let meta = f.metadata().expect("meta");
                files.push(Delivered {
                    name: f.file_name().to_string_lossy().into_owned(),
                    sub: sub.to_string(),
                    bytes: fs::read(f.path()).expect("read"),
                    mtime: filetime::FileTime::from_last_modification_time(&meta).unix_seconds(),
                });
            }
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        tree.insert(user.file_name().to_string_lossy().into_owned(), files);
    }
    tree
}

/// Dovecot keyword name → letter, from a Maildir's dovecot-keywords file.
pub fn keyword_letters(maildir: &Path) -> BTreeMap<String, char> {
    let text = fs::read_to_string(maildir.join("dovecot-keywords")).expect("dovecot-keywords");
    text.lines()
        .filter_map(|l| {
            let (n, k) = l.split_once(' ')?;
            Some((k.to_string(), (b'a' + n.parse::<u8>().ok()?) as char))
        })
        .collect()
}

/// A simple line-based mbox reader written independently of popsplit's splitter, for
/// inputs whose separators all carry a year of `year`: returns (From line, unquoted message).
pub fn naive_messages(mbox: &[u8], year: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for line in mbox.split_inclusive(|&b| b == b'\n') {
        let text = String::from_utf8_lossy(line);
        if text.starts_with("From ") && text.trim_end().ends_with(year) {
            out.push((text.trim_end().to_string(), Vec::new()));
            continue;
        }
        let Some((_, body)) = out.last_mut() else {
            continue;
        };
        let gts = line.iter().take_while(|&&b| b == b'>').count();
        if gts > 0 && line[gts..].starts_with(b"From ") {
            body.extend_from_slice(&line[1..]);
        } else {
            body.extend_from_slice(line);
        }
    }
    for (_, body) in &mut out {
        // The writer's blank line before the next separator is not part of the message.
        if body.ends_with(b"\r\n\r\n") || body.ends_with(b"\n\r\n") {
            body.truncate(body.len() - 2);
        } else if body.ends_with(b"\n\n") {
            body.pop();
        }
    }
    out
}

/// Expected destinations of the shipped sample, from samples/expected.csv.
#[derive(Debug, Clone)]
pub struct Expected {
    pub index: usize,
    pub message_id: String,
    pub folders: Vec<String>,
    pub confidence: String,
    pub flags: String,
    pub arrival: String,
}

pub fn expected() -> Vec<Expected> {
    let text = fs::read_to_string(sample("expected.csv")).expect("expected.csv");
    let rows: Vec<Expected> = text
        .lines()
        .skip(1)
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            Expected {
                index: c[0].parse().expect("index"),
                message_id: c[1].to_string(),
                folders: c[2].split(' ').map(String::from).collect(),
                confidence: c[3].to_string(),
                flags: c[4].to_string(),
                arrival: c[5].to_string(),
            }
        })
        .collect();
    assert!(rows.len() >= 30, "expected.csv lists too few messages");
    rows
}

/// (delivered to users, unassigned, set aside as duplicates, copies) that expected.csv implies.
pub fn expected_counts(rows: &[Expected]) -> (usize, usize, usize, usize) {
    let only = |name: &str| rows.iter().filter(|e| e.folders == [name]).count();
    let (unassigned, duplicates) = (only("_unassigned"), only("_duplicates"));
    let copies = rows.iter().map(|e| e.folders.len()).sum();
    (
        rows.len() - unassigned - duplicates,
        unassigned,
        duplicates,
        copies,
    )
}

/// Seconds since the epoch of a `YYYY-MM-DDTHH:MM:SSZ` time.
pub fn epoch(iso: &str) -> i64 {
    let n = |r: std::ops::Range<usize>| iso[r].parse::<i64>().expect("digits");
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (y2, m2) = if m <= 2 { (y - 1, m + 12) } else { (y, m) };
    let days = 365 * y2 + y2 / 4 - y2 / 100 + y2 / 400 + (153 * (m2 - 3) + 2) / 5 + d - 719_469;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}

/// Generates one mailbox per ISP style (`messages` logical messages each), runs the real
/// binary on each with a directory, and scores the reports against the truth.
pub fn score_generated(messages: usize, seed: u64, dry_run: bool) -> synth::Scores {
    use synth::{Outcome, Scores, Spec, Style, directory_csv, generate};
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("directory.csv");
    fs::write(&dir, directory_csv()).expect("directory");
    let mut scores = Scores::default();
    // Every style with one copy per envelope recipient, and a bare box with one copy for all.
    let boxes = Style::ALL
        .into_iter()
        .map(|s| (s, true))
        .chain([(Style::Bare, false)]);
    for (i, (style, per_recipient_copies)) in boxes.enumerate() {
        let spec = Spec {
            style,
            messages,
            seed: seed + i as u64,
            per_recipient_copies,
            body_bytes: 400,
        };
        let name = format!("{}-{i}", style.name());
        let mbox = tmp.path().join(format!("{name}.mbox"));
        let mut file = std::io::BufWriter::new(fs::File::create(&mbox).expect("create"));
        let truth = generate(&spec, &mut file).expect("generate");
        std::io::Write::flush(&mut file).expect("flush");
        drop(file);
        let (out, report) = (
            tmp.path().join(&name),
            tmp.path().join(format!("{name}.jsonl")),
        );
        let mut args = vec![
            "split",
            mbox.to_str().expect("utf8"),
            "--domain",
            synth::DOMAIN,
            "--directory",
            dir.to_str().expect("utf8"),
            "--out",
            out.to_str().expect("utf8"),
            "--report",
            report.to_str().expect("utf8"),
        ];
        if dry_run {
            args.push("--dry-run");
        }
        Run::new(&args).ok();
        let rows = report_rows(&report);
        let outcomes: Vec<Outcome> = rows
            .iter()
            .map(|r| Outcome {
                delivered_to: serde_json::from_value(r["delivered_to"].clone()).expect("list"),
                confidence: r["confidence"].as_str().unwrap_or_default().to_string(),
            })
            .collect();
        if !dry_run {
            let files: usize = read_tree(&out).values().map(Vec::len).sum();
            let written: usize = rows
                .iter()
                .map(|r| r["files"].as_array().map_or(0, Vec::len))
                .sum();
            assert_eq!(
                files, written,
                "{style:?}: files on disk differ from the report"
            );
        }
        scores.add(&truth, &outcomes);
    }
    scores
}

/// Checks `actual` whole against the file tests/golden/`name`, failing with a line diff;
/// with `POPSPLIT_BLESS=1` in the environment it writes `actual` there instead, for a
/// person to read and commit when the output changed on purpose.
///
/// The only normalising: the checkout's own path becomes `<repo>`, as the tests give the
/// sample by its full path and a clone may be anywhere. Nothing else in these outputs
/// varies between runs (they print no times, and no temporary path), so nothing else is
/// touched.
pub fn golden(name: &str, actual: &str) {
    let actual = actual.replace(env!("CARGO_MANIFEST_DIR"), "<repo>");
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("POPSPLIT_BLESS").is_some_and(|v| v == "1") {
        fs::write(&path, &actual).expect("write golden file");
        return;
    }
    let want = fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; POPSPLIT_BLESS=1 writes it from this output:\n{actual}",
            path.display()
        )
    });
    if want != actual {
        panic!(
            "output differs from {} (- there, + now; POPSPLIT_BLESS=1 rewrites it):\n{}",
            path.display(),
            line_diff(&want, &actual)
        );
    }
}

/// The lines of `new` against `old`, each marked ` ` (both), `-` (old only) or `+` (new
/// only), from their longest common subsequence; a line end that differs only at the very
/// end of the text is said too, as the lines alone would not show it.
fn line_diff(old: &str, new: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (old.lines().collect(), new.lines().collect());
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out += &format!("  {}\n", a[i]);
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out += &format!("- {}\n", a[i]);
            i += 1;
        } else {
            out += &format!("+ {}\n", b[j]);
            j += 1;
        }
    }
    if old.ends_with('\n') != new.ends_with('\n') {
        out += "(the texts differ in their last line end)\n";
    }
    out
}

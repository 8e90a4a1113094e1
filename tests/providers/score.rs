//! The scorer: runs the real `popsplit split` on a generated mailbox, reads its report and
//! its Maildir tree, and compares every delivery with the ground truth.
//!
//! Scoring is per logical message: a tool may deliver a message to all its recipients from
//! one copy and set the other copies aside as duplicates, which is right; a user who gets
//! any copy of a message outside its truth is a wrong delivery (a privacy breach), a truth
//! user who gets no copy is a miss (acceptable, the message stays findable).

use super::mailgen::{Mailbox, Style, generate};
use super::{DOMAIN, Options};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Confidence levels in report order.
pub const LEVELS: [&str; 4] = ["high", "medium", "low", "none"];

/// Precision and rate targets the decisions must meet.
#[derive(Clone, Copy, Debug)]
pub struct Targets {
    /// Least share of right deliveries at `high`.
    pub high: f64,
    /// Least share of right deliveries at `medium`.
    pub medium: f64,
    /// Least share of right deliveries at `low`.
    pub low: f64,
    /// Most wrong deliveries per 1,000 delivered copies on copies with an envelope field.
    pub wrong_per_k_env: f64,
    /// Per style, a level is judged only with at least this many deliveries (noise).
    pub min_per_style: usize,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            high: 0.999,
            medium: 0.98,
            low: 0.85,
            wrong_per_k_env: 1.0,
            min_per_style: 50,
        }
    }
}

/// Counts for one style or overall.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// Physical messages in the mbox.
    pub messages: usize,
    /// Logical messages.
    pub logical: usize,
    /// Copies delivered to user folders (one per message and user).
    pub delivered: usize,
    /// Deliveries to a user outside the logical message's truth.
    pub wrong: usize,
    /// Truth users who got no copy of the logical message.
    pub missed: usize,
    /// Messages found in no folder at all.
    pub lost: usize,
    /// Messages put in the unassigned folder.
    pub unassigned: usize,
    /// Messages set aside as duplicates.
    pub duplicates: usize,
    /// Duplicates whose `duplicate_of` is a copy of a different logical message.
    pub cross_duplicates: usize,
    /// `(delivered, right)` per confidence level, in [`LEVELS`] order.
    pub by_level: [(usize, usize); 4],
    /// Deliveries of copies that carry an envelope field.
    pub env_delivered: usize,
    /// Wrong deliveries among them.
    pub env_wrong: usize,
}

impl Row {
    fn add(&mut self, o: &Row) {
        self.messages += o.messages;
        self.logical += o.logical;
        self.delivered += o.delivered;
        self.wrong += o.wrong;
        self.missed += o.missed;
        self.lost += o.lost;
        self.unassigned += o.unassigned;
        self.duplicates += o.duplicates;
        self.cross_duplicates += o.cross_duplicates;
        for i in 0..4 {
            self.by_level[i].0 += o.by_level[i].0;
            self.by_level[i].1 += o.by_level[i].1;
        }
        self.env_delivered += o.env_delivered;
        self.env_wrong += o.env_wrong;
    }

    /// Precision at a level, `None` when nothing was delivered at it.
    pub fn precision(&self, level: usize) -> Option<f64> {
        let (n, ok) = self.by_level[level];
        (n > 0).then(|| ok as f64 / n as f64)
    }

    /// Wrong deliveries per 1,000 delivered copies that carry an envelope field.
    pub fn wrong_per_k_env(&self) -> f64 {
        if self.env_delivered == 0 {
            0.0
        } else {
            self.env_wrong as f64 * 1000.0 / self.env_delivered as f64
        }
    }
}

/// One wrong delivery, for the list of mistakes to fix.
#[derive(Clone, Debug)]
pub struct Mistake {
    /// Provider style.
    pub style: &'static str,
    /// Situation of the logical message.
    pub situation: &'static str,
    /// 1-based index in the mbox (as in the report).
    pub index: usize,
    /// The user who should not have got it.
    pub user: String,
    /// The logical message's truth.
    pub truth: BTreeSet<String>,
    /// Confidence popsplit gave.
    pub confidence: String,
    /// popsplit's decisive evidence.
    pub decisive: String,
    /// The copy's header block.
    pub header: String,
}

/// The result of scoring one or more mailboxes.
#[derive(Clone, Debug, Default)]
pub struct Scores {
    /// Per style, in generation order.
    pub rows: Vec<(&'static str, Row)>,
    /// All styles together.
    pub overall: Row,
    /// Every wrong delivery.
    pub mistakes: Vec<Mistake>,
    /// Lost messages: `(style, index, why)`.
    pub lost: Vec<(&'static str, usize, String)>,
    /// What happened to each logical message.
    pub outcomes: Vec<Outcome>,
}

/// One logical message's result.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Provider style.
    pub style: &'static str,
    /// Situation of the logical message.
    pub situation: &'static str,
    /// Users who received it.
    pub truth: BTreeSet<String>,
    /// Users named by the envelope of the copies that reached the box.
    pub envelope_named: BTreeSet<String>,
    /// Users popsplit delivered some copy to.
    pub delivered: BTreeSet<String>,
    /// 1-based mbox indexes of its copies.
    pub indexes: Vec<usize>,
}

/// Generates `opts.per_style` messages for each style, runs popsplit on each mailbox and
/// scores the results.
pub fn score_styles(opts: Options, styles: &[Style]) -> Scores {
    let mut scores = Scores::default();
    for mb in generate(opts, styles) {
        scores.push(run_kept(&mb, mb.style.name()));
    }
    scores
}

/// Runs and scores one mailbox in a temporary folder, or, when POPSPLIT_PROVIDERS_KEEP=DIR
/// is set, in DIR/<name>, kept so a mistake can be replayed with `popsplit split --explain`.
pub fn run_kept(mb: &Mailbox, name: &str) -> Scores {
    match std::env::var_os("POPSPLIT_PROVIDERS_KEEP") {
        Some(k) => {
            let dir = Path::new(&k).join(name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("create keep dir");
            run_and_score(mb, &dir)
        }
        None => {
            let dir = tempfile::tempdir().expect("tempdir");
            run_and_score(mb, dir.path())
        }
    }
}

impl Scores {
    /// Adds one mailbox's score.
    pub fn push(&mut self, one: Scores) {
        for (s, r) in one.rows {
            self.overall.add(&r);
            self.rows.push((s, r));
        }
        self.mistakes.extend(one.mistakes);
        self.lost.extend(one.lost);
        self.outcomes.extend(one.outcomes);
    }

    /// The table: one line per style and one overall.
    pub fn table(&self) -> String {
        let mut s = String::new();
        writeln!(
            s,
            "{:<15}{:>6}{:>6}{:>7}{:>6}{:>7}{:>5}{:>6}{:>5}{:>5}{:>15}{:>15}{:>15}{:>8}{:>10}",
            "style",
            "msgs",
            "logic",
            "deliv",
            "wrong",
            "missed",
            "lost",
            "unasg",
            "dups",
            "xdup",
            "P(high) n",
            "P(med) n",
            "P(low) n",
            "n(none)",
            "wrong/1k"
        )
        .unwrap();
        let line = |s: &mut String, name: &str, r: &Row| {
            let p = |i: usize| match r.precision(i) {
                Some(v) => format!("{v:.4} {}", r.by_level[i].0),
                None => "- 0".to_string(),
            };
            writeln!(
                s,
                "{:<15}{:>6}{:>6}{:>7}{:>6}{:>7}{:>5}{:>6}{:>5}{:>5}{:>15}{:>15}{:>15}{:>8}{:>10.2}",
                name,
                r.messages,
                r.logical,
                r.delivered,
                r.wrong,
                r.missed,
                r.lost,
                r.unassigned,
                r.duplicates,
                r.cross_duplicates,
                p(0),
                p(1),
                p(2),
                r.by_level[3].0,
                r.wrong_per_k_env()
            )
            .unwrap();
        };
        for (name, r) in &self.rows {
            line(&mut s, name, r);
        }
        line(&mut s, "overall", &self.overall);
        s.push_str("(logic: logical messages; dups: set aside as duplicates; xdup: set aside as a duplicate of a different message;\n wrong/1k: wrong deliveries per 1,000 delivered copies that carry an envelope field, bare has none)\n");
        s
    }

    /// Wrong deliveries grouped by style and situation, with counts and one example each.
    pub fn mistakes_report(&self) -> String {
        let mut groups: BTreeMap<(&str, &str), Vec<&Mistake>> = BTreeMap::new();
        for m in &self.mistakes {
            groups.entry((m.situation, m.style)).or_default().push(m);
        }
        let mut s = String::new();
        for ((sit, style), ms) in &groups {
            let m = ms[0];
            let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
            for x in ms {
                *levels.entry(x.confidence.as_str()).or_default() += 1;
            }
            writeln!(
                s,
                "== {sit} / {style}: {} wrong ({levels:?}); e.g. message {} to {} (truth {:?}), decisive {:?}",
                ms.len(),
                m.index,
                m.user,
                m.truth,
                m.decisive
            )
            .unwrap();
            for l in m.header.lines().take(40) {
                writeln!(s, "    {l}").unwrap();
            }
        }
        s
    }

    /// Missed recipients grouped by situation and style, with one example each (misses
    /// are allowed, but a style that misses most of its mail is not working).
    pub fn missed_report(&self) -> String {
        let mut groups: BTreeMap<(&str, &str), (usize, &Outcome)> = BTreeMap::new();
        for o in &self.outcomes {
            let n = o.truth.difference(&o.delivered).count();
            if n > 0 {
                groups.entry((o.situation, o.style)).or_insert((0, o)).0 += n;
            }
        }
        let mut s = String::new();
        for ((sit, style), (n, o)) in groups {
            writeln!(
                s,
                "{sit} / {style}: {n} missed; e.g. messages {:?} truth {:?} delivered {:?}",
                o.indexes, o.truth, o.delivered
            )
            .unwrap();
        }
        s
    }

    /// Every target that does not hold, overall and per style.
    pub fn failures(&self, t: &Targets) -> Vec<String> {
        let mut f = Vec::new();
        let mut check = |name: &str, r: &Row, min: usize| {
            if r.lost > 0 {
                f.push(format!("{name}: {} messages lost", r.lost));
            }
            for (i, goal) in [t.high, t.medium, t.low].into_iter().enumerate() {
                if r.by_level[i].0 >= min.max(1)
                    && let Some(p) = r.precision(i)
                    && p < goal
                {
                    f.push(format!(
                        "{name}: precision at {} is {p:.4} < {goal} ({} of {})",
                        LEVELS[i], r.by_level[i].1, r.by_level[i].0
                    ));
                }
            }
            if r.env_delivered >= min.max(1) && r.wrong_per_k_env() >= t.wrong_per_k_env {
                f.push(format!(
                    "{name}: {:.2} wrong per 1,000 copies with an envelope field ({} of {})",
                    r.wrong_per_k_env(),
                    r.env_wrong,
                    r.env_delivered
                ));
            }
        };
        check("overall", &self.overall, 1);
        for (name, r) in &self.rows {
            check(name, r, t.min_per_style);
        }
        f
    }
}

/// Writes the mailbox and directory into `dir`, runs `popsplit split` with a report, and
/// scores the report and the Maildir tree against the truth.
pub fn run_and_score(mb: &Mailbox, dir: &Path) -> Scores {
    let mbox = dir.join(format!("{}.mbox", mb.style.name()));
    let csv = dir.join("directory.csv");
    let out = dir.join("out");
    let report = dir.join("report.jsonl");
    std::fs::write(&mbox, &mb.mbox).expect("write mbox");
    super::write_directory(&csv).expect("write directory");
    // The truth beside the mbox, so a kept run can be replayed and read by hand.
    let mut truth = String::from("index\tlogical\tsituation\tenvelope\ttruth\tcopy_truth\n");
    for (i, c) in mb.copies.iter().enumerate() {
        let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(",");
        writeln!(
            truth,
            "{}\t{}\t{}\t{}\t{}\t{}",
            i + 1,
            c.logical,
            c.situation,
            c.has_envelope,
            join(&c.truth),
            join(&c.copy_truth)
        )
        .unwrap();
    }
    std::fs::write(dir.join("truth.tsv"), truth).expect("write truth");
    let res = Command::new(env!("CARGO_BIN_EXE_popsplit"))
        .arg("split")
        .arg(&mbox)
        .args(["--domain", DOMAIN, "--directory"])
        .arg(&csv)
        .arg("--out")
        .arg(&out)
        .arg("--report")
        .arg(&report)
        .args(["--sync", "none"])
        .output()
        .expect("run popsplit");
    assert!(
        res.status.success(),
        "popsplit failed on {}: {}",
        mb.style.name(),
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(&report).expect("read report");
    let rows: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("report line"))
        .collect();
    score_report(mb, &rows, &out)
}

/// Scores a parsed report (one object per input message, input order) and the tree under
/// `out`.
pub fn score_report(mb: &Mailbox, rows: &[serde_json::Value], out: &Path) -> Scores {
    let style = mb.style.name();
    let mut row = Row {
        messages: mb.copies.len(),
        ..Row::default()
    };
    let mut mistakes = Vec::new();
    let mut lost = Vec::new();
    let by_index: BTreeMap<usize, &serde_json::Value> = rows
        .iter()
        .filter_map(|r| Some((r["index"].as_u64()? as usize, r)))
        .collect();
    // Users who got some copy of each logical message.
    let mut got: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
    let mut files_in_report = 0usize;
    for (i, copy) in mb.copies.iter().enumerate() {
        let index = i + 1;
        let Some(r) = by_index.get(&index) else {
            row.lost += 1;
            lost.push((style, index, "no report line".to_string()));
            continue;
        };
        let files: Vec<&str> = r["files"]
            .as_array()
            .map(|a| a.iter().filter_map(|f| f.as_str()).collect())
            .unwrap_or_default();
        files_in_report += files.len();
        if files.is_empty() {
            row.lost += 1;
            lost.push((style, index, "report lists no file".to_string()));
        } else if let Some(f) = files.iter().find(|f| !out.join(f).is_file()) {
            row.lost += 1;
            lost.push((style, index, format!("{f} is not in the tree")));
        }
        let folders: Vec<String> = r["delivered_to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if folders.is_empty() {
            row.lost += 1;
            lost.push((style, index, "delivered to no folder".to_string()));
        }
        if folders.iter().any(|f| f == "_unassigned") {
            row.unassigned += 1;
        }
        if folders.iter().any(|f| f == "_duplicates") {
            row.duplicates += 1;
            if let Some(j) = r["duplicate_of"]["index"].as_u64()
                && let Some(orig) = mb.copies.get(j as usize - 1)
                && orig.logical != copy.logical
            {
                row.cross_duplicates += 1;
            }
        }
        let confidence = r["confidence"].as_str().unwrap_or("none").to_string();
        let level = LEVELS.iter().position(|l| *l == confidence).unwrap_or(3);
        for user in folders.iter().filter(|f| !f.starts_with('_')) {
            row.delivered += 1;
            row.by_level[level].0 += 1;
            got.entry(copy.logical).or_default().insert(user.clone());
            let right = copy.truth.contains(user);
            if right {
                row.by_level[level].1 += 1;
            } else {
                row.wrong += 1;
                mistakes.push(Mistake {
                    style,
                    situation: copy.situation,
                    index,
                    user: user.clone(),
                    truth: copy.truth.clone(),
                    confidence: confidence.clone(),
                    decisive: r["decisive"].as_str().unwrap_or("").to_string(),
                    header: copy.header.clone(),
                });
            }
            if copy.has_envelope {
                row.env_delivered += 1;
                row.env_wrong += usize::from(!right);
            }
        }
    }
    // Every message must be somewhere: the tree holds exactly the files the report names.
    let in_tree = count_files(out);
    if in_tree != files_in_report {
        row.lost += files_in_report.saturating_sub(in_tree);
        lost.push((
            style,
            0,
            format!("{in_tree} files in the tree, {files_in_report} in the report"),
        ));
    }
    let mut outcomes: BTreeMap<usize, Outcome> = BTreeMap::new();
    for (i, copy) in mb.copies.iter().enumerate() {
        let o = outcomes.entry(copy.logical).or_insert_with(|| Outcome {
            style,
            situation: copy.situation,
            truth: copy.truth.clone(),
            envelope_named: BTreeSet::new(),
            delivered: got.get(&copy.logical).cloned().unwrap_or_default(),
            indexes: Vec::new(),
        });
        o.envelope_named.extend(copy.copy_truth.iter().cloned());
        o.indexes.push(i + 1);
    }
    for o in outcomes.values() {
        row.logical += 1;
        row.missed += o.truth.difference(&o.delivered).count();
    }
    let mut s = Scores {
        mistakes,
        lost,
        outcomes: outcomes.into_values().collect(),
        ..Scores::default()
    };
    s.push(Scores {
        rows: vec![(style, row)],
        ..Scores::default()
    });
    s
}

/// Files in `cur/` and `new/` of every Maildir under `out`.
fn count_files(out: &Path) -> usize {
    let Ok(users) = std::fs::read_dir(out) else {
        return 0;
    };
    let mut n = 0;
    for u in users.flatten() {
        for sub in ["cur", "new"] {
            if let Ok(files) = std::fs::read_dir(u.path().join(sub)) {
                n += files.flatten().filter(|f| f.path().is_file()).count();
            }
        }
    }
    n
}

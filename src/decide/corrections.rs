//! Between decide and deliver: a person's decisions (`--corrections FILE`), which override
//! popsplit's for the messages they name. Read and checked here, as plain data; the run
//! applies them after deciding, so the decision itself stays a pure function of evidence.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use crate::decide::directory::Directory;
use crate::text::{folder_name, one_line};

/// Why a corrections file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CorrectionsError {
    /// The file could not be read as CSV.
    #[error("--corrections {path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// What the CSV reader said.
        source: csv::Error,
    },
    /// One line is wrong.
    #[error("--corrections {path} line {line}: {why}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        why: String,
    },
}

/// One line of the file: where a person says a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// 1-based line number in the file.
    pub line: u64,
    /// The users the message goes to, sorted; empty for the unassigned folder.
    pub users: Vec<String>,
}

/// The corrections of one file, by Message-ID and by the report's `source:index`.
#[derive(Debug, Clone, Default)]
pub struct Corrections {
    /// The file, as named on the command line (for messages).
    pub path: String,
    /// The file.
    pub file: PathBuf,
    lines: Vec<Correction>,
    /// Message-ID without its angle brackets → line (index into `lines`).
    by_id: HashMap<String, usize>,
    /// (source, 1-based index) → line.
    by_place: HashMap<(String, usize), usize>,
    /// For each line, the message it names as the file wrote it, for messages.
    named: Vec<String>,
}

/// A Message-ID as compared: without white space around it or its angle brackets.
fn bare_id(id: &str) -> &str {
    let id = id.trim();
    let id = id.strip_prefix('<').unwrap_or(id);
    id.strip_suffix('>').unwrap_or(id)
}

/// `source:index` as the report writes it, when `text` is one.
fn place(text: &str) -> Option<(String, usize)> {
    if text.starts_with('<') {
        return None;
    }
    let (source, n) = text.rsplit_once(':')?;
    let n: usize = n.parse().ok().filter(|n| *n > 0)?;
    (!source.is_empty()).then(|| (source.to_string(), n))
}

impl Corrections {
    /// Reads a `message,users` CSV: `message` a Message-ID or `source:index`, `users` a
    /// `;`-separated list of users of `dir` (any safe folder name without a directory)
    /// or `_unassigned` (also the name given to `--unassigned`).
    pub fn from_csv(
        path: &Path,
        dir: &Directory,
        unassigned: &str,
    ) -> Result<Self, CorrectionsError> {
        let name = path.display().to_string();
        let csv_err = |source| CorrectionsError::Csv {
            path: name.clone(),
            source,
        };
        let mut reader = csv::ReaderBuilder::new()
            .trim(csv::Trim::All)
            .from_path(path)
            .map_err(csv_err)?;
        let headers = reader.headers().map_err(csv_err)?.clone();
        if headers.len() != 2
            || !headers[0].eq_ignore_ascii_case("message")
            || !headers[1].eq_ignore_ascii_case("users")
        {
            return Err(CorrectionsError::Line {
                path: name,
                line: 1,
                why: "the header line must be `message,users`".into(),
            });
        }
        let known = dir.listed_users();
        let mut c = Corrections {
            path: name.clone(),
            file: path.to_path_buf(),
            ..Corrections::default()
        };
        // Message as written (Message-IDs bare) → its line, to name the first of a repeat.
        let mut first: HashMap<String, u64> = HashMap::new();
        for record in reader.records() {
            let record = record.map_err(csv_err)?;
            let line = record.position().map_or(0, |p| p.line());
            let bad = |why: String| CorrectionsError::Line {
                path: name.clone(),
                line,
                why,
            };
            let (message, list) = (&record[0], &record[1]);
            if message.is_empty() {
                return Err(bad("no message named".into()));
            }
            let mut users = BTreeSet::new();
            let mut to_unassigned = false;
            for user in list.split(';').map(str::trim).filter(|u| !u.is_empty()) {
                if user == "_unassigned" || user == unassigned {
                    to_unassigned = true;
                } else if known.as_ref().is_some_and(|k| !k.contains(user))
                    || (known.is_none() && folder_name(user) != user)
                {
                    return Err(bad(format!(
                        "`{}` is not a user of the directory",
                        one_line(user)
                    )));
                } else {
                    users.insert(user.to_string());
                }
            }
            if to_unassigned != users.is_empty() {
                return Err(bad(match to_unassigned {
                    true => "`_unassigned` cannot stand beside users".into(),
                    false => "no users: name at least one, or `_unassigned`".into(),
                }));
            }
            let at = c.lines.len();
            let key = match place(message) {
                Some(p) => {
                    let key = format!("{}:{}", p.0, p.1);
                    c.by_place.insert(p, at);
                    key
                }
                None => {
                    let id = bare_id(message).to_string();
                    c.by_id.insert(id.clone(), at);
                    id
                }
            };
            if let Some(earlier) = first.insert(key, line) {
                return Err(bad(format!(
                    "names the same message as line {earlier} (one line a message)"
                )));
            }
            c.named.push(one_line(message));
            c.lines.push(Correction {
                line,
                users: users.into_iter().collect(),
            });
        }
        Ok(c)
    }

    /// The line for the message at `index` of `source` with `message_id`, if any; the
    /// `source:index` form first, since it names exactly one copy.
    pub fn find(&self, source: &str, index: usize, message_id: Option<&str>) -> Option<usize> {
        self.by_place
            .get(&(source.to_string(), index))
            .or_else(|| message_id.and_then(|id| self.by_id.get(bare_id(id))))
            .copied()
    }

    /// Line `at` (as [`Corrections::find`] returns it).
    pub fn get(&self, at: usize) -> Option<&Correction> {
        self.lines.get(at)
    }

    /// The evidence a corrected copy carries.
    pub fn evidence(&self, at: usize) -> String {
        format!(
            "corrected by {} line {}",
            self.path,
            self.lines.get(at).map_or(0, |l| l.line)
        )
    }

    /// Learns a message of the inputs (before anything is decided): a line naming it by
    /// `source:index` then also reaches its other copies, by its Message-ID. Returns the
    /// line it matched, or an error when two lines name the same message.
    pub fn meet(
        &mut self,
        source: &str,
        index: usize,
        message_id: Option<&str>,
    ) -> Result<Option<usize>, CorrectionsError> {
        let by_place = self.by_place.get(&(source.to_string(), index)).copied();
        let id = message_id.map(bare_id).filter(|id| !id.is_empty());
        let by_id = id.and_then(|id| self.by_id.get(id)).copied();
        match (by_place, by_id, id) {
            (Some(a), Some(b), _) if a != b => Err(CorrectionsError::Line {
                path: self.path.clone(),
                line: self.lines[a].line.max(self.lines[b].line),
                why: format!(
                    "names the same message as line {} ({source} message {index})",
                    self.lines[a].line.min(self.lines[b].line)
                ),
            }),
            (Some(a), None, Some(id)) => {
                self.by_id.insert(id.to_string(), a);
                Ok(Some(a))
            }
            (a, b, _) => Ok(a.or(b)),
        }
    }

    /// The first line that [`Corrections::meet`] never matched, as an error.
    pub fn unmatched(&self, matched: &[bool]) -> Result<(), CorrectionsError> {
        match matched.iter().position(|m| !m) {
            None => Ok(()),
            Some(at) => Err(CorrectionsError::Line {
                path: self.path.clone(),
                line: self.lines[at].line,
                why: format!(
                    "no message of the inputs is `{}` (a Message-ID, or source:index as in the report)",
                    self.named[at]
                ),
            }),
        }
    }

    /// Every line as (message as written, users joined by `;`, or `_unassigned`), for the
    /// audit page to write out again.
    pub fn entries(&self) -> Vec<(String, String)> {
        self.named
            .iter()
            .zip(&self.lines)
            .map(|(m, l)| {
                let users = match l.users.is_empty() {
                    true => "_unassigned".to_string(),
                    false => l.users.join(";"),
                };
                (m.clone(), users)
            })
            .collect()
    }

    /// How many lines the file has.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether the file has no lines.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn office() -> Directory {
        Directory::from_rows(
            &[("alice@example.com", "alice"), ("bob@example.com", "bob")],
            &["example.com".to_string()],
        )
        .expect("directory")
    }

    fn read(text: &str) -> Result<Corrections, CorrectionsError> {
        let tmp = tempfile::tempdir().expect("tmp");
        let p = tmp.path().join("c.csv");
        std::fs::write(&p, text).expect("write");
        Corrections::from_csv(&p, &office(), "_unassigned")
    }

    #[test]
    fn lines_are_read_and_found_by_id_or_place() {
        let c = read("message,users\n<a@x>,bob;alice\nbox.mbox:3,_unassigned\n").expect("ok");
        assert_eq!(c.len(), 2);
        let at = c.find("other", 1, Some(" <a@x> ")).expect("by id");
        assert_eq!(
            c.get(at).map(|l| l.users.clone()),
            Some(vec!["alice".into(), "bob".into()])
        );
        let at = c.find("box.mbox", 3, None).expect("by place");
        assert_eq!(c.get(at).map(|l| l.users.len()), Some(0));
        assert!(c.evidence(at).ends_with("line 3"), "{}", c.evidence(at));
        assert_eq!(c.find("box.mbox", 4, Some("b@x")), None);
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        for (text, line, says) in [
            ("msg,user\n", 1, "header"),
            (
                "message,users\n<a@x>,alice\n<a@x>,bob\n",
                3,
                "same message as line 2",
            ),
            (
                "message,users\n<a@x>,alice\na@x,bob\n",
                3,
                "same message as line 2",
            ),
            ("message,users\n<a@x>,carol\n", 2, "`carol` is not a user"),
            (
                "message,users\n<a@x>,alice;_unassigned\n",
                2,
                "cannot stand beside",
            ),
            ("message,users\n<a@x>,\n", 2, "no users"),
            ("message,users\n,alice\n", 2, "no message"),
        ] {
            let e = read(text).expect_err(text).to_string();
            assert!(
                e.contains(&format!("line {line}:")) && e.contains(says),
                "{text}: {e}"
            );
        }
    }

    #[test]
    fn a_place_reaches_the_other_copies_and_unmatched_lines_are_named() {
        let mut c = read("message,users\nbox.mbox:2,alice\n<z@x>,bob\n").expect("ok");
        assert_eq!(c.meet("box.mbox", 2, Some("<y@x>")).expect("meet"), Some(0));
        assert_eq!(c.find("box.mbox", 9, Some("y@x")), Some(0));
        let e = c
            .unmatched(&[true, false])
            .expect_err("unmatched")
            .to_string();
        assert!(e.contains("line 3:") && e.contains("<z@x>"), "{e}");
        // Line 3 names <z@x>; a message at line 2's place carrying it is named twice.
        assert!(c.meet("box.mbox", 2, Some("<z@x>")).is_err());
    }
}

//! What a run was asked to do, checked before any work starts.

mod paths;

use crate::config::paths::{PathError, Paths};
use crate::decide::corrections::Corrections;
use crate::decide::directory::Directory;
use crate::decide::profile::Overrides;
use crate::decide::profile::Profile;
use crate::decide::{Context, Policy};
use crate::input::InputFormat;
use crate::output::maildir::SyncPolicy;
use std::num::NonZeroUsize;
use std::path::PathBuf;

/// What one `split` run is asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Mailboxes to read.
    pub inputs: Vec<PathBuf>,
    /// How to read them.
    pub format: InputFormat,
    /// Where compressed inputs are inflated.
    pub temp_dir: PathBuf,
    /// Root of the per-user Maildirs.
    pub out: PathBuf,
    /// The office's domains and users.
    pub directory: Directory,
    /// The CSV the directory was read from, which no output may overwrite.
    pub directory_file: Option<PathBuf>,
    /// Folder for messages that name no user.
    pub unassigned: FolderName,
    /// Where to write the JSON Lines report.
    pub report: Option<PathBuf>,
    /// Decide and report only.
    pub dry_run: bool,
    /// Decision settings.
    pub policy: Policy,
    /// What the admin says instead of what the profile learns.
    pub overrides: Overrides,
    /// How written copies are made durable.
    pub sync: SyncPolicy,
    /// Messages whose copies are committed together, at most (`--commit-every`).
    pub commit_every: usize,
    /// What to write.
    pub output: OutputFormat,
    /// Where to write the HTML audit page.
    pub html: Option<PathBuf>,
    /// The command line, as the audit page shows it.
    pub command: String,
    /// A person's decisions (`--corrections`), which override popsplit's.
    pub corrections: Option<Corrections>,
    /// Every copy in the user's INBOX, instead of the Maildir++ subfolder that stands for
    /// the source's folder (`--flatten`).
    pub flatten: bool,
}

/// The form of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One Maildir per user (for an IMAP server).
    Maildir,
    /// One mboxrd file per user (for a mail client or an import tool).
    Mbox,
}

impl Config {
    /// What the decision needs besides a message: the directory, `profile` and the policy.
    pub fn context<'a>(&'a self, profile: &'a Profile) -> Context<'a> {
        Context {
            dir: &self.directory,
            profile,
            policy: &self.policy,
        }
    }

    /// Refuses a command line whose outputs would destroy an input or another output, or whose
    /// inputs and `--out` overlap, before anything is read or written.
    pub fn check_paths(&self) -> Result<(), PathError> {
        let out = (!self.dry_run).then_some(self.out.as_path());
        Paths::resolve(
            &self.inputs,
            &[
                ("--directory", self.directory_file.as_deref()),
                (
                    "--corrections",
                    self.corrections.as_ref().map(|c| c.file.as_path()),
                ),
            ],
            out,
            &[
                ("--report", self.report.as_deref()),
                ("--html", self.html.as_deref()),
            ],
        )
        .and_then(|p| p.check())
    }
}

/// Folder for copies whose every destination already holds the same message: they are
/// kept, byte for byte, rather than dropped, so that no input message is ever lost.
pub const DUPLICATES: &str = "_duplicates";

/// A command-line value that is not what popsplit can use.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// The folder for messages that name no user (`--unassigned`): starts with `_`, as no
/// user folder does, and holds only characters that cannot leave `--out`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderName(String);

impl FolderName {
    /// Checks an `--unassigned` name.
    pub fn unassigned(name: &str) -> Result<FolderName, ConfigError> {
        if name.len() < 2
            || !name.starts_with('_')
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err(ConfigError(format!(
                "--unassigned `{name}` must start with `_` and hold only letters, digits, `.`, `_` and `-` (user folders never start with `_`)"
            )));
        }
        if name == DUPLICATES {
            return Err(ConfigError(format!(
                "--unassigned cannot be `{name}`: popsplit keeps duplicate copies there"
            )));
        }
        Ok(FolderName(name.to_string()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Worker threads (`--jobs`): at least one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Jobs(NonZeroUsize);

impl Jobs {
    /// Checks a `--jobs` count.
    pub fn new(n: usize) -> Result<Jobs, ConfigError> {
        NonZeroUsize::new(n).map(Jobs).ok_or_else(|| {
            ConfigError(
                "--jobs 0: give at least 1 worker thread, or leave --jobs out to use all cores"
                    .to_string(),
            )
        })
    }

    /// The count.
    pub fn get(self) -> usize {
        self.0.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unassigned_names_start_with_an_underscore_and_stay_in_out() {
        assert_eq!(
            FolderName::unassigned("_review")
                .map(|f| f.as_str().to_string())
                .ok(),
            Some("_review".to_string())
        );
        for bad in ["_", "review", "_a/b", "_..x/", DUPLICATES, "_ä"] {
            assert!(FolderName::unassigned(bad).is_err(), "{bad}");
        }
        assert!(Jobs::new(0).is_err());
        assert_eq!(Jobs::new(3).map(Jobs::get).ok(), Some(3));
    }
}

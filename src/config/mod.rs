//! What a run was asked to do, checked before any work starts.

pub mod paths;

use crate::config::paths::{PathError, Paths};
use crate::decide::Policy;
use crate::decide::corrections::Corrections;
use crate::decide::directory::Directory;
use crate::decide::profile::Overrides;
use crate::input::InputFormat;
use crate::output::maildir::SyncPolicy;
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
    /// Folder for messages that name no user (starts with `_`).
    pub unassigned: String,
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
    /// What to write.
    pub output: OutputFormat,
    /// Where to write the HTML audit page.
    pub html: Option<PathBuf>,
    /// The command line, as the audit page shows it.
    pub command: String,
    /// A person's decisions (`--corrections`), which override popsplit's.
    pub corrections: Option<Corrections>,
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

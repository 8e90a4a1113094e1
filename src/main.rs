//! The `popsplit` binary: flags, progress bar and exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use popsplit::decide::Policy;
use popsplit::directory::Directory;
use popsplit::split::{self, Config};

/// Give every person their own mail back from a shared POP (catch-all) mailbox.
#[derive(Parser)]
#[command(name = "popsplit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split exported shared mailboxes into one Maildir per user.
    Split(SplitArgs),
}

#[derive(clap::Args)]
struct SplitArgs {
    /// mbox files exported from the shared POP mailbox (opened read-only).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// Folder that receives one Maildir per user (created if missing; existing mail is kept).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// The office's own mail domain; repeat for each (case-insensitive).
    #[arg(long = "domain", required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
    /// CSV with the header `address,user`: only these users get mail.
    #[arg(long, value_name = "CSV")]
    directory: Option<PathBuf>,
    /// Folder for messages whose evidence names no user (must start with `_`).
    #[arg(long, value_name = "NAME", default_value = "_unassigned")]
    unassigned: String,
    /// Write a JSON Lines report: one object per input message, with all its evidence.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// Decide and report, but write no Maildir.
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Split(args) => run_split(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popsplit: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_split(args: SplitArgs) -> Result<()> {
    let domains: Vec<String> = args
        .domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if let Some(bad) = domains
        .iter()
        .find(|d| d.is_empty() || d.contains(['@', ' ', '/']))
    {
        bail!("--domain `{bad}` is not a domain name");
    }
    let u = &args.unassigned;
    if u.len() < 2
        || !u.starts_with('_')
        || !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        bail!(
            "--unassigned `{u}` must start with `_` and hold only letters, digits, `.`, `_` and `-` (user folders never start with `_`)"
        );
    }
    if u == split::DUPLICATES {
        bail!("--unassigned cannot be `{u}`: popsplit keeps duplicate copies there");
    }
    let directory = match &args.directory {
        Some(path) => Directory::from_csv(&domains, path)?,
        None => Directory::open(&domains),
    };
    let config = Config {
        inputs: args.inputs,
        out: args.out,
        directory,
        unassigned: args.unassigned,
        report: args.report,
        dry_run: args.dry_run,
        policy: Policy::default(),
    };
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = args.jobs {
        if n == 0 {
            bail!("--jobs must be at least 1");
        }
        pool = pool.num_threads(n);
    }
    let pool = pool.build().context("starting worker threads")?;
    let total: u64 = config
        .inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    // Draws only when stderr is a terminal.
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template(
            "{spinner} {bytes}/{total_bytes} [{bar:40}] {binary_bytes_per_sec} eta {eta}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    );
    let summary = pool.install(|| split::run(&config, &|n| bar.inc(n)));
    bar.finish_and_clear();
    let summary = summary?;
    print!("{}", summary.table(config.dry_run));
    Ok(())
}

//! The `popsplit` binary: flags, progress bar and exit codes; the work is in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Header parsing allocates many short-lived strings on every worker thread; mimalloc's
/// per-thread free lists serve them faster than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use popsplit::decide::Policy;
use popsplit::deliver::SyncPolicy;
use popsplit::directory::{Directory, DirectoryError};
use popsplit::profile::Overrides;
use popsplit::source::Format;
use popsplit::split::{self, Config, Output, SplitError, Which};

/// Give every person their own mail back from a shared POP (catch-all) mailbox.
#[derive(Parser)]
#[command(name = "popsplit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Split exported shared mailboxes into one Maildir (or mbox) per user.
    Split(SplitArgs),
    /// Show what popsplit learns from the mailboxes before deciding anything.
    Profile(MailboxArgs),
}

/// What every command needs to know about the mailbox and the office.
#[derive(clap::Args)]
struct MailboxArgs {
    /// Exported shared mailboxes: mbox (also .gz), Maildir, .eml folders, or folders of them (read-only).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    /// The office's own mail domain; repeat for each (case-insensitive).
    #[arg(long = "domain", required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
    /// CSV with the header `address,user`: only these users get mail.
    #[arg(long, value_name = "CSV")]
    directory: Option<PathBuf>,
    /// Only this field is envelope evidence (repeatable), instead of the learned ones.
    #[arg(long = "envelope-header", value_name = "FIELD")]
    envelope_headers: Vec<String>,
    /// A host whose Received fields are the ISP's own (repeatable), instead of the learned ones.
    #[arg(long = "trusted-relay", value_name = "HOST")]
    trusted_relays: Vec<String>,
    /// Strip this prefix from envelope addresses (`PREFIX` or `PREFIX@DOMAIN`; repeatable).
    #[arg(long = "strip-prefix", value_name = "PREFIX")]
    strip_prefixes: Vec<String>,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// How to read the inputs (default: detected from the path and the bytes).
    #[arg(long = "input-format", value_enum, default_value = "auto")]
    input_format: Format,
}

#[derive(clap::Args)]
struct SplitArgs {
    #[command(flatten)]
    mailbox: MailboxArgs,
    /// Folder that receives one Maildir per user (created if missing; existing mail is kept).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Folder for messages whose evidence names no user (must start with `_`).
    #[arg(long, value_name = "NAME", default_value = "_unassigned")]
    unassigned: String,
    /// Write a JSON Lines report: one object per input message, with all its evidence.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Decide and report, but write no Maildir.
    #[arg(long)]
    dry_run: bool,
    /// Write a self-contained HTML audit page for the office.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print everything considered for message N of the first input (or FILE:N) and stop.
    #[arg(long, value_name = "N")]
    explain: Option<String>,
    /// What to write: one Maildir per user, or one mboxrd file per user.
    #[arg(long, value_enum, default_value = "maildir")]
    format: Output,
    /// How copies are made durable: `batch` (one file-system sync before and one after
    /// each batch's renames), `file` (fsync per file and folder) or `none`.
    #[arg(long, value_enum, default_value = "batch")]
    sync: SyncPolicy,
}

/// A mistake on the command line (an option's value, a path named, the directory CSV):
/// exits 2, as clap's own errors do, so that a script tells it from a run that failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Usage(String);

/// Stops with a [`Usage`] error.
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(Usage(format!($($arg)*)).into())
    };
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Split(args) => run_split(args),
        Command::Profile(args) => run_profile(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(SplitError::Interrupted { signal, .. }) = e.downcast_ref() {
                eprintln!("popsplit: {}", describe(&e));
                // As a shell reports a process killed by the signal: 130, 143.
                return ExitCode::from(128 + *signal as u8);
            }
            eprintln!("popsplit: error: {}", describe(&e));
            ExitCode::from(exit_status(&e))
        }
    }
}

/// 2 for a command-line mistake, 1 for a run that could not finish.
fn exit_status(e: &anyhow::Error) -> u8 {
    let usage = e.chain().any(|c| {
        c.is::<Usage>()
            || c.is::<DirectoryError>()
            || matches!(c.downcast_ref::<SplitError>(), Some(SplitError::Usage(_)))
    });
    if usage { 2 } else { 1 }
}

/// The error and its causes, each cause only where the message before does not say it.
fn describe(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
    }
    text
}

/// The office's directory and the admin's overrides, from the flags.
fn office(args: &MailboxArgs) -> Result<(Directory, Overrides)> {
    let domains: Vec<String> = args
        .domains
        .iter()
        .map(|d| d.trim().trim_end_matches('.').to_ascii_lowercase())
        .collect();
    if let Some(bad) = domains
        .iter()
        .find(|d| d.is_empty() || d.contains(['@', ' ', '/']))
    {
        usage!(
            "--domain `{bad}` is not a domain name: give it without `@` (`--domain example.com`)"
        );
    }
    check_inputs(&args.inputs)?;
    let directory = match &args.directory {
        Some(path) => Directory::from_csv(&domains, path)?,
        None => Directory::open(&domains),
    };
    let overrides = Overrides {
        envelope_headers: args.envelope_headers.clone(),
        trusted_relays: args.trusted_relays.clone(),
        strip_prefixes: args.strip_prefixes.clone(),
    };
    Ok((directory, overrides))
}

fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = jobs {
        if n == 0 {
            usage!("--jobs 0: give at least 1 worker thread, or leave --jobs out to use all cores");
        }
        pool = pool.num_threads(n);
    }
    pool.build().context("starting worker threads")
}

/// A progress bar over `passes` reads of the inputs; draws only when stderr is a terminal.
fn progress_bar(inputs: &[PathBuf], passes: u64) -> Result<ProgressBar> {
    let total: u64 = inputs
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    Ok(ProgressBar::new(total * passes).with_style(
        ProgressStyle::with_template(
            "{spinner} {msg:>10} [{bar:40}] {percent:>3}% {binary_bytes_per_sec} eta {eta}",
        )
        .context("progress template")?
        .progress_chars("=> "),
    ))
}

fn run_profile(args: MailboxArgs) -> Result<()> {
    let (directory, overrides) = office(&args)?;
    let bar = progress_bar(&args.inputs, 1)?;
    let profile = pool(args.jobs)?.install(|| -> Result<_> {
        let (_, skipped, profile, _) = split::open_and_learn(
            &args.inputs,
            args.input_format,
            &directory,
            &overrides,
            &|phase, n| {
                bar.set_message(phase);
                bar.inc(n)
            },
        )?;
        for s in &skipped {
            eprintln!("popsplit: note: {}", popsplit::sanitize::one_line(s));
        }
        Ok(profile)
    });
    bar.finish_and_clear();
    print!("{}", profile?.describe(&directory));
    Ok(())
}

fn run_split(args: SplitArgs) -> Result<()> {
    let u = &args.unassigned;
    if u.len() < 2
        || !u.starts_with('_')
        || !u
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        usage!(
            "--unassigned `{u}` must start with `_` and hold only letters, digits, `.`, `_` and `-` (user folders never start with `_`)"
        );
    }
    if u == split::DUPLICATES {
        usage!("--unassigned cannot be `{u}`: popsplit keeps duplicate copies there");
    }
    let (directory, overrides) = office(&args.mailbox)?;
    if args.explain.is_none() {
        check_outputs(&args)?;
    }
    let config = Config {
        inputs: args.mailbox.inputs.clone(),
        out: args.out,
        directory,
        unassigned: args.unassigned,
        report: args.report,
        dry_run: args.dry_run,
        policy: Policy::default(),
        overrides,
        format: args.mailbox.input_format,
        output: args.format,
        html: args.html,
        command: std::env::args()
            .map(|a| shell_word(&a))
            .collect::<Vec<_>>()
            .join(" "),
        sync: args.sync,
    };
    let pool = pool(args.mailbox.jobs)?;
    if let Some(spec) = &args.explain {
        let which = parse_which(spec)?;
        print!("{}", pool.install(|| split::explain(&config, which))?);
        return Ok(());
    }
    popsplit::interrupt::install().context("handling Ctrl-C")?;
    let bar = progress_bar(&config.inputs, 3)?;
    let outcome = pool.install(|| {
        split::run(&config, &|phase, n| {
            bar.set_message(phase);
            bar.inc(n)
        })
    });
    bar.finish_and_clear();
    let outcome = outcome?;
    for s in &outcome.skipped {
        eprintln!("popsplit: note: {}", popsplit::sanitize::one_line(s));
    }
    print!("{}", outcome.profile.describe(&config.directory));
    println!();
    print!("{}", outcome.summary.table(config.dry_run));
    Ok(())
}

/// Refuses an input that is not there, before anything is read.
fn check_inputs(inputs: &[PathBuf]) -> Result<()> {
    for input in inputs {
        if let Err(e) = std::fs::metadata(input)
            && e.kind() == std::io::ErrorKind::NotFound
        {
            usage!(
                "{}: no such file or folder; give the exported mailbox (an mbox file, a Maildir or a folder of mail)",
                input.display()
            );
        }
    }
    Ok(())
}

/// Refuses an `--out` that is a file and an `--html` or `--report` that cannot be created,
/// before the run: otherwise a long run fails at its very end.
fn check_outputs(args: &SplitArgs) -> Result<()> {
    if args.out.exists() && !args.out.is_dir() {
        usage!(
            "--out {} is not a directory (it is a file); give a folder, which popsplit creates if missing",
            args.out.display()
        );
    }
    for (flag, path) in [("--html", &args.html), ("--report", &args.report)] {
        let Some(path) = path else { continue };
        if path.is_dir() {
            usage!(
                "{flag} {} is a folder; give the name of a file to write",
                path.display()
            );
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        if !parent.is_dir() {
            usage!(
                "{flag} {}: the folder {} does not exist; create it first (mkdir -p {}) or write the file elsewhere",
                path.display(),
                parent.display(),
                shell_word(&parent.display().to_string())
            );
        }
    }
    Ok(())
}

/// An argument as a shell would need it written.
fn shell_word(a: &str) -> String {
    if !a.is_empty()
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c))
    {
        a.to_string()
    } else {
        format!("'{}'", a.replace('\'', "'\\''"))
    }
}

/// `N` (message N of the first input) or `FILE:N`.
fn parse_which(spec: &str) -> Result<Which> {
    let (source, n) = match spec.rsplit_once(':') {
        Some((f, n)) => (Some(f.to_string()), n),
        None => (None, spec),
    };
    let index: usize = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        Usage(format!(
            "--explain `{spec}`: N must be a message number from 1"
        ))
    })?;
    Ok(Which { source, index })
}

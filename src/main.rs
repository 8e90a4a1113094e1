//! The `popsplit` binary: flags, progress bar and exit codes; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Header parsing allocates many short-lived strings on every worker thread; mimalloc's
/// per-thread free lists serve them faster than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use popsplit::corrections::Corrections;
use popsplit::decide::Policy;
use popsplit::deliver::SyncPolicy;
use popsplit::directory::Directory;
use popsplit::profile::Overrides;
use popsplit::source::Format;
use popsplit::split::{self, Config, Output, Which};

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
    /// Write what the migration needs for the folders of a split's --out: a Dovecot
    /// passwd-file and configuration, an imapsync batch file, a Microsoft 365 CSV.
    Handover(HandoverArgs),
}

#[derive(clap::Args)]
struct HandoverArgs {
    /// The --out of a split.
    #[arg(value_name = "OUT")]
    out: PathBuf,
    /// Folder to write the files into (created 0700; existing files are never replaced).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// The office's mail domain, for the users' new addresses.
    #[arg(long = "domain", required = true, value_name = "DOMAIN")]
    domains: Vec<String>,
    /// CSV `address,user`: a user's new address is theirs there.
    #[arg(long, value_name = "CSV")]
    directory: Option<PathBuf>,
    /// Address Dovecot listens on, and imapsync reads from.
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDRESS")]
    listen: String,
    /// Dovecot's IMAP port.
    #[arg(long, default_value_t = 143, value_name = "PORT")]
    port: u16,
    /// The new server's IMAP host, for imapsync.
    #[arg(long, default_value = "outlook.office365.com", value_name = "HOST")]
    host2: String,
    /// The user Dovecot's own processes run as (Debian: dovecot); it owns the passwd file.
    #[arg(long, default_value = "dovecot", value_name = "USER")]
    dovecot_user: String,
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
    /// The catch-all account itself (repeatable): never a recipient in envelope fields, even when the directory maps it to a user.
    #[arg(long = "shared-box", value_name = "ADDRESS")]
    shared_boxes: Vec<String>,
    /// Run even when a --domain names no address in the mailbox (otherwise a likely typo stops the run).
    #[arg(long = "allow-unseen-domain")]
    allow_unseen_domain: bool,
    /// Worker threads (default: all cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
    /// How to read the inputs (default: detected from the path and the bytes).
    #[arg(long = "input-format", value_enum, default_value = "auto")]
    input_format: Format,
    /// Folder for the file a gzip'd input is inflated into (default: TMPDIR, or /tmp).
    #[arg(long = "temp-dir", value_name = "DIR")]
    temp_dir: Option<PathBuf>,
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
    /// CSV `message,users` of a person's decisions: each named message (Message-ID or the
    /// report's source:index) goes exactly to those users (or `_unassigned`), as `reviewed`.
    #[arg(long, value_name = "FILE")]
    corrections: Option<PathBuf>,
    /// How copies are made durable: `batch` (one file-system sync before and one after
    /// each batch's renames), `file` (fsync per file and folder) or `none`.
    #[arg(long, value_enum, default_value = "batch")]
    sync: SyncPolicy,
}

/// Said on SIGBUS before exiting: an input mapped in memory lost pages, which only a
/// truncation by another process does (a change is otherwise caught between batches).
const SIGBUS_TEXT: &[u8] = b"popsplit: error: an input mailbox was truncated by another process while popsplit read it (SIGBUS on its memory map). What reached the output is complete; stop the other process (or copy the mailbox) and rerun the same command to finish.\n";

extern "C" fn on_sigbus(_: libc::c_int) {
    // SAFETY: write(2) and _exit(2) are async-signal-safe; the text is a static.
    unsafe {
        libc::write(2, SIGBUS_TEXT.as_ptr().cast(), SIGBUS_TEXT.len());
        libc::_exit(1);
    }
}

/// Exits with [`SIGBUS_TEXT`] instead of dying of the signal without a word.
fn say_why_on_sigbus() {
    // SAFETY: installs a handler that only calls async-signal-safe functions; the zeroed
    // sigaction is a valid "no flags, empty mask" value.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_sigbus as *const () as libc::sighandler_t;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
    }
}

fn main() -> ExitCode {
    say_why_on_sigbus();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Split(args) => run_split(args),
        Command::Profile(args) => run_profile(args),
        Command::Handover(args) => run_handover(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("popsplit: error: {}", describe(&e));
            ExitCode::FAILURE
        }
    }
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

fn run_handover(args: HandoverArgs) -> Result<()> {
    let domains: Vec<String> = args
        .domains
        .iter()
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    let directory = match &args.directory {
        Some(path) => Directory::from_csv(&domains, path)?,
        None => Directory::open(&domains),
    };
    let target = popsplit::handover::Target {
        listen: args.listen,
        port: args.port,
        host2: args.host2,
        server_user: args.dovecot_user,
    };
    let handed = popsplit::handover::write(&args.out, &args.to, &directory, &target)?;
    println!(
        "{} Dovecot logins (one a folder), {} people for imapsync and Microsoft 365:",
        handed.logins.len(),
        handed.people.len()
    );
    for (user, address) in &handed.people {
        println!("  {user} -> {}", popsplit::sanitize::one_line(address));
    }
    for f in &handed.files {
        println!("wrote {} (0600)", f.display());
    }
    Ok(())
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
        bail!("--domain `{bad}` is not a domain name");
    }
    let directory = match &args.directory {
        Some(path) => Directory::from_csv(&domains, path)?,
        None => Directory::open(&domains),
    };
    let overrides = Overrides {
        envelope_headers: args.envelope_headers.clone(),
        trusted_relays: args.trusted_relays.clone(),
        strip_prefixes: args.strip_prefixes.clone(),
        shared_boxes: args.shared_boxes.clone(),
        allow_unseen_domain: args.allow_unseen_domain,
    };
    Ok((directory, overrides))
}

/// `--temp-dir`, or the system's folder for temporary files.
fn temp_dir(args: &MailboxArgs) -> PathBuf {
    args.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
}

/// The worker pool; `--jobs` beyond four threads a core is cut there, with a note: workers
/// parse and decide (CPU work), so threads past the cores only cost memory and switching
/// (100,000 took 100 s and 948 MB on the sample); a few past them are harmless, and let a
/// run check that the decisions do not depend on the thread count.
fn pool(jobs: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = jobs {
        if n == 0 {
            bail!("--jobs must be at least 1");
        }
        let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
        let most = 4 * cores;
        if n > most {
            eprintln!(
                "popsplit: note: --jobs {n} is more than four threads for each of the {cores} cores; using {most}"
            );
        }
        pool = pool.num_threads(n.min(most));
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
            &temp_dir(&args),
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
        bail!(
            "--unassigned `{u}` must start with `_` and hold only letters, digits, `.`, `_` and `-` (user folders never start with `_`)"
        );
    }
    if u == split::DUPLICATES {
        bail!("--unassigned cannot be `{u}`: popsplit keeps duplicate copies there");
    }
    let (directory, overrides) = office(&args.mailbox)?;
    let corrections = match &args.corrections {
        Some(path) => Some(Corrections::from_csv(path, &directory, &args.unassigned)?),
        None => None,
    };
    let config = Config {
        inputs: args.mailbox.inputs.clone(),
        out: args.out,
        directory,
        directory_file: args.mailbox.directory.clone(),
        unassigned: args.unassigned,
        report: args.report,
        dry_run: args.dry_run,
        policy: Policy::default(),
        overrides,
        format: args.mailbox.input_format,
        temp_dir: temp_dir(&args.mailbox),
        output: args.format,
        html: args.html,
        command: std::env::args()
            .map(|a| shell_word(&a))
            .collect::<Vec<_>>()
            .join(" "),
        sync: args.sync,
        corrections,
    };
    let pool = pool(args.mailbox.jobs)?;
    if let Some(spec) = &args.explain {
        let which = parse_which(spec)?;
        print!("{}", pool.install(|| split::explain(&config, which))?);
        return Ok(());
    }
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
    for line in &outcome.would {
        println!("{}", popsplit::sanitize::one_line(line));
    }
    print!("{}", outcome.summary.table(config.dry_run));
    println!();
    print!("{}", outcome.summary.figures_table());
    if outcome.unclaimed > 0 {
        println!(
            "{} copies an earlier run wrote into --out belong to no message decided now (not in these inputs, or set aside in _duplicates): left alone",
            outcome.unclaimed
        );
    }
    for (folder, address) in config.directory.renamed(outcome.summary.per_user.keys()) {
        println!(
            "folder {folder} is for {}: a folder name holds only a-z, 0-9, `.`, `_` and `-`, so it carries a hash to stay apart from other names",
            popsplit::sanitize::one_line(&address)
        );
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
    let index: usize = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .with_context(|| format!("--explain `{spec}`: N must be a message number from 1"))?;
    Ok(Which { source, index })
}

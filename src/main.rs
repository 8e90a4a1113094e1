//! The `popsplit` binary: flags, progress bar and exit codes; the work is in the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Header parsing allocates many short-lived strings on every worker thread; mimalloc's
/// per-thread free lists serve them faster than the system allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use popsplit::config::{Config, FolderName, Jobs, OutputFormat};
use popsplit::decide::Policy;
use popsplit::decide::corrections::Corrections;
use popsplit::decide::directory::{Directory, DirectoryError};
use popsplit::decide::profile::Overrides;
use popsplit::input::InputFormat;
use popsplit::output::maildir::SyncPolicy;
use popsplit::run::{self, SplitError, Which};

/// Give every person their own mail back from a shared POP (catch-all) mailbox.
#[derive(Parser)]
#[command(name = "popsplit", version, after_help = TOP_EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const TOP_EXAMPLES: &str = "\
Examples:
  popsplit profile shared.mbox -d example.com
  popsplit split shared.mbox -d example.com --directory users.csv -o /srv/mail --report run.jsonl
  popsplit explain shared.mbox -d example.com 8

Exit status: 0 done; 1 the run could not finish; 2 a command-line mistake; 130 or 143
stopped by Ctrl-C or SIGTERM (rerun the same command to finish the job).";

const SPLIT_EXAMPLES: &str = "\
Examples:
  # Try first: decide and report, write nothing.
  popsplit split shared.mbox -d example.com --directory users.csv -o /srv/mail -n --report try.jsonl
  # The real run, with an audit page; rerunning it adds nothing twice.
  popsplit split shared.mbox -d example.com --directory users.csv -o /srv/mail --report run.jsonl --html audit.html
  # A Thunderbird profile's folder, two office domains, one mbox file per user.
  popsplit split ~/.thunderbird/x.default/Mail/pop.isp.example -d example.com -d example.org -o out --output-format mbox";

const PROFILE_EXAMPLES: &str = "\
Examples:
  popsplit profile shared.mbox -d example.com
  popsplit profile shared.mbox.gz -d example.com --directory users.csv --json";

const EXPLAIN_EXAMPLES: &str = "\
Examples:
  # Message 8 of the first input (the `index` of a report row).
  popsplit explain shared.mbox -d example.com 8
  # A report row's `source` and `index`, also a Maildir or .eml file's.
  popsplit explain old.mbox new.mbox -d example.com new.mbox:120
  popsplit explain Maildir -d example.com Maildir/cur/1551430800.M1.host:2,S:1
  # By Message-ID.
  popsplit explain shared.mbox -d example.com '<s08@lottery.example.biz>'";

#[derive(Subcommand)]
enum Command {
    /// Split exported shared mailboxes into one Maildir (or mbox) per user.
    #[command(after_help = SPLIT_EXAMPLES)]
    Split(SplitArgs),
    /// Show what popsplit learns from the mailboxes before deciding anything.
    #[command(after_help = PROFILE_EXAMPLES)]
    Profile(ProfileArgs),
    /// Show, for one message, every piece of evidence and why it went where it went.
    #[command(
        after_help = EXPLAIN_EXAMPLES,
        override_usage = "popsplit explain <INPUT>... <N | FILE:N | MESSAGE-ID> --domain <DOMAIN> [OPTIONS]"
    )]
    Explain(ExplainArgs),
    /// Print a completion script for a shell.
    #[command(
        after_help = "Examples:\n  popsplit completions bash > /etc/bash_completion.d/popsplit\n  popsplit completions zsh > ~/.zfunc/_popsplit"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command into a folder.
    #[command(
        after_help = "Examples:\n  popsplit man | man -l -\n  popsplit man /usr/local/share/man/man1"
    )]
    Man {
        /// Write popsplit.1 and a page per command here instead of printing popsplit.1.
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Write what the migration needs for the folders of a split's --out: a Dovecot
    /// passwd-file and configuration, an imapsync batch file, a Microsoft 365 CSV.
    #[command(
        after_help = "Examples:\n  popsplit handover out --to handover -d example.com --directory directory.csv"
    )]
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
    #[arg(short, long = "domain", required = true, value_name = "DOMAIN")]
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

/// The mailboxes and the office, as `split` and `profile` take them.
#[derive(clap::Args)]
struct MailboxArgs {
    /// Exported shared mailboxes: mbox (also .gz, .xz, .bz2, .zst), Maildir, .eml folders, Outlook .pst, or folders of them (read-only).
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    office: OfficeArgs,
}

/// What every command needs to know about the office and how to read its mailboxes.
#[derive(clap::Args)]
struct OfficeArgs {
    /// The office's own mail domain; repeat for each (case-insensitive).
    #[arg(short, long = "domain", required = true, value_name = "DOMAIN")]
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
    #[arg(short, long, value_name = "N")]
    jobs: Option<usize>,
    /// How to read the inputs (default: detected from the path and the bytes).
    #[arg(long = "input-format", value_enum, default_value = "auto")]
    input_format: InputFormat,
    /// Folder for the file a gzip'd input is inflated into (default: TMPDIR, or /tmp).
    #[arg(long = "temp-dir", value_name = "DIR")]
    temp_dir: Option<PathBuf>,
}

#[derive(clap::Args)]
struct SplitArgs {
    /// Folder that receives one Maildir per user (created if missing; existing mail is kept).
    #[arg(short, long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    mailbox: MailboxArgs,
    /// Folder for messages whose evidence names no user (must start with `_`).
    #[arg(long, value_name = "NAME", default_value = "_unassigned")]
    unassigned: String,
    /// Write a JSON Lines report: one object per input message, with all its evidence.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Decide and report, but write no Maildir.
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Write a self-contained HTML audit page for the office.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print everything considered for message N of the first input (or FILE:N) and stop
    /// (as `popsplit explain` does).
    #[arg(long, value_name = "N")]
    explain: Option<String>,
    /// What to write: one Maildir per user, or one mboxrd file per user.
    #[arg(
        long = "output-format",
        alias = "format",
        value_enum,
        default_value = "maildir"
    )]
    output_format: OutputFormat,
    /// CSV `message,users` of a person's decisions: each named message (Message-ID or the
    /// report's source:index) goes exactly to those users (or `_unassigned`), as `reviewed`.
    #[arg(long, value_name = "FILE")]
    corrections: Option<PathBuf>,
    /// How copies are made durable: `batch` (one file-system sync before and one after
    /// each commit's renames), `file` (fsync per file and folder) or `none`.
    #[arg(long, value_enum, default_value = "batch")]
    sync: SyncPolicy,
    /// Commit the written copies (under `--sync batch`: sync, move into cur/, sync) at
    /// least every N messages, and also every 128 MB, every 5 seconds and once after the
    /// first batch: fewer means less to redo after a crash and report rows sooner, more
    /// means fewer syncs.
    #[arg(long, value_name = "N", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..))]
    commit_every: u32,
    /// Print nothing but errors and notes on skipped files: no progress, profile or table.
    #[arg(short, long)]
    quiet: bool,
    /// Put every copy in the user's INBOX. By default the shared box's folders are kept:
    /// a message from its `Archive` folder (Thunderbird `Inbox.sbd/Archive`, Maildir++
    /// `.Archive`, an Outlook folder) goes to the user's Maildir++ folder `.Archive`.
    /// mbox output is always flat.
    #[arg(long)]
    flatten: bool,
}

#[derive(clap::Args)]
struct ProfileArgs {
    #[command(flatten)]
    mailbox: MailboxArgs,
    /// Print the profile as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct ExplainArgs {
    /// The mailboxes, then which message: N (of the first input), FILE:N (a report row's
    /// `source` and `index`), or its Message-ID. One list, because the mailboxes are
    /// told from the message only by their place: the last.
    #[arg(required = true, value_name = "INPUT... WHICH")]
    args: Vec<PathBuf>,
    #[command(flatten)]
    office: OfficeArgs,
    /// Folder for messages whose evidence names no user, as in `split`.
    #[arg(long, value_name = "NAME", default_value = "_unassigned")]
    unassigned: String,
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

/// Prints to standard output. A reader that went away (`popsplit profile … | head`) ends
/// the program quietly, as it ends other Unix tools, instead of the panic `print!` gives.
macro_rules! out {
    ($($arg:tt)*) => {
        std::io::Write::write_fmt(&mut std::io::stdout().lock(), format_args!($($arg)*))
            .map_err(stdout_error)?
    };
}

/// [`out!`] with a line end.
macro_rules! outln {
    () => {
        out!("\n")
    };
    ($($arg:tt)*) => {
        out!("{}\n", format_args!($($arg)*))
    };
}

/// Standard output was closed by its reader: not an error of the run.
#[derive(Debug, thiserror::Error)]
#[error("standard output was closed")]
struct StdoutClosed;

/// The error for a failed write to standard output.
fn stdout_error(e: std::io::Error) -> anyhow::Error {
    match e.kind() {
        std::io::ErrorKind::BrokenPipe => StdoutClosed.into(),
        _ => anyhow::Error::new(e).context("writing to standard output"),
    }
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
    popsplit::run::pages::small_pages();
    popsplit::output::outfs::room_for_unnamed();
    say_why_on_sigbus();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Split(args) => run_split(args),
        Command::Profile(args) => run_profile(args),
        Command::Explain(args) => run_explain(args),
        Command::Completions { shell } => run_completions(shell),
        Command::Man { dir } => run_man(dir),
        Command::Handover(args) => run_handover(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.chain().any(|c| c.is::<StdoutClosed>()) => ExitCode::SUCCESS,
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
    let target = popsplit::output::handover::Target {
        listen: args.listen,
        port: args.port,
        host2: args.host2,
        server_user: args.dovecot_user,
    };
    let handed = popsplit::output::handover::write(&args.out, &args.to, &directory, &target)?;
    outln!(
        "{} Dovecot logins (one a folder), {} people for imapsync and Microsoft 365:",
        handed.logins.len(),
        handed.people.len()
    );
    for (user, address) in &handed.people {
        outln!("  {user} -> {}", popsplit::text::one_line(address));
    }
    for f in &handed.files {
        outln!("wrote {} (0600)", f.display());
    }
    Ok(())
}

/// The office's directory and the admin's overrides, from the flags.
fn office(args: &OfficeArgs, inputs: &[PathBuf]) -> Result<(Directory, Overrides)> {
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
    check_inputs(inputs)?;
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
fn temp_dir(args: &OfficeArgs) -> PathBuf {
    args.temp_dir.clone().unwrap_or_else(std::env::temp_dir)
}

/// The worker pool; `--jobs` beyond four threads a core is cut there, with a note: workers
/// parse and decide (CPU work), so threads past the cores only cost memory and switching
/// (100,000 took 100 s and 948 MB on the sample); a few past them are harmless, and let a
/// run check that the decisions do not depend on the thread count.
fn pool(jobs: Option<Jobs>) -> Result<rayon::ThreadPool> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = jobs.map(Jobs::get) {
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

fn run_profile(args: ProfileArgs) -> Result<()> {
    let mailbox = &args.mailbox;
    let (directory, overrides) = office(&mailbox.office, &mailbox.inputs)?;
    let bar = progress_bar(&mailbox.inputs, 1)?;
    let profile = pool(jobs(&mailbox.office)?)?.install(|| -> Result<_> {
        let run::Learned {
            skipped, profile, ..
        } = run::open_and_learn(
            &mailbox.inputs,
            mailbox.office.input_format,
            &temp_dir(&mailbox.office),
            &directory,
            &overrides,
            &|phase, n| {
                bar.set_message(phase);
                bar.inc(n)
            },
        )?;
        for s in &skipped {
            eprintln!("popsplit: note: {}", popsplit::text::one_line(s));
        }
        Ok(profile)
    });
    bar.finish_and_clear();
    let profile = profile?;
    if args.json {
        outln!(
            "{}",
            serde_json::to_string(&profile).context("writing the profile as JSON")?
        );
    } else {
        out!("{}", profile.describe(&directory));
    }
    Ok(())
}

/// The `--unassigned` folder, checked.
fn unassigned(name: &str) -> Result<FolderName> {
    FolderName::unassigned(name).map_err(|e| Usage(e.to_string()).into())
}

/// The `--jobs` count, checked.
fn jobs(office: &OfficeArgs) -> Result<Option<Jobs>> {
    office
        .jobs
        .map(Jobs::new)
        .transpose()
        .map_err(|e| Usage(e.to_string()).into())
}

/// The command line, as the audit page shows it.
fn command_line() -> String {
    std::env::args()
        .map(|a| shell_word(&a))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_explain(args: ExplainArgs) -> Result<()> {
    let unassigned = unassigned(&args.unassigned)?;
    let mut inputs = args.args;
    let spec = inputs.pop().unwrap_or_default();
    if inputs.is_empty() {
        usage!(
            "explain needs the mailboxes, then which message: `popsplit explain shared.mbox -d example.com 8`"
        );
    }
    let which = parse_which(&spec.to_string_lossy(), "explain")?;
    let (directory, overrides) = office(&args.office, &inputs)?;
    let config = Config {
        inputs,
        // explain writes nothing.
        out: PathBuf::new(),
        directory,
        directory_file: args.office.directory.clone(),
        unassigned,
        report: None,
        dry_run: true,
        policy: Policy::default(),
        overrides,
        format: args.office.input_format,
        temp_dir: temp_dir(&args.office),
        output: OutputFormat::Maildir,
        html: None,
        command: command_line(),
        sync: SyncPolicy::None,
        commit_every: 1,
        corrections: None,
        flatten: false,
    };
    let text = pool(jobs(&args.office)?)?.install(|| run::explain(&config, which))?;
    out!("{text}");
    Ok(())
}

fn run_split(args: SplitArgs) -> Result<()> {
    let unassigned = unassigned(&args.unassigned)?;
    let (directory, overrides) = office(&args.mailbox.office, &args.mailbox.inputs)?;
    if args.explain.is_none() {
        check_outputs(&args)?;
    }
    let corrections = match &args.corrections {
        Some(path) => Some(Corrections::from_csv(
            path,
            &directory,
            unassigned.as_str(),
        )?),
        None => None,
    };
    let config = Config {
        inputs: args.mailbox.inputs.clone(),
        out: args.out,
        directory,
        directory_file: args.mailbox.office.directory.clone(),
        unassigned,
        report: args.report,
        dry_run: args.dry_run,
        policy: Policy::default(),
        overrides,
        format: args.mailbox.office.input_format,
        temp_dir: temp_dir(&args.mailbox.office),
        output: args.output_format,
        html: args.html,
        command: command_line(),
        sync: args.sync,
        commit_every: args.commit_every as usize,
        corrections,
        flatten: args.flatten,
    };
    let pool = pool(jobs(&args.mailbox.office)?)?;
    if let Some(spec) = &args.explain {
        let which = parse_which(spec, "--explain")?;
        out!("{}", pool.install(|| run::explain(&config, which))?);
        return Ok(());
    }
    popsplit::run::interrupt::install().context("handling Ctrl-C")?;
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        progress_bar(&config.inputs, 3)?
    };
    let outcome = pool.install(|| {
        run::run(&config, &|phase, n| {
            bar.set_message(phase);
            bar.inc(n)
        })
    });
    bar.finish_and_clear();
    let outcome = outcome?;
    for s in &outcome.skipped {
        eprintln!("popsplit: note: {}", popsplit::text::one_line(s));
    }
    if !outcome.earlier.is_empty() {
        let shown: Vec<String> = outcome
            .earlier
            .iter()
            .take(10)
            .map(|n| popsplit::text::one_line(n))
            .collect();
        eprintln!(
            "popsplit: note: {} also holds {} that --directory has no user for ({}{}), from an earlier run with another directory: popsplit moved its own copies of the messages decided now to their folders; what is left there (files popsplit did not write, messages not in these inputs) is not touched: check it",
            config.out.display(),
            popsplit::text::count(outcome.earlier.len() as u64, "folder", "folders"),
            shown.join(", "),
            if outcome.earlier.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        );
    }
    if !args.quiet {
        out!("{}", outcome.profile.describe(&config.directory));
        outln!();
        for line in &outcome.would {
            outln!("{}", popsplit::text::one_line(line));
        }
        out!("{}", outcome.summary.table(config.dry_run));
        outln!();
        out!("{}", outcome.summary.figures_table());
        if outcome.unclaimed > 0 {
            outln!(
                "{} an earlier run wrote into --out belong to no message decided now (not in these inputs, or set aside in _duplicates): left alone",
                popsplit::text::count(outcome.unclaimed as u64, "copy", "copies")
            );
        }
        for (folder, address) in config.directory.renamed(outcome.summary.per_user.keys()) {
            outln!(
                "folder {folder} is for {}: a folder name holds only a-z, 0-9, `.`, `_` and `-`, so it carries a hash to stay apart from other names",
                popsplit::text::one_line(&address)
            );
        }
    }
    Ok(())
}

/// Prints a completion script for `shell`, made from the flags' definitions.
fn run_completions(shell: clap_complete::Shell) -> Result<()> {
    // Generated in memory: clap_complete panics when its writer fails.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "popsplit", &mut script);
    std::io::Write::write_all(&mut std::io::stdout().lock(), &script).map_err(stdout_error)
}

/// Prints the manual page, or writes a page per command into `dir`.
fn run_man(dir: Option<PathBuf>) -> Result<()> {
    let cmd = Cli::command();
    match dir {
        Some(dir) => {
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("writing manual pages into {}", dir.display()))?;
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .context("rendering the manual page")?;
            std::io::Write::write_all(&mut std::io::stdout().lock(), &page)
                .map_err(stdout_error)?;
        }
    }
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

/// `N` (message N of the first input), `FILE:N`, or a Message-ID (`<id@host>`, the
/// brackets optional); `flag` names where it was given.
fn parse_which(spec: &str, flag: &str) -> Result<Which> {
    let spec = spec.trim();
    if spec.starts_with('<') || (spec.contains('@') && !spec.contains(':')) {
        let id = spec.trim_start_matches('<').trim_end_matches('>');
        return Ok(Which::MessageId(format!("<{id}>")));
    }
    let (source, n) = match spec.rsplit_once(':') {
        Some((f, n)) => (Some(f.to_string()), n),
        None => (None, spec),
    };
    let index: usize = n.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
        Usage(format!(
            "{flag} `{spec}`: give a message number from 1 (N), a report row's source and index (FILE:N), or a Message-ID"
        ))
    })?;
    Ok(Which::Number { source, index })
}

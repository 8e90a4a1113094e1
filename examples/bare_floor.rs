//! The bare floor of the speed benchmark: the least work any mbox splitter that writes a
//! Maildir must do, and none of popsplit's code (it does not call the library). It splits
//! the mbox at every line that starts with `From ` and ends with a year (memchr; the year
//! tells a separator from a body line such as `From what I hear`, which the generated
//! mailboxes hold, as real ones do), writes each message once,
//! unchanged but for its `From ` line, into one Maildir's `tmp/`, renames it into `new/`,
//! and makes everything durable with one `syncfs` at the end. One thread, one pass over
//! the input, whose pages it gives back as it goes.
//!
//! Its files are named `N.floor`, shorter than any Maildir writer's names. With
//! `--maildir-names` they are named as Dovecot's delivery agent names them
//! (`secs.MmicrosPpidQn.host,S=size`, 50-odd characters): the same work but for the
//! length of the directory entries, which on a large output decides how many directory
//! blocks each journal commit writes.
//!
//! `cargo run --release --example bare_floor -- IN.mbox OUT_DIR [--maildir-names]`

use std::fs;
use std::io::Write;
use std::path::Path;

const PAGE: usize = 4096;

/// Bytes of the input read and written between two gives-back of its pages.
const RELEASE_EVERY: usize = 16 << 20;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bare_floor IN.mbox OUT_DIR [--maildir-names]");
        std::process::exit(2);
    };
    let maildir_names = args.get(3).is_some_and(|a| a == "--maildir-names");
    let pid = std::process::id();
    let file = fs::File::open(input)?;
    // SAFETY: read-only map of a benchmark input nobody else writes.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let base = Path::new(out).join("all");
    for d in ["tmp", "new", "cur"] {
        fs::create_dir_all(base.join(d))?;
    }
    let (tmp, new) = (base.join("tmp"), base.join("new"));
    let finder = memchr::memmem::Finder::new(b"\nFrom ");
    let separators = finder
        .find_iter(&map)
        .map(|i| i + 1)
        .filter(|&at| ends_with_year(&map[at..]));
    // Where the message being read starts; none until the first separator when the file
    // does not start with one.
    let mut from = map.starts_with(b"From ").then_some(0);
    let mut count = 0usize;
    let mut released = 0usize;
    for end in separators.chain([map.len()]) {
        let Some(start) = from.replace(end) else {
            continue;
        };
        let msg = &map[start..end];
        // Drop the separator line; the message is what follows it.
        let Some(nl) = memchr::memchr(b'\n', msg) else {
            continue;
        };
        let body = &msg[nl + 1..];
        let name = if maildir_names {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            format!(
                "{}.M{}P{pid}Q{count}.mail.example.com,S={}",
                now.as_secs(),
                now.subsec_micros(),
                body.len()
            )
        } else {
            format!("{count}.floor")
        };
        fs::File::create_new(tmp.join(&name))?.write_all(body)?;
        fs::rename(tmp.join(&name), new.join(&name))?;
        count += 1;
        // Give back the pages written from, as any splitter of a large mailbox must: a map
        // that stays resident holds the whole input in this process's memory (its peak RSS
        // was the input's size), where popsplit's is bounded.
        let page_end = start / PAGE * PAGE;
        if page_end - released >= RELEASE_EVERY {
            // SAFETY: a read-only private map; dropped pages are read again from the file.
            unsafe {
                map.unchecked_advise_range(
                    memmap2::UncheckedAdvice::DontNeed,
                    released,
                    page_end - released,
                )?
            };
            released = page_end;
        }
    }
    rustix::fs::syncfs(fs::File::open(out)?)?;
    println!("{count} messages");
    Ok(())
}

/// Whether the line that starts `rest` ends with four digits (a `From ` line's year).
fn ends_with_year(rest: &[u8]) -> bool {
    let line = &rest[..memchr::memchr(b'\n', rest).unwrap_or(rest.len())];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.len() >= 4 && line[line.len() - 4..].iter().all(u8::is_ascii_digit)
}

//! The bare floor of the speed benchmark: the least work any mbox splitter that writes a
//! Maildir must do, and none of popsplit's code (it does not call the library). It splits
//! the mbox at every line that starts with `From ` and ends with a year (memchr; the year
//! tells a separator from a body line such as `From what I hear`, which the generated
//! mailboxes hold, as real ones do), writes each message once,
//! unchanged but for its `From ` line, into one Maildir's `tmp/`, renames it into `new/`,
//! and makes everything durable with one `syncfs` at the end. One thread.
//!
//! `cargo run --release --example bare_floor -- IN.mbox OUT_DIR`

use std::fs;
use std::io::Write;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: bare_floor IN.mbox OUT_DIR");
        std::process::exit(2);
    };
    let file = fs::File::open(input)?;
    // SAFETY: read-only map of a benchmark input nobody else writes.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let base = Path::new(out).join("all");
    for d in ["tmp", "new", "cur"] {
        fs::create_dir_all(base.join(d))?;
    }
    let (tmp, new) = (base.join("tmp"), base.join("new"));
    let finder = memchr::memmem::Finder::new(b"\nFrom ");
    let mut starts: Vec<usize> = Vec::new();
    if map.starts_with(b"From ") {
        starts.push(0);
    }
    starts.extend(
        finder
            .find_iter(&map)
            .map(|i| i + 1)
            .filter(|&at| ends_with_year(&map[at..])),
    );
    starts.push(map.len());
    let mut count = 0usize;
    for w in starts.windows(2) {
        let msg = &map[w[0]..w[1]];
        // Drop the separator line; the message is what follows it.
        let body = match memchr::memchr(b'\n', msg) {
            Some(nl) => &msg[nl + 1..],
            None => continue,
        };
        let name = format!("{count}.floor");
        fs::File::create_new(tmp.join(&name))?.write_all(body)?;
        fs::rename(tmp.join(&name), new.join(&name))?;
        count += 1;
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

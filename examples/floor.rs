//! The floor of the speed benchmark: the least work any splitter must do. It splits an
//! mbox with popsplit's own splitter and writes every message, unchanged, to one Maildir,
//! under the same durability policy as `popsplit split --sync batch` (files written in
//! tmp/, one syncfs, renames, one syncfs per batch of 1,024) — and nothing else: no header
//! parsing, no decisions, no second pass.
//!
//! `cargo run --release --example floor -- IN.mbox OUT_DIR [batch|none]`

use std::fs;
use std::io::Write;
use std::path::Path;

use popsplit::mbox::{Splitter, unquote};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(input), Some(out)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: floor IN.mbox OUT_DIR [batch|none]");
        std::process::exit(2);
    };
    let sync = args.get(3).map(String::as_str) != Some("none");
    let file = fs::File::open(input)?;
    // SAFETY: read-only map of a benchmark input nobody else writes.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let base = Path::new(out).join("all");
    for d in ["tmp", "new", "cur"] {
        fs::create_dir_all(base.join(d))?;
    }
    let root = fs::File::open(out)?;
    let spans: Vec<_> = Splitter::new(&map)
        .map_err(std::io::Error::other)?
        .collect();
    for (b, batch) in spans.chunks(1024).enumerate() {
        let mut names = Vec::with_capacity(batch.len());
        for (i, span) in batch.iter().enumerate() {
            let name = format!("{b}.{i}.floor");
            let tmp = base.join("tmp").join(&name);
            fs::File::create(&tmp)?.write_all(&unquote(&map[span.content.clone()]))?;
            names.push((tmp, base.join("cur").join(format!("{name}:2,"))));
        }
        if sync {
            rustix::fs::syncfs(&root)?;
        }
        for (tmp, cur) in names {
            fs::rename(tmp, cur)?;
        }
        if sync {
            rustix::fs::syncfs(&root)?;
        }
    }
    println!("{} messages", spans.len());
    Ok(())
}

//! Writes a generated shared-POP mailbox of about a given size, with its directory, for
//! the speed benchmark: `cargo run --release --example generate -- OUT.mbox MEGABYTES [STYLE]
//! [BODY_BYTES]`. The directory goes beside it as OUT.mbox.csv.

use std::io::{BufWriter, Write};

use synth::{Spec, Style, directory_csv, generate};

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(path), Some(mb)) = (args.get(1), args.get(2).and_then(|m| m.parse::<u64>().ok()))
    else {
        eprintln!(
            "usage: generate OUT.mbox MEGABYTES [postfix|qmail|exim|sendmail|bare] [BODY_BYTES]"
        );
        std::process::exit(2);
    };
    let style = match args.get(3).map(String::as_str) {
        Some("qmail") => Style::Qmail,
        Some("exim") => Style::Exim,
        Some("sendmail") => Style::Sendmail,
        Some("bare") => Style::Bare,
        _ => Style::Postfix,
    };
    // About 40 KB per message by default, the size of mail with small attachments; the
    // generator's per-recipient copies add about a fifth.
    let body_bytes = args
        .get(4)
        .and_then(|b| b.parse::<usize>().ok())
        .unwrap_or(40_000);
    let messages = (mb * 1_000_000 / (body_bytes as u64 * 6 / 5)) as usize;
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let truth = generate(
        &Spec {
            style,
            messages,
            seed: 1,
            per_recipient_copies: true,
            body_bytes,
        },
        &mut out,
    )?;
    out.flush()?;
    std::fs::write(format!("{path}.csv"), directory_csv())?;
    let size = std::fs::metadata(path)?.len();
    println!(
        "{path}: {size} bytes, {} messages ({messages} logical), style {}",
        truth.len(),
        style.name()
    );
    Ok(())
}

//! The source's folders kept in the output: which folder of the shared box an input
//! mailbox is (a Thunderbird `Inbox.sbd/Archive`, a Maildir++ `.Invoices`, an Outlook
//! folder), and its name as a Maildir++ subfolder of each user's Maildir, as Dovecot
//! serves it. Pure: names in, names out; the callers do the file system.
//!
//! Folder names come from the input and are untrusted: every level is made a safe name
//! here, and the whole name stays one bounded file name that starts with `.`.

/// Longest level of a folder name, in characters before encoding; a longer one is cut
/// and keeps a hash of itself, so that two long names stay apart.
const MAX_LEVEL: usize = 60;
/// Longest Maildir++ folder name on disk, in bytes (file names may have 255).
const MAX_NAME: usize = 200;

/// What stands for a character a folder level cannot hold: `.` (Maildir++'s hierarchy
/// separator), `/`, control and invisible format characters, and the IMAP wildcards
/// `*` and `%`.
pub const REPLACEMENT: char = '_';

/// The folder of an input mailbox, as the names of its levels below INBOX (empty for
/// INBOX), from its path relative to the input that was given (`rel`, one entry a path
/// component; empty when the mailbox is the input itself). `inside_file` is the position
/// of the component that is a file holding folders (an Outlook PST, which `readpst`
/// writes as `<top folder>/<folder>/…/mbox`).
///
/// Thunderbird's `X.sbd/` folder holds the subfolders of `X`; a Maildir++ `.A.B` folder
/// is `A` then `B` (its levels decoded from modified UTF-7); a mailbox file's `.mbox` or
/// compression suffix is not part of the name, and a file named `mbox` is its folder
/// (Apple Mail's `Archive.mbox/mbox`). A first level named `Inbox` (any case) is
/// INBOX itself, the Maildir's root, so that its subfolders become top-level folders.
pub fn source_folder(rel: &[&str], inside_file: Option<usize>) -> Vec<String> {
    let parts: Vec<&str> = match inside_file {
        Some(at) => {
            let mut inner: Vec<&str> = rel.iter().skip(at + 1).copied().collect();
            // readpst's mbox file in each folder, and the PST's unnamed top folder.
            if inner.last().is_some_and(|l| l.starts_with("mbox")) {
                inner.pop();
            }
            inner.into_iter().skip(1).collect()
        }
        None => {
            let mut parts = rel.to_vec();
            if parts.last() == Some(&"mbox") {
                parts.pop();
            }
            parts
        }
    };
    let last = parts.len().saturating_sub(1);
    let mut levels: Vec<String> = Vec::new();
    for (i, part) in parts.iter().enumerate() {
        if let Some(dotted) = part.strip_prefix('.') {
            levels.extend(dotted.split('.').map(decode_utf7));
            continue;
        }
        let mut name = part.strip_suffix(".sbd").unwrap_or(part);
        if (i == last && inside_file.is_none()) || name.ends_with(".mbox") {
            name = strip_mailbox_suffix(name);
        }
        levels.push(name.to_string());
    }
    levels.retain(|l| !l.is_empty());
    if levels
        .first()
        .is_some_and(|l| l.eq_ignore_ascii_case("inbox"))
    {
        levels.remove(0);
    }
    levels
}

/// `name` without the suffixes a mailbox file's name carries (`Archive.mbox.gz`).
fn strip_mailbox_suffix(name: &str) -> &str {
    const SUFFIXES: [&str; 6] = [".gz", ".xz", ".bz2", ".zst", ".mbox", ".mbx"];
    let mut name = name;
    while let Some(short) = SUFFIXES.iter().find_map(|s| {
        let cut = name.len().checked_sub(s.len())?;
        (name.is_char_boundary(cut) && name[cut..].eq_ignore_ascii_case(s)).then(|| &name[..cut])
    }) {
        if short.is_empty() {
            break;
        }
        name = short;
    }
    name
}

/// The Maildir++ subfolder of `levels` (`.Archive.2019`), or `""` for INBOX (no levels).
/// Each level is made safe ([`level_name`]) and written in IMAP's modified UTF-7
/// (RFC 3501 5.1.3), the form Dovecot keeps on disk; a name too long for a file name
/// keeps its first levels and a hash of the rest as its last level.
pub fn maildir_name(levels: &[String]) -> String {
    let mut out = String::new();
    for (i, level) in levels.iter().enumerate() {
        let encoded = encode_utf7(&level_name(level));
        if out.len() + 1 + encoded.len() > MAX_NAME - 20 {
            let rest = levels[i..].join("\0");
            out.push_str(".more-");
            out.push_str(&blake3::hash(rest.as_bytes()).to_hex()[..12]);
            break;
        }
        out.push('.');
        out.push_str(&encoded);
    }
    out
}

/// One level of a folder name made safe: [`REPLACEMENT`] for `.`, `/`, `*`, `%` and
/// control or invisible characters (so `..` cannot name a parent, nor a level add a
/// level); at most [`MAX_LEVEL`] characters; never empty.
pub fn level_name(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .map(|c| match c {
            '.' | '/' | '*' | '%' => REPLACEMENT,
            c if c.is_control() || crate::text::is_format(c) => REPLACEMENT,
            c => c,
        })
        .collect();
    if out.trim().is_empty() {
        out = REPLACEMENT.to_string();
    }
    if out.chars().count() > MAX_LEVEL {
        let digest = blake3::hash(raw.as_bytes()).to_hex();
        out = out.chars().take(MAX_LEVEL - 11).collect();
        out.push('-');
        out.push_str(&digest[..10]);
    }
    out
}

/// Modified base64 of RFC 3501 5.1.3: `,` instead of `/`, no padding.
const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// `text` in IMAP's modified UTF-7: printable ASCII as itself (`&` as `&-`), every other
/// run of characters as `&`, the modified base64 of its UTF-16, `-`.
pub fn encode_utf7(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, out: &mut String| {
        if run.is_empty() {
            return;
        }
        let bytes: Vec<u8> = run.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let sextets = chunk.len() + 1;
            for k in 0..sextets {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        out.push('-');
        run.clear();
    };
    for c in text.chars() {
        match c {
            '&' => {
                flush(&mut run, &mut out);
                out.push_str("&-");
            }
            ' '..='~' => {
                flush(&mut run, &mut out);
                out.push(c);
            }
            _ => {
                let mut units = [0u16; 2];
                run.extend_from_slice(c.encode_utf16(&mut units));
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A level of a Maildir++ folder name on disk decoded from modified UTF-7; a part that
/// is not valid modified UTF-7 is kept as it is.
pub fn decode_utf7(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let Some(end) = after.find('-') else {
            out.push_str(&rest[at..]);
            return out;
        };
        let run = &after[..end];
        if run.is_empty() {
            out.push('&');
        } else {
            match decode_run(run) {
                Some(text) => out.push_str(&text),
                None => out.push_str(&rest[at..at + 2 + end]),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The text of one modified base64 run (between `&` and `-`).
fn decode_run(run: &str) -> Option<String> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut bytes = Vec::new();
    for c in run.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            bytes.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    let units: Vec<u16> = bytes
        .chunks(2)
        .map(|p| (p.len() == 2).then(|| u16::from_be_bytes([p[0], p[1]])))
        .collect::<Option<_>>()?;
    String::from_utf16(&units).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(rel: &str, inside_file: Option<usize>) -> Vec<String> {
        let parts: Vec<&str> = rel.split('/').filter(|p| !p.is_empty()).collect();
        source_folder(&parts, inside_file)
    }

    fn name(rel: &str) -> String {
        maildir_name(&folder(rel, None))
    }

    #[test]
    fn thunderbird_folders_nest_under_inbox() {
        assert_eq!(name(""), "");
        assert_eq!(name("Inbox"), "");
        assert_eq!(name("INBOX"), "");
        assert_eq!(name("Inbox.sbd/Archive"), ".Archive");
        assert_eq!(name("Inbox.sbd/Archive.sbd/2019"), ".Archive.2019");
        assert_eq!(name("Sent"), ".Sent");
        assert_eq!(name("Archive.sbd/2019"), ".Archive.2019");
        assert_eq!(
            name("Local Folders/Archive.sbd/2019"),
            ".Local Folders.Archive.2019"
        );
        assert_eq!(name("Archive.mbox.gz"), ".Archive");
        // Apple Mail's export: a folder `X.mbox` holding the file `mbox`.
        assert_eq!(name("mbox"), "");
        assert_eq!(name("Archive.mbox/mbox"), ".Archive");
        assert_eq!(name("Archive.mbox/2019.mbox/mbox"), ".Archive.2019");
    }

    #[test]
    fn maildir_plus_plus_names_keep_their_levels() {
        assert_eq!(name(".Invoices"), ".Invoices");
        assert_eq!(name(".Archive.2019"), ".Archive.2019");
        assert_eq!(folder(".Archive.2019", None), ["Archive", "2019"]);
        assert_eq!(folder(".Rechnungen &AMQ-", None), ["Rechnungen Ä"]);
        assert_eq!(name(".Rechnungen &AMQ-"), ".Rechnungen &AMQ-");
        // A Maildir found inside a folder of mailboxes is a folder of its own name.
        assert_eq!(name("old/Maildir/.Sent"), ".old.Maildir.Sent");
    }

    #[test]
    fn outlook_folders_drop_the_top_folder_and_readpst_file() {
        let pst = |rel| maildir_name(&folder(rel, Some(0)));
        assert_eq!(pst("Outlook.pst/Outlook/Inbox/mbox"), "");
        assert_eq!(pst("Outlook.pst/Outlook/Inbox/Invoices/mbox"), ".Invoices");
        assert_eq!(pst("Outlook.pst/Outlook/Sent Items/mbox"), ".Sent Items");
        assert_eq!(
            pst("Outlook.pst/Personal Folders/Archive/2019/mbox"),
            ".Archive.2019"
        );
        let inner = folder("old/Outlook.pst/Outlook/Sent Items/mbox", Some(1));
        assert_eq!(inner, ["Sent Items"]);
    }

    #[test]
    fn non_ascii_is_modified_utf7() {
        assert_eq!(encode_utf7("Rechnungen Ä"), "Rechnungen &AMQ-");
        assert_eq!(encode_utf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(encode_utf7("A&B"), "A&-B");
        assert_eq!(encode_utf7("台北"), "&U,BTFw-");
        assert_eq!(encode_utf7("😀"), "&2D3eAA-");
        for text in ["Rechnungen Ä", "Entwürfe", "A&B", "台北", "😀 x ~ é", "&&"] {
            assert_eq!(decode_utf7(&encode_utf7(text)), text);
        }
        assert_eq!(decode_utf7("bad&AMQ"), "bad&AMQ");
        assert_eq!(decode_utf7("bad&!!-x"), "bad&!!-x");
    }

    #[test]
    fn dots_and_hostile_names_cannot_escape_or_add_levels() {
        assert_eq!(maildir_name(&["v1.2".into()]), ".v1_2");
        assert_eq!(maildir_name(&["..".into()]), ".__");
        assert_eq!(maildir_name(&["../../etc".into()]), ".______etc");
        assert_eq!(maildir_name(&["a/b".into()]), ".a_b");
        assert_eq!(maildir_name(&["*%".into()]), ".__");
        assert_eq!(maildir_name(&["a\0b\r\nc\u{202E}".into()]), ".a_b__c_");
        assert_eq!(maildir_name(&[" ".into()]), "._");
        let long = maildir_name(&["x".repeat(500)]);
        assert!(long.len() <= MAX_NAME && long.starts_with(".xxx"));
        assert_ne!(long, maildir_name(&[format!("{}y", "x".repeat(499))]));
        let deep: Vec<String> = (0..100).map(|i| format!("Ä{i}")).collect();
        let deep_name = maildir_name(&deep);
        assert!(deep_name.len() <= MAX_NAME, "{deep_name}");
        assert!(deep_name.contains(".more-"));
        for n in [long, deep_name] {
            assert!(!n.contains('/') && !n.contains(".."));
            assert!(n.bytes().all(|b| (b' '..=b'~').contains(&b)));
        }
    }
}

//! The only doors through which untrusted header text leaves the program: as a file name,
//! as one line of text (an added header, a report field, the terminal), or as HTML text;
//! and the one through which its bytes are first read as text.

use std::borrow::Cow;

/// `bytes` as text, borrowed when they are UTF-8, else with `\u{FFFD}` for what is not.
/// The standard check reads ASCII a word at a time, where `from_utf8_lossy` walks the bytes
/// as chunks (110M of 3,360M instructions on real list mail, callgrind).
pub fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Longest user folder name; longer names are cut and keep a hash suffix so they stay unique.
const MAX_NAME: usize = 64;

/// Turns an untrusted local part or user name into a safe, lower-case folder name; two
/// names that differ other than in case never share a folder.
///
/// Only `[a-z0-9._-]` survive; a leading `.`, `_` or `-` is prefixed with `u` so that no
/// user can collide with `.`/`..`, hidden files, popsplit's own `_`-folders, or read as
/// an option to a command run on the folder (`-rf`). A name that had to be changed
/// (`jürgen`, `"a/b"`) keeps a hash of itself as a suffix, so that it cannot meet another
/// changed name (`jörgen`) or one that needed no change (`a_b`).
pub fn folder_name(raw: &str) -> String {
    let lower: String = raw.chars().flat_map(char::to_lowercase).collect();
    let mut out: String = lower
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with(['.', '_', '-']) {
        out.insert(0, 'u');
    }
    let digest = || blake3::hash(lower.as_bytes()).to_hex();
    if out.len() > MAX_NAME {
        out.truncate(MAX_NAME - 17);
        out.push('-');
        out.push_str(&digest()[..16]);
    } else if out != lower {
        // 40 bits: two changed names of one office meet once in about 10^12 pairs.
        out.truncate(MAX_NAME - 11);
        out.push('-');
        out.push_str(&digest()[..10]);
    }
    out
}

/// Longest value kept in an added header or a report field, in characters.
const MAX_LINE: usize = 300;

/// [`one_line`] of text the caller gives up: returned as it is when it is already one
/// clean line, as nearly every address and subject is, instead of copied.
pub fn one_line_owned(raw: String) -> String {
    let b = raw.as_bytes();
    let clean = b.len() <= MAX_LINE
        && b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && b.iter().all(|c| (b' '..=b'~').contains(c))
        && !b.windows(2).any(|w| w == b"  ");
    if clean { raw } else { one_line(&raw) }
}

/// Makes untrusted text safe as one line: control, bidi and invisible format characters
/// become `?`,
/// runs of white space one space, and the result is cut to a bounded length.
pub fn one_line(raw: &str) -> String {
    // Nearly every value is short printable ASCII, where only runs of spaces change: done
    // by words, rather than a Unicode test of each character (one_line was 3% of a run's
    // samples, perf).
    if raw.len() <= MAX_LINE && raw.bytes().all(|b| (b' '..=b'~').contains(&b)) {
        let mut out = String::with_capacity(raw.len());
        for word in raw.split(' ').filter(|w| !w.is_empty()) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(word);
        }
        return out;
    }
    let mut out = String::with_capacity(raw.len().min(MAX_LINE));
    let (mut space, mut kept) = (false, 0);
    for c in raw.chars() {
        if kept >= MAX_LINE {
            out.push('…');
            break;
        }
        kept += 1;
        if c.is_whitespace() {
            if !space && !out.is_empty() {
                out.push(' ');
            }
            space = true;
            continue;
        }
        space = false;
        if c.is_control() || is_format(c) {
            out.push('?');
        } else {
            out.push(c);
        }
    }
    while out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Makes untrusted text safe inside HTML text or a quoted attribute: one line, and the
/// five characters that HTML gives meaning escaped.
pub fn html(raw: &str) -> String {
    let line = one_line(raw);
    let mut out = String::with_capacity(line.len());
    for c in line.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Format characters (Unicode category Cf): bidi controls can make a terminal or a report
/// show text in another order than it is; zero-width ones (U+200B, U+2060, U+FEFF), tag
/// characters and the soft hyphen make two different texts look the same, or hide text.
pub(crate) fn is_format(c: char) -> bool {
    matches!(c,
        '\u{00AD}'
        | '\u{0600}'..='\u{0605}'
        | '\u{061C}'
        | '\u{06DD}'
        | '\u{070F}'
        | '\u{08E2}'
        | '\u{180E}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{FEFF}'
        | '\u{FFF9}'..='\u{FFFB}'
        | '\u{110BD}'
        | '\u{110CD}'
        | '\u{13430}'..='\u{1343F}'
        | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E0020}'..='\u{E007F}')
}

/// `n` and the noun that goes with it: `count(1, "copy", "copies")` is "1 copy".
pub fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn one_line_owned_agrees_with_one_line(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "bob@example.com", " ", "  ", "\t", "\n", "\r", "~", "\u{7f}", "\0",
                "\u{fc}", "\u{202e}", "\u{a0}", "<x>", "\"q\"",
            ]), 0..12),
            long in 0usize..2,
        ) {
            let mut raw = parts.concat();
            if long == 1 {
                raw = raw.repeat(40);
            }
            proptest::prop_assert_eq!(one_line_owned(raw.clone()), one_line(&raw));
        }
    }

    #[test]
    fn one_line_owned_keeps_clean_text_and_cleans_the_rest() {
        let clean = String::from("Alice Example <alice@example.com>");
        let at = clean.as_ptr();
        let kept = one_line_owned(clean);
        // The same buffer: no copy was made.
        assert_eq!(kept.as_ptr(), at);
        assert_eq!(one_line_owned(" a  b ".into()), "a b");
        assert_eq!(one_line_owned("a\tb".into()), "a b");
        assert_eq!(one_line_owned("x\u{202e}y".into()), "x?y");
        assert_eq!(one_line_owned("a".repeat(301)).chars().count(), 301);
    }

    #[test]
    fn folder_names_cannot_escape_or_hide() {
        assert_eq!(folder_name("Alice"), "alice");
        assert_eq!(folder_name("a_b"), "a_b");
        let changed = |raw: &str, stem: &str| {
            let name = folder_name(raw);
            assert!(
                name.len() == stem.len() + 11 && name.starts_with(&format!("{stem}-")),
                "{raw} → {name}"
            );
        };
        changed("../etc", "u.._etc");
        changed("..", "u..");
        changed(".", "u.");
        changed("a/b\0c", "a_b_c");
        changed("_unassigned", "u_unassigned");
        changed("", "u_");
        changed("jürgen", "j_rgen");
        changed("-rf", "u-rf");
    }

    #[test]
    fn different_names_never_share_a_folder() {
        let names = [
            "jürgen", "jörgen", "j_rgen", "a/b", "a_b", "\"a/b\"", "_x", "u_x", "-rf", "u-rf",
        ];
        let folders: std::collections::BTreeSet<String> =
            names.iter().map(|n| folder_name(n)).collect();
        assert_eq!(folders.len(), names.len(), "{folders:?}");
        assert_eq!(folder_name("JÜRGEN"), folder_name("jürgen"));
        assert!(folders.iter().all(|f| !f.starts_with(['-', '.', '_'])));
    }

    #[test]
    fn long_folder_names_stay_distinct_and_bounded() {
        let a = folder_name(&"x".repeat(500));
        let b = folder_name(&format!("{}y", "x".repeat(499)));
        assert!(a.len() <= MAX_NAME && b.len() <= MAX_NAME);
        assert_ne!(a, b);
    }

    #[test]
    fn html_cannot_open_tags() {
        assert_eq!(
            html("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }

    #[test]
    fn one_line_cannot_inject_headers() {
        let s = one_line("alice@example.com\r\nBcc: evil@x\u{202E}");
        assert!(!s.contains('\r') && !s.contains('\n'));
        assert_eq!(s, "alice@example.com Bcc: evil@x?");
        assert!(one_line(&"a".repeat(10_000)).chars().count() <= MAX_LINE + 1);
    }

    #[test]
    fn zero_width_and_format_characters_are_shown() {
        assert_eq!(
            one_line("ad\u{200B}min\u{FEFF} pay\u{2060}pal\u{E0041}\u{E007F}\u{00AD}"),
            "ad?min? pay?pal???"
        );
    }
}

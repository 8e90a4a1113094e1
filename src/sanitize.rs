//! The only doors through which untrusted header text leaves the program: as a file name,
//! as one line of text (an added header, a report field, the terminal), or as HTML text.

/// Longest user folder name; longer names are cut and keep a hash suffix so they stay unique.
const MAX_NAME: usize = 64;

/// Turns an untrusted local part or user name into a safe, lower-case folder name.
///
/// Only `[a-z0-9._-]` survive; a leading `.` or `_` is prefixed with `u` so that no user
/// can collide with `.`/`..`, hidden files, or popsplit's own `_`-folders.
pub fn folder_name(raw: &str) -> String {
    let mut out: String = raw
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '.' | '-' | '_' => c,
            _ => '_',
        })
        .collect();
    if out.is_empty() {
        out.push('_');
    }
    if out.starts_with('.') || out.starts_with('_') {
        out.insert(0, 'u');
    }
    if out.len() > MAX_NAME {
        let digest = blake3::hash(raw.as_bytes()).to_hex();
        out.truncate(MAX_NAME - 17);
        out.push('-');
        out.push_str(&digest[..16]);
    }
    out
}

/// Longest value kept in an added header or a report field, in characters.
const MAX_LINE: usize = 300;

/// Makes untrusted text safe as one line: control and bidi characters become `?`,
/// runs of white space one space, and the result is cut to a bounded length.
pub fn one_line(raw: &str) -> String {
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
        if c.is_control() || is_bidi(c) {
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

/// Bidi controls can make a terminal or a report show text in another order than it is.
fn is_bidi(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names_cannot_escape_or_hide() {
        assert_eq!(folder_name("Alice"), "alice");
        assert_eq!(folder_name("../etc"), "u.._etc");
        assert_eq!(folder_name(".."), "u..");
        assert_eq!(folder_name("."), "u.");
        assert_eq!(folder_name("a/b\0c"), "a_b_c");
        assert_eq!(folder_name("_unassigned"), "u_unassigned");
        assert_eq!(folder_name(""), "u_");
        assert_eq!(folder_name("jürgen"), "j_rgen");
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
}

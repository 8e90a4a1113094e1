//! Stage 2 helper: addresses out of hostile header fields, and their canonical local form.

use mailparse::{MailAddr, MailHeader, addrparse_header};
use std::borrow::Cow;
use std::cell::RefCell;
use std::hash::BuildHasher;

/// The addresses of an address-list field, and whether they had to be salvaged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AddressList {
    /// Bare `local@domain` addresses, in field order.
    pub addrs: Vec<String>,
    /// True when mailparse rejected the field and the addresses were picked out one by one.
    pub salvaged: bool,
}

/// Parses an address-list field with mailparse (display names, comments, groups, RFC 2047);
/// when mailparse rejects the whole field, salvages each well-formed entry on its own.
pub fn parse_list(header: &MailHeader<'_>) -> AddressList {
    if let Ok(list) = addrparse_header(header) {
        let mut addrs = Vec::new();
        for a in list.iter() {
            match a {
                MailAddr::Single(s) => addrs.push(s.addr.trim().to_string()),
                MailAddr::Group(g) => {
                    addrs.extend(g.addrs.iter().map(|s| s.addr.trim().to_string()))
                }
            }
        }
        // mailparse accepts `g: a@x;, c@x` but returns ", c@x": drop what is not an address.
        let clean: Vec<String> = addrs.iter().filter_map(|a| bare_address(a)).collect();
        if clean.len() == addrs.len() {
            return AddressList {
                addrs: clean,
                salvaged: false,
            };
        }
    }
    AddressList {
        addrs: split_entries(&header.get_value())
            .iter()
            .filter_map(|e| salvage_entry(e))
            .collect(),
        salvaged: true,
    }
}

/// The addresses of an address-list field as it stands in the message (name, colon, folded
/// value): [`plain_list`] when the value takes one of its common shapes, else mailparse
/// through [`parse_list`]; an empty list when mailparse cannot read the field at all.
pub fn field_list(raw: &[u8]) -> AddressList {
    if let Some(addrs) = plain_list(raw) {
        return AddressList {
            addrs,
            salvaged: false,
        };
    }
    // `list` calls nothing that comes back here, so the borrow is never held already.
    RECENT.with_borrow_mut(|recent| recent.list(raw))
}

/// What mailparse makes of a raw field, through [`parse_list`]; an empty list when it cannot
/// read the field at all.
fn mailparse_list(raw: &[u8]) -> AddressList {
    mailparse::parse_header(raw)
        .ok()
        .map(|(h, _)| parse_list(&h))
        .unwrap_or_default()
}

thread_local! {
    static RECENT: RefCell<Recent> = RefCell::new(Recent::default());
}

/// The fields this thread read lately through mailparse, with what it made of them. The
/// same To and Cc come back byte for byte: in the copies of one message a shared box got
/// per recipient, and in the replies of a thread. On kernel-lists a sixth of the address
/// fields go to mailparse (an encoded-word name is enough), half the bytes, 11% of the
/// user time, and 68% of them were read before within the last 64 such fields. A field is
/// found by its hash and kept with its bytes, compared whole: a collision only misses.
struct Recent {
    slots: Vec<Option<(Box<[u8]>, AddressList)>>,
    hasher: foldhash::fast::FixedState,
}

impl Default for Recent {
    fn default() -> Self {
        Recent {
            slots: vec![None; Self::SLOTS],
            hasher: foldhash::fast::FixedState::default(),
        }
    }
}

impl Recent {
    /// Slots, one field each, chosen by hash.
    const SLOTS: usize = 64;
    /// Longer fields are not kept, so the memory stays under 1 MB a thread.
    const LONGEST: usize = 16 << 10;

    fn list(&mut self, raw: &[u8]) -> AddressList {
        if raw.len() > Self::LONGEST {
            return mailparse_list(raw);
        }
        let at = (self.hasher.hash_one(raw) % Self::SLOTS as u64) as usize;
        match &mut self.slots[at] {
            Some((bytes, list)) if **bytes == *raw => list.clone(),
            slot => {
                let list = mailparse_list(raw);
                *slot = Some((raw.into(), list.clone()));
                list
            }
        }
    }
}

/// The addresses of a field whose value is a comma list of `user@host`, `<user@host>`,
/// `Name Words <user@host>` or `"Quoted, Name" <user@host>`, in printable ASCII, folded or
/// not; `None` for anything else (escapes, comments, encoded words, groups, empty entries,
/// other bytes), which mailparse reads. It gives what [`parse_list`] gives for every field it accepts (tested below on
/// generated fields); mailparse's header and address parsing of every To, Cc and From was
/// the largest part of the run on real list mail (1,042M of 4,182M instructions, callgrind).
pub(crate) fn plain_list(raw: &[u8]) -> Option<Vec<String>> {
    let colon = memchr::memchr(b':', raw)?;
    let value = &raw[colon + 1..];
    let mut quoted = false;
    for (i, &b) in value.iter().enumerate() {
        let ok = match b {
            b'"' => {
                quoted = !quoted;
                true
            }
            // Folding: a line break only before a space or tab, or at the very end.
            b'\n' => !quoted && value.get(i + 1).is_none_or(|n| *n == b' ' || *n == b'\t'),
            b'\r' => !quoted && value.get(i + 1) == Some(&b'\n'),
            b' ' | b'\t' => true,
            // No escapes, nothing an encoded word could start with, anywhere.
            b'\\' | b'?' => false,
            b'(' | b')' | b':' | b';' | b'[' | b']' => quoted,
            b'!'..=b'~' => true,
            _ => false,
        };
        if !ok {
            return None;
        }
    }
    if quoted {
        return None;
    }
    // Only printable ASCII and white space are left: the value is valid UTF-8.
    let value = std::str::from_utf8(value).ok()?;
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    // Commas inside a quoted name do not end an entry; without quotes, a plain split finds
    // the commas faster than `split_entries`, a character at a time (58M instructions).
    let entries = match memchr::memchr(b'"', value.as_bytes()) {
        Some(_) => split_entries(value),
        None => value.split(',').collect(),
    };
    let mut out = Vec::with_capacity(entries.len());
    for entry in entries {
        // An empty entry goes to mailparse.
        let entry = entry.trim_matches(blank);
        let spec = match entry.strip_suffix('>') {
            Some(head) => {
                let (phrase, spec) = rsplit_ascii(head, b'<')?;
                if !plain_phrase(phrase) {
                    return None;
                }
                spec
            }
            None => entry,
        };
        let (local, domain) = spec.split_once('@')?;
        // By bytes, as the value is printable ASCII: a search of `extra` for each character
        // was 2% of the work on mailboxes of small messages (callgrind).
        let atom = |part: &str, extra: &[u8], max: usize| {
            let part = part.as_bytes();
            (1..=max).contains(&part.len())
                && part.first() != Some(&b'.')
                && part.last() != Some(&b'.')
                && !part.windows(2).any(|w| w == b"..")
                && part
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'.' || extra.contains(c))
        };
        // Within these bounds `bare_address` takes the address as it is.
        if !atom(local, b"-_+='&#$%*/^`{|}~!", 256) || !atom(domain, b"-", 255) {
            return None;
        }
        out.push(spec.to_string());
    }
    Some(out)
}

/// A display name the plain path takes: nothing, or words of letters, digits, `-`, `_`,
/// `.` and `'`, or one quoted string without escapes; then white space before the `<`.
fn plain_phrase(phrase: &str) -> bool {
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    if phrase.is_empty() {
        return true;
    }
    if !phrase.ends_with(blank) {
        return false;
    }
    let words = phrase.trim_matches(blank);
    match words.strip_prefix('"').and_then(|w| w.strip_suffix('"')) {
        Some(inner) => !inner.contains('"'),
        None => words
            .chars()
            .all(|c| blank(c) || c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '\'')),
    }
}

/// Splits a list on commas that are outside quotes, angle brackets and comments.
fn split_entries(value: &str) -> Vec<&str> {
    let (mut out, mut start, mut depth, mut quoted, mut angle, mut escaped) =
        (Vec::new(), 0, 0i32, false, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = (depth - 1).max(0),
            '<' if !quoted && depth == 0 => angle = true,
            '>' if !quoted && depth == 0 => angle = false,
            ',' | ';' if !quoted && depth == 0 && !angle => {
                out.push(&value[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&value[start..]);
    out
}

/// The address of one list entry: the last `<...>` if any, else a bare token with `@`.
fn salvage_entry(entry: &str) -> Option<String> {
    if let (Some(open), Some(close)) = (entry.rfind('<'), entry.rfind('>'))
        && open < close
    {
        return bare_address(&entry[open + 1..close]);
    }
    entry
        .split(|c: char| c.is_whitespace() || c == ':')
        .find_map(bare_address)
}

/// Splits `s` around the last `sep`, an ASCII byte, as `rsplit_once` would.
///
/// Addresses are short and their domain shorter: a byte walk back from the end finds the
/// `@` in a few steps, where the standard search sets up a word-at-a-time scan for every
/// call (3.7% of all instructions on mailboxes of small messages, callgrind).
pub fn rsplit_ascii(s: &str, sep: u8) -> Option<(&str, &str)> {
    debug_assert!(sep.is_ascii());
    let at = s.bytes().rposition(|b| b == sep)?;
    // An ASCII byte is never inside a multi-byte character, so both sides are whole text.
    Some((&s[..at], &s[at + 1..]))
}

/// Accepts `local@domain` with nothing around it that an address cannot hold.
pub fn bare_address(raw: &str) -> Option<String> {
    let a = raw
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let (local, domain) = rsplit_ascii(a, b'@')?;
    let ok_local = !local.is_empty()
        && local.len() <= 256
        && !local
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';'));
    let ok_domain = !domain.is_empty()
        && domain.len() <= 255
        && domain.chars().all(|c| {
            c.is_alphanumeric() || c == '-' || c == '.' || c == '[' || c == ']' || c == ':'
        });
    (ok_local && ok_domain).then(|| a.to_string())
}

/// The forms under which an address may be known, most literal first: as written (lower
/// case), then after each rewrite that a sender or an ISP applies, each step on the result
/// of the one before: the ISP's affix (`isp`, already rewritten by the caller), the
/// qmail/Courier `domain-` prefix, BATV (`prvs=1a2b3c4d5=judy@` is judy), SRS
/// (`SRS0=HH=TT=example.com=judy@fwd.example` is `judy@example.com`) and a `+tag`. A directory looks
/// each form up in this order, so an address it names exactly (`lists+a@`) is never
/// rewritten into another (`lists@`).
pub fn forms(addr: &str, isp: Option<String>, local_domains: &[String]) -> Vec<String> {
    let lower = |a: &str| match rsplit_ascii(a, b'@') {
        Some((l, d)) => format!(
            "{}@{}",
            l.trim_matches('"').to_lowercase(),
            d.trim_end_matches('.').to_ascii_lowercase()
        ),
        None => a.to_lowercase(),
    };
    let mut out = vec![lower(addr)];
    // Each step rewrites the latest form; a step that changes nothing adds nothing.
    // The latest form is borrowed, not cloned: five clones a call were a good part of the
    // profile learning's allocations.
    let step = |out: &mut Vec<String>, f: &dyn Fn(&str) -> Option<String>| {
        let last = out.last().map_or("", String::as_str);
        if let Some(next) = f(last).map(|n| lower(&n))
            && next != last
        {
            out.push(next);
        }
    };
    step(&mut out, &|_| isp.clone());
    // The delivering server's qmail prefix is the outermost layer; BATV and SRS are the
    // sender's, inside it.
    step(&mut out, &|a| {
        let (l, d) = rsplit_ascii(a, b'@')?;
        local_domains.iter().find_map(|ld| {
            l.strip_prefix(ld.as_str())
                .and_then(|r| r.strip_prefix('-'))
                .filter(|r| !r.is_empty())
                .map(|r| format!("{r}@{d}"))
        })
    });
    step(&mut out, &strip_batv);
    step(&mut out, &decode_srs);
    step(&mut out, &|a| {
        let (l, d) = rsplit_ascii(a, b'@')?;
        l.find('+')
            .filter(|&p| p > 0)
            .map(|p| format!("{}@{d}", &l[..p]))
    });
    out
}

/// `prvs=TAG=user@d` (and `msprvs1=`, `btv1==TAG==`) → `user@d`: bounce-address tagging
/// signs return paths, and auto-replies and bounces come back to the signed form.
fn strip_batv(addr: &str) -> Option<String> {
    let (local, domain) = rsplit_ascii(addr, b'@')?;
    let user = if let Some(rest) = local.strip_prefix("btv1==") {
        rest.split_once("==")?.1
    } else {
        let rest = local
            .strip_prefix("prvs=")
            .or_else(|| local.strip_prefix("msprvs1="))?;
        rest.split_once('=')?.1
    };
    (!user.is_empty()).then(|| format!("{user}@{domain}"))
}

/// The original address inside an SRS-rewritten one (Sender Rewriting Scheme, used by
/// forwarders): `SRS0=HHHH=TT=orig.example=user@fwd` and `SRS1=HHH=fwd1==HHHH=TT=orig=user@fwd2`.
fn decode_srs(addr: &str) -> Option<String> {
    let (local, _) = rsplit_ascii(addr, b'@')?;
    let lower = local.to_ascii_lowercase();
    let rest = if lower.starts_with("srs0=") {
        &local[5..]
    } else if lower.starts_with("srs1=") {
        local.split_once("==")?.1
    } else {
        return None;
    };
    let mut parts = rest.splitn(4, '=');
    let (_hash, _time) = (parts.next()?, parts.next()?);
    let (domain, user) = (parts.next()?, parts.next()?);
    (!domain.is_empty() && !user.is_empty()).then(|| format!("{user}@{domain}"))
}

/// An address at one of the office's domains, in the form the directory is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocalAddress {
    /// Lower-case local part with any `+tag` and qmail-style `domain-` prefix removed.
    pub local: String,
    /// Lower-case domain, one of the local domains.
    pub domain: String,
}

impl LocalAddress {
    /// `local@domain`.
    pub fn to_address(&self) -> String {
        // Joined by hand: `format!` was most of the cost of the profile's three per message.
        let mut out = String::with_capacity(self.local.len() + 1 + self.domain.len());
        out.push_str(&self.local);
        out.push('@');
        out.push_str(&self.domain);
        out
    }
}

/// `text` in lower case, copied only when it has capitals: most addresses in mail are
/// written in lower case, and a copy of each showed in the profile of small messages.
pub fn lowercase(text: &str) -> Cow<'_, str> {
    if text.is_ascii() && !text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.to_lowercase())
    }
}

/// `text` with its ASCII capitals lowered, copied only when it has some.
pub fn ascii_lowercase(text: &str) -> Cow<'_, str> {
    if text.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(text.to_ascii_lowercase())
    } else {
        Cow::Borrowed(text)
    }
}

/// Maps an address to its canonical local form (the last of [`forms`]), or `None` if it is
/// not at a local domain.
///
/// Local parts are compared case-insensitively: no mail server an office used treats
/// `Alice` and `alice` as two people, and merging them cannot leak mail between users.
pub fn localize(addr: &str, local_domains: &[String]) -> Option<LocalAddress> {
    let (local, domain) = rsplit_ascii(addr, b'@')?;
    // Most addresses in mail are not local: turned away before anything is allocated.
    let domain = domain.trim_end_matches('.');
    if !local_domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
        return None;
    }
    let domain = domain.to_ascii_lowercase();
    if !local_domains.contains(&domain) {
        return None;
    }
    let mut local = local.trim_matches('"').to_lowercase();
    // qmail and Courier virtual domains deliver to `example.com-alice@example.com`.
    for d in local_domains {
        if let Some(rest) = local
            .strip_prefix(d.as_str())
            .and_then(|r| r.strip_prefix('-'))
            .filter(|r| !r.is_empty())
        {
            local = rest.to_string();
            break;
        }
    }
    if let Some(plus) = local.find('+').filter(|&p| p > 0) {
        local.truncate(plus);
    }
    (!local.is_empty()).then_some(LocalAddress { local, domain })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(raw: &str) -> AddressList {
        let (h, _) = mailparse::parse_header(raw.as_bytes()).expect("header");
        parse_list(&h)
    }

    #[test]
    fn rsplit_ascii_splits_as_rsplit_once_does() {
        for s in [
            "a@b",
            "\"x@y\"@example.com",
            "jürgen@exämple.de",
            "@",
            "none",
            "",
            "ends@",
            "@starts",
            "é@",
        ] {
            assert_eq!(rsplit_ascii(s, b'@'), s.rsplit_once('@'), "{s:?}");
            assert_eq!(rsplit_ascii(s, b'<'), s.rsplit_once('<'), "{s:?}");
        }
    }

    #[test]
    fn real_parser_handles_names_groups_and_encoded_words() {
        let l = list(
            "To: \"Smith, John\" <John@Example.com>, team: a@x, b@x;, =?utf-8?Q?J=C3=BCrgen?= <j@x>",
        );
        assert_eq!(l.addrs, vec!["John@Example.com", "a@x", "b@x", "j@x"]);
        assert!(!l.salvaged);
        let enc = list("To: =?utf-8?B?U21pdGgsIEpvaG4=?= <john@x>");
        assert_eq!(enc.addrs, vec!["john@x"]);
    }

    /// Asserts that the plain path, where it takes a field, gives what mailparse gives;
    /// returns whether it took it.
    fn agrees(raw: &[u8]) -> bool {
        let Some(plain) = plain_list(raw) else {
            return false;
        };
        let slow = mailparse_list(raw);
        assert!(!slow.salvaged, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(plain, slow.addrs, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(field_list(raw), slow);
        true
    }

    #[test]
    fn fields_read_again_give_what_mailparse_gives() {
        // Encoded-word names send every field to mailparse; 300 of them share 64 slots, so
        // slots are taken over and fields collide, and each comes back three times.
        let fields: Vec<String> = (0..300)
            .map(|i| {
                let salvage = if i % 7 == 0 { " broken <" } else { "" };
                format!(
                    "Cc: =?utf-8?Q?J=C3=BCrgen_{i}?= <j{i}@x>, k{}@y{salvage}\n",
                    i % 5
                )
            })
            .collect();
        for round in 0..3 {
            for (i, f) in fields.iter().enumerate() {
                let f = f.as_bytes();
                assert!(plain_list(f).is_none());
                let expected = mailparse_list(f);
                assert_eq!(expected.addrs[0], format!("j{i}@x"), "{round}");
                assert_eq!(field_list(f), expected, "{round} {i}");
            }
        }
        // Longer than any kept field: read each time, the same.
        let long = format!("To: =?utf-8?Q?A?= <a@x>{}\n", ", b@y".repeat(4000));
        assert_eq!(field_list(long.as_bytes()), mailparse_list(long.as_bytes()));
        assert_eq!(field_list(long.as_bytes()).addrs.len(), 4001);
    }

    #[test]
    fn plain_path_takes_the_common_shapes_and_agrees() {
        for raw in [
            "To: alice@example.com\n",
            "To: <alice@example.com>\r\n",
            "Cc: Alice Smith <Alice@Example.COM>, bob@x.org,\r\n\t<c.d+tag@mail.x-y.net>\r\n",
            "From: O'Brien <o.brien@x.ie>\n",
            "To:alice@x\n",
            "To: a@x ,b@y\n",
            "To: a@x",
            "To: J. Doe <j@x>\n",
            "To: a=b/c@x\n",
            "To: \"Smith, John\" <j@x>, \"Rob Herring (Arm)\" <robh@kernel.org>\n",
            "To: \"David S . Miller\" <davem@davemloft.net>,\n \"a:b;c<d>\" <e@f>\n",
        ] {
            assert!(agrees(raw.as_bytes()), "{raw:?}");
        }
    }

    #[test]
    fn plain_path_leaves_the_rest_to_mailparse() {
        for raw in [
            "To: \"Smith \\\"J\\\"\" <j@x>\n",
            "To: \"Smith\"<j@x>\n",
            "To: \"a\" \"b\" <j@x>\n",
            "To: \"unclosed <j@x>\n",
            "To: \"=?utf-8?q?x?=\" <j@x>\n",
            "To: \"j@x\"\n",
            "To: j@x (John)\n",
            "To: =?utf-8?Q?J=C3=BCrgen?= <j@x>\n",
            "To: team: a@x, b@x;\n",
            "To: undisclosed-recipients:;\n",
            "To: a@x,, b@x\n",
            "To: a@x,\n",
            "To: \n",
            "To: a@x\rb@y\n",
            "To: J\u{fc}rgen <j@x>\n",
            "To: a@[1.2.3.4]\n",
            "To: Foo <foo@x>, postmaster, Smith, John <john@x>\n",
            "To: a..b@x\n",
            "To: a@x\nb@y\n",
            "To: Name<j@x>\n",
            "To: <a@x> <b@x>\n",
        ] {
            assert!(plain_list(raw.as_bytes()).is_none(), "{raw:?}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// Fields built from the pieces of addresses and the characters that make them
        /// tricky: wherever the plain path answers, mailparse answers the same.
        #[test]
        fn plain_path_agrees_with_mailparse_on_generated_fields(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "Bob", "x.org", "EXAMPLE.com", "o'brien", "J.", "-", "_", "+tag", "=",
                "@", "@", "<", ">", ",", ", ", " ", "  ", "\t", "\r\n ", "\n\t", "\n", "\r",
                ".", "..", "\"", "(", ")", ":", ";", "=?", "?=", "?", "[", "]", "\\", "/",
                "!", "#", "$", "%", "&", "*", "^", "`", "{", "|", "}", "~", "\u{fc}", "\0",
                "\u{7f}", "1", "9x", "a@b.c", "<a@b.c>", "Name <n@m.o>",
            ]), 0..14),
            name in proptest::sample::select(vec!["To", "Cc", "From", "Resent-To"]),
        ) {
            let raw = format!("{name}:{}\n", parts.concat());
            agrees(raw.as_bytes());
        }

        /// Lists of well-formed entries, each written in one of the shapes, joined with
        /// white space and folding, with now and then one odd character put in.
        #[test]
        fn plain_path_agrees_with_mailparse_on_generated_lists(
            entries in proptest::collection::vec((
                proptest::sample::select(vec![
                    "", "Bob ", "Bob  Smith ", "J. O'Neil ", "x-y_z\t", "\"Smith, J.\" ",
                    "\"R (Arm)\" ", "\"a;b:c<d>e@f\" ", "\"\" ", "\" x \"\t",
                ]),
                "[A-Za-z0-9._+=/-]{1,12}",
                "[A-Za-z0-9-]{1,8}(\\.[A-Za-z0-9-]{1,6}){0,2}\\.?",
                proptest::bool::ANY,
                proptest::sample::select(vec![",", ", ", " ,", ",\r\n\t", ",\n ", " , "]),
            ), 1..6),
            odd in proptest::option::of((0usize..200, proptest::sample::select(vec![
                '"', '"', '(', ')', ':', ';', '<', '>', '@', ',', '.', '\\', '[', '?', '=', ' ', '\u{e9}',
            ]))),
        ) {
            let mut value = String::new();
            for (i, (phrase, local, domain, angle, sep)) in entries.iter().enumerate() {
                if i > 0 {
                    value.push_str(sep);
                }
                match (phrase.is_empty() && !angle, *angle) {
                    (true, _) => value.push_str(&format!("{local}@{domain}")),
                    _ => value.push_str(&format!("{phrase}<{local}@{domain}>")),
                }
            }
            if let Some((at, c)) = odd {
                let at = value.char_indices().map(|(i, _)| i).nth(at % value.chars().count().max(1));
                value.insert(at.unwrap_or(0), c);
            }
            agrees(format!("To: {value}\r\n").as_bytes());
        }
    }

    #[test]
    fn plain_path_takes_most_generated_lists() {
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let strategy =
            proptest::collection::vec(("[A-Za-z0-9_+-]{1,12}", "[a-z]{1,8}\\.[a-z]{2,3}"), 1..6);
        let mut taken = 0;
        for _ in 0..1000 {
            let list = strategy.new_tree(&mut runner).expect("tree").current();
            let value: Vec<String> = list.iter().map(|(l, d)| format!("<{l}@{d}>")).collect();
            taken += usize::from(agrees(format!("Cc: {}\n", value.join(", ")).as_bytes()));
        }
        assert_eq!(taken, 1000);
    }

    #[test]
    fn malformed_field_is_salvaged_not_dropped() {
        let l = list("To: Foo <foo@x>, postmaster, Smith, John <john@x>");
        assert_eq!(l.addrs, vec!["foo@x", "john@x"]);
        assert!(l.salvaged);
    }

    #[test]
    fn group_quirk_is_not_taken_as_an_address() {
        let l = list("To: g: a@x;, c@x");
        assert!(l.addrs.contains(&"c@x".to_string()));
        assert!(l.addrs.iter().all(|a| !a.starts_with(',')));
    }

    #[test]
    fn localize_folds_case_tags_and_qmail_prefix() {
        let d = vec!["example.com".to_string()];
        let a = localize("Alice+News@EXAMPLE.com.", &d).expect("local");
        assert_eq!(a.to_address(), "alice@example.com");
        assert_eq!(
            localize("example.com-bob@example.com", &d)
                .expect("q")
                .local,
            "bob"
        );
        assert_eq!(
            localize("+x@example.com", &d).expect("plus first").local,
            "+x"
        );
        assert!(localize("alice@example.org", &d).is_none());
        assert!(localize("alice@sub.example.com", &d).is_none());
    }

    #[test]
    fn forms_go_from_literal_to_rewritten() {
        let d = vec!["example.com".to_string()];
        assert_eq!(
            forms("Lists+A@Example.COM.", None, &d),
            vec!["lists+a@example.com", "lists@example.com"]
        );
        assert_eq!(
            forms("prvs=1a2b3c4d5=Judy@example.com", None, &d),
            vec!["prvs=1a2b3c4d5=judy@example.com", "judy@example.com"]
        );
        assert_eq!(
            forms("btv1==5a1==judy@example.com", None, &d)
                .last()
                .map(String::as_str),
            Some("judy@example.com")
        );
        assert_eq!(
            forms("SRS0=HHHH=TT=example.com=bob@fwd.example.net", None, &d),
            vec![
                "srs0=hhhh=tt=example.com=bob@fwd.example.net",
                "bob@example.com"
            ]
        );
        assert_eq!(
            forms(
                "SRS1=x=fwd1.example==HHHH=TT=example.com=bob+x@fwd2.example",
                None,
                &d
            )
            .last()
            .map(String::as_str),
            Some("bob@example.com")
        );
        assert_eq!(
            forms(
                "acmepop-carol@isp.net",
                Some("carol@example.com".into()),
                &d
            ),
            vec!["acmepop-carol@isp.net", "carol@example.com"]
        );
        assert_eq!(
            forms("example.com-dave+x@example.com", None, &d),
            vec![
                "example.com-dave+x@example.com",
                "dave+x@example.com",
                "dave@example.com"
            ]
        );
        assert_eq!(
            forms("srs0=broken@x.org", None, &d),
            vec!["srs0=broken@x.org"]
        );
    }
}

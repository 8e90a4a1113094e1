//! Stage 2 helper: cut a message's header block into raw header fields without trusting it.
//!
//! mailparse's `parse_headers` gives up on the whole block at a stray continuation line or a
//! bare CR; hostile mail has both, so fields are cut here and only the ones used as evidence
//! are handed to mailparse, one at a time.

/// One header field as it stands in the message, name and folded value borrowed.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    /// The field name, as written.
    pub name: &'a [u8],
    /// The whole field, name to the end of its last continuation line.
    pub raw: &'a [u8],
}

impl Field<'_> {
    /// Case-insensitive comparison of the field name.
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name.as_bytes())
    }

    /// The field parsed by mailparse (folding undone, RFC 2047 words decodable).
    pub fn parsed(&self) -> Option<mailparse::MailHeader<'_>> {
        mailparse::parse_header(self.raw).ok().map(|(h, _)| h)
    }

    /// The decoded value as text, or empty when it cannot be parsed.
    pub fn value(&self) -> String {
        match self.plain_value() {
            Some(v) => v,
            None => self.parsed().map(|h| h.get_value()).unwrap_or_default(),
        }
    }

    /// What mailparse's `get_value` gives for a UTF-8 value without encoded words, worked
    /// out without its token list: the folding undone, each line's leading white space
    /// dropped and one space put between lines. Parsing every Subject, Date and Message-ID
    /// through mailparse was a tenth of the work on mailboxes of small messages (callgrind).
    /// `None` leaves the field to mailparse.
    fn plain_value(&self) -> Option<String> {
        let raw = self.raw;
        let colon = memchr::memchr(b':', raw)?;
        if raw[..colon].contains(&b'\n') {
            return None;
        }
        // The value ends at its last byte that is not a line ending, as mailparse reads it;
        // the white space it skips after the colon goes with the first line's.
        let start = colon + 1;
        let end = raw[start..]
            .iter()
            .rposition(|&b| b != b'\r' && b != b'\n')
            .map_or(start, |i| start + i + 1);
        let value = &raw[start..end];
        // Most values hold no `=`: one memchr, without building a substring searcher.
        if memchr::memchr_iter(b'=', value).any(|i| value.get(i + 1) == Some(&b'?')) {
            return None;
        }
        let value = std::str::from_utf8(value).ok()?;
        if memchr::memchr(b'\n', value.as_bytes()).is_none() {
            return Some(value.trim_start().to_string());
        }
        let mut out = String::with_capacity(value.len());
        for (i, line) in value.lines().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(line.trim_start());
        }
        Some(out)
    }
}

/// The header fields of a message and where its body starts.
#[derive(Debug, Default)]
pub struct HeaderBlock<'a> {
    /// Fields in message order.
    pub fields: Vec<Field<'a>>,
    /// Byte offset of the body (after the blank line), or the message length if none.
    pub body_start: usize,
    /// Lines in the header block that were neither a field nor a continuation.
    pub junk_lines: usize,
}

/// Splits the header block of `msg`. Never fails: lines that are not fields are counted.
pub fn split<'a>(msg: &'a [u8]) -> HeaderBlock<'a> {
    let mut block = HeaderBlock {
        body_start: msg.len(),
        ..HeaderBlock::default()
    };
    let mut pos = 0;
    let mut current: Option<(usize, usize)> = None; // (start, name_len) of the open field
    let flush = |block: &mut HeaderBlock<'a>, cur: Option<(usize, usize)>, end: usize| {
        if let Some((start, name_len)) = cur {
            block.fields.push(Field {
                name: &msg[start..start + name_len],
                raw: &msg[start..end],
            });
        }
    };
    while pos < msg.len() {
        let end = memchr::memchr(b'\n', &msg[pos..]).map_or(msg.len(), |i| pos + i + 1);
        let line = &msg[pos..end];
        if line == b"\n" || line == b"\r\n" {
            flush(&mut block, current.take(), pos);
            block.body_start = end;
            return block;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            if current.is_none() {
                block.junk_lines += 1;
            }
        } else {
            flush(&mut block, current.take(), pos);
            let name_len = line
                .iter()
                .take_while(|&&b| b != b':' && b > b' ' && b != 0x7f)
                .count();
            if name_len > 0 && line.get(name_len) == Some(&b':') {
                current = Some((pos, name_len));
            } else {
                block.junk_lines += 1;
            }
        }
        pos = end;
    }
    flush(&mut block, current.take(), msg.len());
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_continuations_and_finds_body() {
        let m = b"To: a@x,\r\n  b@x\r\nSubject: hi\r\n\r\nbody\r\n";
        let h = split(m);
        assert_eq!(h.fields.len(), 2);
        assert!(h.fields[0].is("to"));
        assert_eq!(h.fields[0].value(), "a@x, b@x");
        assert_eq!(&m[h.body_start..], b"body\r\n");
    }

    #[test]
    fn junk_does_not_hide_later_fields() {
        let m = b"  stray continuation\nnot a header\nX-Bare: a\rDelivered-To: hidden@x\nTo: b@x\n\nbody";
        let h = split(m);
        assert_eq!(h.junk_lines, 2);
        let names: Vec<_> = h.fields.iter().map(|f| f.name).collect();
        assert_eq!(names, vec![&b"X-Bare"[..], b"To"]);
        assert_eq!(&m[h.body_start..], b"body");
    }

    /// The fields of a block built from the characters that make folding, encoded words
    /// and text conversion tricky: the plain path gives what mailparse gives, or declines.
    fn agrees(block: &[u8]) -> usize {
        let mut taken = 0;
        for f in split(block).fields {
            let by_mailparse = f.parsed().map(|h| h.get_value()).unwrap_or_default();
            if let Some(v) = f.plain_value() {
                assert_eq!(v, by_mailparse, "{:?}", String::from_utf8_lossy(f.raw));
                taken += 1;
            }
            assert_eq!(f.value(), by_mailparse);
        }
        taken
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        #[test]
        fn plain_value_agrees_with_mailparse(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "a", "Re:", " ", "  ", "\t", "\r\n ", "\n\t", "\n \t ", "\r\n", "\n", "\r",
                "\r\r\n ", ":", "=?", "?=", "=?utf-8?q?x?=", "=", "?", "<id@x>", "\u{fc}",
                "\u{3000}", "\u{a0}", "\0", "x y", ",", "\"", "(c)",
            ]), 0..14),
            bytes in proptest::option::of(proptest::sample::select(vec![
                &b"\xff"[..], b"\xc3", b"\xe9t\xe9", b"\x80",
            ])),
            name in proptest::sample::select(vec!["Subject", "Message-ID", "Date", "X-Y"]),
        ) {
            let mut raw = format!("{name}:{}", parts.concat()).into_bytes();
            if let Some(b) = bytes {
                raw.extend_from_slice(b);
            }
            raw.extend_from_slice(b"\nTo: b@x\n\nbody");
            agrees(&raw);
        }
    }

    #[test]
    fn plain_value_takes_the_common_fields() {
        let block = b"Subject:  Project 533\r\nDate: Thu, 1 Jan 2015\r\n 00:22:05 +0000\r\n\
Message-ID:\t<0.4@mail.example.org>\nX-Empty:\nX-Blank:   \r\n\n";
        assert_eq!(agrees(block), 5);
        let fields = split(block).fields;
        assert_eq!(fields[1].value(), "Thu, 1 Jan 2015 00:22:05 +0000");
        assert_eq!(fields[2].value(), "<0.4@mail.example.org>");
        // Encoded words and text that is not UTF-8 stay with mailparse.
        let odd = split(b"Subject: =?utf-8?q?caf=C3=A9?=\nX: caf\xe9\n\n").fields;
        assert!(odd.iter().all(|f| f.plain_value().is_none()));
        assert_eq!(odd[0].value(), "caf\u{e9}");
        assert_eq!(odd[1].value(), "caf\u{e9}");
    }

    #[test]
    fn no_body_and_no_headers() {
        assert_eq!(split(b"To: a@x\n").body_start, 8);
        let h = split(b"\nbody only");
        assert!(h.fields.is_empty());
        assert_eq!(h.body_start, 1);
    }
}

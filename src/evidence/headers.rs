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
        self.parsed().map(|h| h.get_value()).unwrap_or_default()
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

    #[test]
    fn no_body_and_no_headers() {
        assert_eq!(split(b"To: a@x\n").body_start, 8);
        let h = split(b"\nbody only");
        assert!(h.fields.is_empty());
        assert_eq!(h.body_start, 1);
    }
}

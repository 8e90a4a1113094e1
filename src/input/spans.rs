//! The mbox split kept for the whole run, packed: about 6 bytes a message.

use crate::input::mbox::Span;
use std::collections::HashMap;

/// Every span of an mbox, packed: the split is kept for the whole run, and spans follow
/// one another through the file, so each is stored as varint lengths (its gap after the
/// last one, always 0 from the splitter, then its three parts): about 6 bytes a message
/// rather than the 72 of a [`Span`]. Passes walk them in order.
#[derive(Default)]
pub(crate) struct Spans {
    pub(crate) bytes: Vec<u8>,
    pub(crate) count: usize,
    /// Where the last span ends.
    pub(crate) end: usize,
    /// The rare spans the splitter had doubts about, by 0-based position.
    pub(crate) notes: HashMap<usize, &'static str>,
    /// The rare spans that may hold a `>From ` line to unquote, by 0-based position, in order.
    pub(crate) quoted: Vec<usize>,
}

impl Spans {
    pub(crate) fn push(&mut self, span: Span) {
        if let Some(note) = span.note {
            self.notes.insert(self.count, note);
        }
        if span.quoted {
            self.quoted.push(self.count);
        }
        for n in [
            span.from_line.start.saturating_sub(self.end),
            span.from_line.len(),
            span.content.len(),
            span.trailer.len(),
        ] {
            put_varint(&mut self.bytes, n as u64);
        }
        self.count += 1;
        self.end = span.trailer.end;
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = Span> + '_ {
        let (mut at, mut end) = (0, 0);
        let mut quoted = self.quoted.iter().peekable();
        (0..self.count).map(move |i| {
            let mut next = || get_varint(&self.bytes, &mut at) as usize;
            let start = end + next();
            let content = start + next();
            let trailer = content + next();
            end = trailer + next();
            Span {
                number: i + 1,
                from_line: start..content,
                content: content..trailer,
                trailer: trailer..end,
                note: self.notes.get(&i).copied(),
                quoted: quoted.next_if_eq(&&i).is_some(),
            }
        })
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads what [`put_varint`] wrote at `*at` (our own bytes: always complete).
pub(crate) fn get_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let (mut n, mut shift) = (0u64, 0);
    while let Some(&b) = bytes.get(*at) {
        *at += 1;
        n |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            break;
        }
        shift += 7;
    }
    n
}

//! Stage 2 (gather evidence): read one message's header block into plain facts.
//!
//! Nothing here decides anything; it only records what each field claims and where it
//! stands (how many Received fields sit above it), so that the decision can judge trust.

use crate::address::{bare_address, parse_list};
use crate::headers::{self, Field};
use crate::sanitize::one_line;

/// Envelope fields written by the delivering server, best first (rank = index).
/// X-Original-To holds the address before alias expansion; Delivered-To often names the
/// shared box itself (see the evidence notes), so it comes last.
const ENVELOPE: [&[&str]; 3] = [
    &["x-original-to", "x-gm-original-to"],
    &[
        "envelope-to",
        "x-envelope-to",
        "x-rcpt-to",
        "x-recipient",
        "x-envelope-recipient",
        "x-original-recipient",
        "x-delivered-to",
        "x-resolved-to",
        "x-ms-exchange-organization-originalenveloperecipients",
    ],
    &["delivered-to"],
];

/// Content fields that name recipients but were written by the sender.
const CONTENT: [&str; 7] = [
    "to",
    "cc",
    "resent-to",
    "resent-cc",
    "bcc",
    "resent-bcc",
    "apparently-to",
];

/// What kind of claim a piece of evidence is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// An envelope field of the given rank (0 is best).
    Envelope(u8),
    /// The `for <addr>` clause of a Received field.
    ReceivedFor,
    /// A To/Cc/Resent-style field.
    Content,
    /// Another `X-` field holding an address: envelope evidence only where the mailbox
    /// profile learned that this ISP writes it.
    Other,
}

/// One address claim found in the header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The field name as written (made safe).
    pub header: String,
    /// The address as found, or `None` when the field held nothing usable.
    pub address: Option<String>,
    /// What kind of claim this is.
    pub kind: Kind,
    /// Number of Received fields above this field (0 = at the very top).
    pub depth: usize,
    /// The address was picked out of a field that the address parser rejected.
    pub salvaged: bool,
}

/// Everything the later stages need to know about one message, as plain data.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Address claims, in header order.
    pub evidence: Vec<Evidence>,
    /// The Message-ID field's value (made safe).
    pub message_id: Option<String>,
    /// The Date field as seconds since the epoch.
    pub date: Option<i64>,
    /// The From field (made safe), for the report.
    pub from: String,
    /// The Subject field (made safe), for the report.
    pub subject: String,
    /// Whether the message has a Return-Path of its own.
    pub has_return_path: bool,
    /// Maildir flags (`F`, `R`, `S`, sorted) from Status / X-Status / X-Mozilla-Status.
    pub flags: String,
    /// Whether the message's lines end in CRLF.
    pub crlf: bool,
    /// Hash of the Message-ID (or From/Date/Subject), the header half of [`identity`].
    pub header_key: [u8; 16],
    /// Where the body starts.
    pub body_start: usize,
    /// Header lines that were not fields (a sign of damage, reported).
    pub junk_lines: usize,
    /// The Received fields, top first: who wrote each and whom it got the message from.
    pub hops: Vec<Hop>,
    /// The From field's address.
    pub from_address: Option<String>,
    /// List-Id (lower case, without angle brackets) when the message came through a list.
    pub list_id: Option<String>,
    /// The message carries mailing-list fields (List-Id, List-Post, Precedence: list, ...).
    pub is_list: bool,
    /// The list's posting address, from List-Post.
    pub list_post: Option<String>,
    /// Hash of the Message-ID (0 when there is none), for thread look-ups.
    pub id_hash: u64,
    /// Hashes of the In-Reply-To and the last References ids.
    pub parents: Vec<u64>,
}

/// One Received field: the host that wrote it (`by`) and the host it came from (`from`),
/// lower case, `-` where the field does not say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// The host that added the field.
    pub by: String,
    /// The host it received the message from.
    pub from: String,
}

/// 64-bit hash of a Message-ID as found in Message-ID, In-Reply-To and References.
pub fn id_hash(id: &str) -> u64 {
    let id = id.trim().trim_start_matches('<').trim_end_matches('>');
    let h = blake3::hash(id.as_bytes());
    u64::from_le_bytes(h.as_bytes()[..8].try_into().unwrap_or_default())
}

/// Fields that hold a sender's or a list's address, never a recipient's.
const NOT_RECIPIENT: [&str; 8] = [
    "x-sender",
    "x-original-from",
    "x-beenthere",
    "x-original-sender",
    "x-google-original-from",
    "x-ms-exchange-organization-authas",
    "x-failed-recipients",
    "x-forwarded-for",
];

/// Reads the facts of one (unquoted) message.
pub fn gather(msg: &[u8]) -> Facts {
    let block = headers::split(msg);
    let mut facts = Facts {
        crlf: memchr::memchr(b'\n', msg).is_some_and(|i| i > 0 && msg[i - 1] == b'\r'),
        junk_lines: block.junk_lines,
        ..Facts::default()
    };
    let mut depth = 0;
    let mut flags = Flags::default();
    for field in &block.fields {
        let lower = String::from_utf8_lossy(field.name).to_ascii_lowercase();
        if lower == "received" {
            if let Some(e) = received_for(field, depth) {
                facts.evidence.push(e);
            }
            facts.hops.push(hop(field));
            depth += 1;
        } else if let Some(rank) = ENVELOPE
            .iter()
            .position(|names| names.contains(&lower.as_str()))
        {
            facts
                .evidence
                .extend(addresses(field, Kind::Envelope(rank as u8), depth));
        } else if CONTENT.contains(&lower.as_str()) {
            facts
                .evidence
                .extend(addresses(field, Kind::Content, depth));
        } else {
            match lower.as_str() {
                "message-id" if facts.message_id.is_none() => {
                    facts.message_id =
                        Some(one_line(field.value().trim())).filter(|v| !v.is_empty());
                }
                "date" if facts.date.is_none() => {
                    facts.date = mailparse::dateparse(&field.value()).ok()
                }
                "from" if facts.from.is_empty() => {
                    facts.from = one_line(&field.value());
                    facts.from_address = field
                        .parsed()
                        .and_then(|h| parse_list(&h).addrs.into_iter().next());
                }
                "list-id" => {
                    let v = field.value();
                    let id = v.rsplit_once('<').map_or(v.as_str(), |(_, r)| r);
                    facts.list_id = Some(one_line(id.trim_end_matches(['>', ' '])).to_lowercase());
                    facts.is_list = true;
                }
                "list-post" => {
                    let v = field.value();
                    facts.list_post = v
                        .split(['<', '>'])
                        .find_map(|p| p.strip_prefix("mailto:"))
                        .and_then(|a| bare_address(a.split('?').next().unwrap_or(a)));
                    facts.is_list = true;
                }
                "mailing-list" | "x-mailing-list" => facts.is_list = true,
                "precedence" if field.value().trim().eq_ignore_ascii_case("list") => {
                    facts.is_list = true
                }
                "in-reply-to" => facts.parents.extend(message_ids(&field.value()).take(1)),
                "references" => {
                    let ids: Vec<u64> = message_ids(&field.value()).collect();
                    facts.parents.extend(ids.iter().rev().take(3));
                }
                "subject" if facts.subject.is_empty() => facts.subject = one_line(&field.value()),
                "return-path" => facts.has_return_path = true,
                "status" | "x-status" | "x-mozilla-status" => flags.read(&lower, &field.value()),
                _ if lower.starts_with("x-")
                    && !NOT_RECIPIENT.contains(&lower.as_str())
                    && !lower.starts_with("x-popsplit-")
                    && field.raw.len() < 300
                    && memchr::memchr(b'@', field.raw).is_some() =>
                {
                    facts.evidence.extend(addresses(field, Kind::Other, depth));
                }
                _ => {}
            }
        }
    }
    facts.flags = flags.to_maildir();
    facts.id_hash = facts.message_id.as_deref().map_or(0, id_hash);
    facts.parents.sort_unstable();
    facts.parents.dedup();
    facts.header_key = header_key(&block.fields, facts.message_id.as_deref());
    facts.body_start = block.body_start;
    facts
}

/// One evidence item per address of an address-carrying field (one empty item if none).
fn addresses(field: &Field<'_>, kind: Kind, depth: usize) -> Vec<Evidence> {
    let header = one_line(&String::from_utf8_lossy(field.name));
    let list = field.parsed().map(|h| parse_list(&h)).unwrap_or_default();
    if list.addrs.is_empty() {
        return vec![Evidence {
            header,
            address: None,
            kind,
            depth,
            salvaged: list.salvaged,
        }];
    }
    list.addrs
        .into_iter()
        .map(|a| Evidence {
            header: header.clone(),
            address: Some(one_line(&a)),
            kind,
            depth,
            salvaged: list.salvaged,
        })
        .collect()
}

/// The address of a Received field's `for` clause, if it has one.
fn received_for(field: &Field<'_>, depth: usize) -> Option<Evidence> {
    let text = String::from_utf8_lossy(field.raw);
    // The clause sits before the `;` that starts the date; comments may hold a `for` too,
    // so the last well-formed one before the date wins.
    let head = text.rsplit_once(';').map_or(&*text, |(h, _)| h);
    let words: Vec<&str> = head.split_ascii_whitespace().collect();
    let addr = words
        .windows(2)
        .rev()
        .filter(|w| w[0].eq_ignore_ascii_case("for"))
        .find_map(|w| bare_address(w[1].trim_end_matches([';', ')', ','])))?;
    Some(Evidence {
        header: "Received".into(),
        address: Some(one_line(&addr)),
        kind: Kind::ReceivedFor,
        depth,
        salvaged: false,
    })
}

/// The `<...>` message ids in a field, hashed.
fn message_ids(value: &str) -> impl Iterator<Item = u64> + '_ {
    value
        .split('<')
        .skip(1)
        .filter_map(|p| p.split_once('>').map(|(id, _)| id))
        .filter(|id| id.contains('@'))
        .map(id_hash)
}

/// The `by` and `from` hosts of a Received field. A `by` word that is not a host name
/// (qmail's `invoked by uid 89`) counts as none.
fn hop(field: &Field<'_>) -> Hop {
    let text = String::from_utf8_lossy(field.raw);
    let head = text.split_once(';').map_or(&*text, |(h, _)| h);
    let words: Vec<&str> = head.split_ascii_whitespace().skip(1).collect();
    let host = |w: Option<&&str>| {
        w.map(|h| {
            h.trim_matches(['(', ')', '[', ']', ';'])
                .trim_end_matches('.')
                .to_ascii_lowercase()
        })
        .filter(|h| h.contains('.') || h == "localhost")
        .unwrap_or_else(|| "-".to_string())
    };
    let from = if words
        .first()
        .is_some_and(|w| w.eq_ignore_ascii_case("from"))
    {
        host(words.get(1))
    } else {
        "-".to_string()
    };
    let by = words
        .iter()
        .position(|w| w.eq_ignore_ascii_case("by"))
        .map_or_else(|| "-".to_string(), |i| host(words.get(i + 1)));
    Hop { by, from }
}

/// Read/answered/flagged state that mail clients wrote into the mbox.
#[derive(Debug, Default)]
struct Flags {
    seen: bool,
    replied: bool,
    flagged: bool,
}

impl Flags {
    fn read(&mut self, name: &str, value: &str) {
        let v = value.trim();
        match name {
            "status" => self.seen |= v.contains('R'),
            "x-status" => {
                self.replied |= v.contains('A');
                self.flagged |= v.contains('F');
            }
            _ => {
                // Thunderbird: 0x1 read, 0x2 replied, 0x4 marked.
                if let Ok(bits) = u32::from_str_radix(v, 16) {
                    self.seen |= bits & 1 != 0;
                    self.replied |= bits & 2 != 0;
                    self.flagged |= bits & 4 != 0;
                }
            }
        }
    }

    /// Maildir flag letters in ASCII order, as the Maildir specification asks.
    fn to_maildir(&self) -> String {
        [(self.flagged, 'F'), (self.replied, 'R'), (self.seen, 'S')]
            .iter()
            .filter_map(|&(on, c)| on.then_some(c))
            .collect()
    }
}

/// A 128-bit identity of the message that ignores the per-copy trace fields the
/// delivering server added (Received, Delivered-To, ...), so that the copies one
/// per envelope recipient that a box received are recognised as one message.
/// Only the passes that deliver need it, so it is kept apart from [`gather`]: the body is
/// the bulk of a message, and it is hashed once.
pub fn identity(msg: &[u8], facts: &Facts) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(&facts.header_key);
    h.update(b"\0body\0");
    h.update(msg.get(facts.body_start..).unwrap_or_default());
    let mut out = [0; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// What identifies a message apart from its body: the Message-ID, or without one the
/// From, Date and Subject fields as written.
fn header_key(fields: &[Field<'_>], message_id: Option<&str>) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    match message_id {
        Some(id) => {
            h.update(b"id\0");
            h.update(id.as_bytes());
        }
        None => {
            for name in ["from", "date", "subject"] {
                if let Some(f) = fields.iter().find(|f| f.is(name)) {
                    h.update(f.raw);
                }
                h.update(b"\0");
            }
        }
    }
    let mut out = [0; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "Return-Path: <s@y>\r\nDelivered-To: box@isp.net\r\nX-Original-To: Alice@example.com\r\nReceived: from mx by pop.isp.net with ESMTP id 1 for <alice@example.com>; Mon, 1 Jan 2001 00:00:00 +0000\r\nReceived: from evil (helo) by relay (for <ceo@example.com>) for <ceo@example.com>; Sun, 31 Dec 2000 00:00:00 +0000\r\nTo: \"B\" <bob@example.com>, carol@example.com\r\nMessage-ID: <1@y>\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\nStatus: RO\r\nX-Status: AF\r\n\r\nbody\r\n";

    #[test]
    fn gathers_every_claim_with_its_depth() {
        let f = gather(MSG.as_bytes());
        let got: Vec<(&str, Option<&str>, Kind, usize)> = f
            .evidence
            .iter()
            .map(|e| (e.header.as_str(), e.address.as_deref(), e.kind, e.depth))
            .collect();
        assert_eq!(
            got,
            vec![
                ("Delivered-To", Some("box@isp.net"), Kind::Envelope(2), 0),
                (
                    "X-Original-To",
                    Some("Alice@example.com"),
                    Kind::Envelope(0),
                    0
                ),
                ("Received", Some("alice@example.com"), Kind::ReceivedFor, 0),
                ("Received", Some("ceo@example.com"), Kind::ReceivedFor, 1),
                ("To", Some("bob@example.com"), Kind::Content, 2),
                ("To", Some("carol@example.com"), Kind::Content, 2),
            ]
        );
        assert!(f.crlf && f.has_return_path);
        assert_eq!(f.flags, "FRS");
        assert_eq!(f.date, Some(978_307_200));
        assert_eq!(f.message_id.as_deref(), Some("<1@y>"));
    }

    #[test]
    fn copies_differing_only_in_trace_fields_share_an_identity() {
        let id = |m: &[u8]| identity(m, &gather(m));
        let a = id(b"Delivered-To: a@x\nMessage-ID: <m@x>\n\nbody\n");
        let b = id(b"Delivered-To: b@x\nReceived: by y\nMessage-ID: <m@x>\n\nbody\n");
        let c = id(b"Delivered-To: b@x\nMessage-ID: <m@x>\n\nother body\n");
        let d = id(b"Delivered-To: b@x\n\nbody\n");
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, d);
    }

    #[test]
    fn hops_lists_threads_and_other_fields() {
        let f = gather(
            b"Received: (qmail 1 invoked by uid 89); 1 Jan 2001\nReceived: from a.example.org (a [1.2.3.4]) by MX1.isp.net. with SMTP; x\nReceived: from localhost by localhost; x\nList-Id: Rust Users <Rust.lists.example.org>\nList-Post: <mailto:rust@lists.example.org?subject=x>\nIn-Reply-To: <p@x>\nReferences: <a@x> <b@x>\n <p@x>\nX-Rcpt-Info: alice@example.com\nX-Sender: bob@example.com\nFrom: \"Bob\" <Bob@Example.org>\n\n",
        );
        let hops: Vec<(&str, &str)> = f
            .hops
            .iter()
            .map(|h| (h.by.as_str(), h.from.as_str()))
            .collect();
        assert_eq!(
            hops,
            vec![
                ("-", "-"),
                ("mx1.isp.net", "a.example.org"),
                ("localhost", "localhost")
            ]
        );
        assert_eq!(f.list_id.as_deref(), Some("rust.lists.example.org"));
        assert_eq!(f.list_post.as_deref(), Some("rust@lists.example.org"));
        assert!(f.is_list);
        let mut want = vec![id_hash("<p@x>"), id_hash("a@x"), id_hash("<b@x>")];
        want.sort_unstable();
        assert_eq!(f.parents, want);
        assert_eq!(f.from_address.as_deref(), Some("Bob@Example.org"));
        let other: Vec<_> = f
            .evidence
            .iter()
            .filter(|e| e.kind == Kind::Other)
            .map(|e| e.header.as_str())
            .collect();
        assert_eq!(other, vec!["X-Rcpt-Info"]);
    }

    #[test]
    fn mozilla_status_and_missing_fields() {
        let f = gather(b"X-Mozilla-Status: 0003\nTo: undisclosed-recipients:;\n\n");
        assert_eq!(f.flags, "RS");
        assert_eq!(f.evidence.len(), 1);
        assert_eq!(f.evidence[0].address, None);
        let none = gather(b"");
        assert!(none.evidence.is_empty() && none.flags.is_empty());
    }
}

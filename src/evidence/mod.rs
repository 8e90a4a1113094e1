//! Stage 2 (gather evidence): read one message's header block into plain facts.
//!
//! Nothing here decides anything; it only records what each field claims and where it
//! stands (how many Received fields sit above it), so that the decision can judge trust.

pub mod address;
mod headers;

use std::borrow::Cow;
use std::collections::HashMap;

use crate::evidence::address::{AddressList, bare_address, field_list};
use crate::text::{lossy, one_line, one_line_owned};
use headers::Field;

/// The rank (0 is best) of an envelope field written by the delivering server, by its
/// lower-case name. X-Original-To holds the address before alias expansion; Delivered-To
/// often names the shared box itself (see the evidence notes), so it comes last. A `match`
/// rather than a search of lists, as every field's name is looked up here.
fn envelope_rank(name: &[u8]) -> Option<u8> {
    match name {
        b"x-original-to" | b"x-gm-original-to" => Some(0),
        b"envelope-to"
        | b"x-envelope-to"
        | b"x-rcpt-to"
        | b"x-recipient"
        | b"x-envelope-recipient"
        | b"x-original-recipient"
        | b"x-delivered-to"
        | b"x-resolved-to"
        | b"x-ms-exchange-organization-originalenveloperecipients" => Some(1),
        b"delivered-to" => Some(ROUTING_RANK),
        _ => None,
    }
}

/// The rank of Delivered-To, the last.
const ROUTING_RANK: u8 = 2;

/// Content fields that name recipients but were written by the sender.
fn is_content(name: &[u8]) -> bool {
    matches!(
        name,
        b"to" | b"cc" | b"resent-to" | b"resent-cc" | b"bcc" | b"resent-bcc" | b"apparently-to"
    )
}

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

/// Which delivery a claim belongs to. A box holds a message as the last server delivered
/// it; what earlier deliveries wrote (a list server's, a forwarder's, the mailbox a message
/// was redirected from) stays in the header below, and describes history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Place {
    /// Written for the delivery into this box, above the older parts of the header.
    Current,
    /// An envelope field below every Received field, where some providers (Exchange
    /// Online, GMX/IONOS) append their own; it counts only as the provider's, see
    /// [`crate::decide::profile::Profile::bottom_fields`]. The last such field of a name.
    Bottom,
    /// Part of an earlier delivery: below a Resent-* block, a forwarding mark, or a
    /// second delivery's envelope field of the same name.
    Earlier,
}

/// One address claim found in the header block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// The field name as written (made safe).
    pub header: Cow<'static, str>,
    /// The address as found, or `None` when the field held nothing usable.
    pub address: Option<String>,
    /// What kind of claim this is.
    pub kind: Kind,
    /// Number of Received fields above this field (0 = at the very top).
    pub depth: usize,
    /// The address was picked out of a field that the address parser rejected.
    pub salvaged: bool,
    /// Which delivery the claim belongs to.
    pub place: Place,
}

/// Everything the later stages need to know about one message, as plain data.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// Address claims, in header order.
    pub evidence: Vec<Evidence>,
    /// The Message-ID field's value (made safe).
    pub message_id: Option<String>,
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
    /// Hash of the Message-ID, for thread look-ups.
    pub id_hash: Option<u64>,
    /// Hashes of the In-Reply-To and the last References ids.
    pub parents: Vec<u64>,
}

/// One Received field: the host that wrote it (`by`), lower case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hop {
    /// The host that added the field; `None` when the field names none (qmail's
    /// `(qmail 1 invoked by alias)`, Google's `by 2002:a05:…` address literal): such a
    /// field says nothing about who wrote it.
    pub by: Option<String>,
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
    let mut scan = Deliveries::default();
    // The field each evidence item came from, to find the last of a name at the bottom.
    let mut field_of = Vec::with_capacity(16);
    // One buffer for every field's lower-case name: a String each was a good part of the
    // allocations of header reading. Bytes, as every name it is compared with is ASCII:
    // checking each name as UTF-8 first was 1.6% of a run on small messages (callgrind).
    let mut lower: Vec<u8> = Vec::with_capacity(64);
    for (at, field) in block.fields.iter().enumerate() {
        lower.clear();
        lower.extend_from_slice(field.name);
        lower.make_ascii_lowercase();
        scan.field(lower.starts_with(b"resent-"));
        if lower == b"received" {
            // Both read the field as text: converted once.
            let text = lossy(field.raw);
            if let Some(e) = received_for(&text, depth, scan.place_of_trace()) {
                facts.evidence.push(e);
            }
            let hop = hop(&text);
            if hop.by.is_some() {
                scan.hop();
            }
            facts.hops.push(hop);
            depth += 1;
        } else if let Some(rank) = envelope_rank(&lower) {
            let place = scan.envelope(&lower);
            facts
                .evidence
                .extend(addresses(field, Kind::Envelope(rank), depth, place));
        } else if is_content(&lower) {
            let place = scan.place_of_content();
            facts
                .evidence
                .extend(addresses(field, Kind::Content, depth, place));
        } else {
            match lower.as_slice() {
                b"message-id" if facts.message_id.is_none() => {
                    facts.message_id =
                        Some(one_line(field.value().trim())).filter(|v| !v.is_empty());
                }
                b"from" if facts.from.is_empty() => {
                    facts.from = one_line_owned(field.value());
                    facts.from_address = field_list(field.raw).addrs.into_iter().next();
                }
                b"list-id" => {
                    let v = field.value();
                    let id = v.rsplit_once('<').map_or(v.as_str(), |(_, r)| r);
                    facts.list_id = Some(one_line(id.trim_end_matches(['>', ' '])).to_lowercase());
                    facts.is_list = true;
                }
                b"list-post" => {
                    let v = field.value();
                    facts.list_post = v
                        .split(['<', '>'])
                        .find_map(|p| p.strip_prefix("mailto:"))
                        .and_then(|a| bare_address(a.split('?').next().unwrap_or(a)));
                    facts.is_list = true;
                }
                b"mailing-list" | b"x-mailing-list" => facts.is_list = true,
                b"precedence" if field.value().trim().eq_ignore_ascii_case("list") => {
                    facts.is_list = true
                }
                b"in-reply-to" => facts.parents.extend(message_ids(&field.value()).take(1)),
                b"references" => {
                    let ids: Vec<u64> = message_ids(&field.value()).collect();
                    facts.parents.extend(ids.iter().rev().take(3));
                }
                b"subject" if facts.subject.is_empty() => {
                    facts.subject = one_line_owned(field.value())
                }
                b"return-path" => facts.has_return_path = true,
                b"status" | b"x-status" | b"x-mozilla-status" => flags.read(&lower, &field.value()),
                // Gmail writes these where it forwarded a message it had delivered to
                // another mailbox: what follows is that earlier delivery.
                b"x-forwarded-to" | b"x-forwarded-for" => scan.forwarded(),
                _ if lower.starts_with(b"x-")
                    && !NOT_RECIPIENT.iter().any(|n| n.as_bytes() == lower)
                    && !lower.starts_with(b"x-popsplit-")
                    && field.raw.len() < 300
                    && memchr::memchr(b'@', field.raw).is_some() =>
                {
                    let place = scan.envelope(&lower);
                    facts
                        .evidence
                        .extend(addresses(field, Kind::Other, depth, place));
                }
                _ => {}
            }
        }
        field_of.resize(facts.evidence.len(), at);
    }
    place_bottom_fields(&mut facts, &field_of, depth);
    place_alias_chain(&mut facts.evidence);
    facts.flags = flags.to_maildir();
    facts.id_hash = facts.message_id.as_deref().map(id_hash);
    facts.parents.sort_unstable();
    facts.parents.dedup();
    facts.header_key = header_key(&block.fields, facts.message_id.as_deref());
    facts.body_start = block.body_start;
    facts
}

/// One evidence item per address of an address-carrying field (one empty item if none).
fn addresses(field: &Field<'_>, kind: Kind, depth: usize, place: Place) -> Vec<Evidence> {
    let header = label(field.name);
    let list = match kind {
        Kind::Content => field_list(field.raw),
        _ => server_list(field),
    };
    if list.addrs.is_empty() {
        return vec![Evidence {
            header,
            address: None,
            kind,
            depth,
            salvaged: list.salvaged,
            place,
        }];
    }
    list.addrs
        .into_iter()
        .map(|a| Evidence {
            header: header.clone(),
            address: Some(one_line_owned(a)),
            kind,
            depth,
            salvaged: list.salvaged,
            place,
        })
        .collect()
}

/// A field's name as written, made safe. The usual spellings are borrowed: a copy of the
/// name for each address a field holds was a good part of the allocations of header
/// reading on mailboxes of small messages (callgrind).
fn label(name: &[u8]) -> Cow<'static, str> {
    Cow::Borrowed(match name {
        b"To" => "To",
        b"Cc" => "Cc",
        b"CC" => "CC",
        b"TO" => "TO",
        b"Bcc" => "Bcc",
        b"Resent-To" => "Resent-To",
        b"Resent-Cc" => "Resent-Cc",
        b"Delivered-To" => "Delivered-To",
        b"X-Original-To" => "X-Original-To",
        b"Envelope-To" => "Envelope-To",
        b"X-Envelope-To" => "X-Envelope-To",
        b"X-Delivered-To" => "X-Delivered-To",
        b"X-Rcpt-To" => "X-Rcpt-To",
        b"X-RCPT-TO" => "X-RCPT-TO",
        b"X-Original-Recipient" => "X-Original-Recipient",
        b"X-Envelope-Recipient" => "X-Envelope-Recipient",
        b"X-Recipient" => "X-Recipient",
        b"X-Resolved-To" => "X-Resolved-To",
        b"X-Gm-Original-To" => "X-Gm-Original-To",
        _ => return Cow::Owned(one_line(&lossy(name))),
    })
}

/// The addresses of a field a server wrote: bare or bracketed addresses separated by
/// commas, semicolons or spaces, after RFC 2047 decoding (Exchange writes
/// `OriginalEnvelopeRecipients` as `=?us-ascii?Q?alice=40example.com=3B_bob=40…?=`).
fn server_list(field: &Field<'_>) -> AddressList {
    AddressList {
        addrs: field
            .value()
            .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
            .filter_map(bare_address)
            .collect(),
        salvaged: false,
    }
}

/// The address of a Received field's `for` clause, if it has one.
fn received_for(text: &str, depth: usize, place: Place) -> Option<Evidence> {
    // The clause sits before the `;` that starts the date; comments may hold a `for` too,
    // so the last well-formed one before the date wins.
    let head = text.rsplit_once(';').map_or(text, |(h, _)| h);
    // The last address that follows a word `for`.
    let addr = after_word(head, b"for")
        .filter_map(|rest| rest.split_ascii_whitespace().next())
        .filter_map(|w| bare_address(w.trim_end_matches([';', ')', ','])))
        .last()?;
    Some(Evidence {
        header: "Received".into(),
        address: Some(one_line_owned(addr)),
        kind: Kind::ReceivedFor,
        depth,
        salvaged: false,
        place,
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

/// Where one delivery ends and an earlier one begins, read top to bottom.
#[derive(Debug, Default)]
struct Deliveries {
    /// A Resent-* field has been read.
    resent: bool,
    /// Below the Resent-* block: the whole rest is the message as it was before.
    below_resent: bool,
    /// Below a forwarding mark or a second delivery's envelope field: envelope fields and
    /// Received `for` clauses are history (To/Cc are still the message's own).
    below_forward: bool,
    /// Envelope field names of this delivery, and whether a Received field with a host
    /// has been read since the name was last seen.
    names: Vec<(Vec<u8>, bool)>,
}

impl Deliveries {
    fn field(&mut self, resent: bool) {
        if resent {
            self.resent = true;
        } else if self.resent {
            self.below_resent = true;
        }
    }

    fn hop(&mut self) {
        for n in &mut self.names {
            n.1 = true;
        }
    }

    fn forwarded(&mut self) {
        self.below_forward = true;
    }

    /// An envelope field named `name`: the same name again after a relay hop is the
    /// previous delivery's (a list server's `X-Original-To: list@…`, the Delivered-To of the
    /// mailbox a message was forwarded from). Without a hop between, it is one server's
    /// alias chain (qmail's `invoked by alias`).
    fn envelope(&mut self, name: &[u8]) -> Place {
        if self.below_resent || self.below_forward {
            return Place::Earlier;
        }
        match self.names.iter_mut().find(|n| n.0 == name) {
            Some((_, true)) => {
                self.below_forward = true;
                Place::Earlier
            }
            Some(_) => Place::Current,
            None => {
                self.names.push((name.to_vec(), false));
                Place::Current
            }
        }
    }

    fn place_of_trace(&self) -> Place {
        match self.below_resent || self.below_forward {
            true => Place::Earlier,
            false => Place::Current,
        }
    }

    fn place_of_content(&self) -> Place {
        match self.below_resent {
            true => Place::Earlier,
            false => Place::Current,
        }
    }
}

/// Envelope fields below every Received field are where Exchange Online and GMX/IONOS
/// append their own; of several of one name, the provider's is the last.
fn place_bottom_fields(facts: &mut Facts, field_of: &[usize], hops: usize) {
    if hops == 0 {
        return;
    }
    let bottom =
        |e: &Evidence| e.depth == hops && matches!(e.kind, Kind::Envelope(_) | Kind::Other);
    // The last field of each name, found in one pass: a hostile field may hold a million
    // addresses.
    let mut last: HashMap<String, usize> = HashMap::new();
    for (e, &field) in facts.evidence.iter().zip(field_of) {
        if bottom(e) {
            last.insert(e.header.to_ascii_lowercase(), field);
        }
    }
    for (e, &field) in facts.evidence.iter_mut().zip(field_of) {
        if bottom(e) {
            let latest = last.get(&e.header.to_ascii_lowercase()) == Some(&field);
            e.place = if latest {
                Place::Bottom
            } else {
                Place::Earlier
            };
        }
    }
}

/// In one server's alias chain (several Delivered-To fields of the current delivery with
/// no relay hop between, as qmail and Plesk write them), the lowest names the address the
/// sender used and the ones above it the mailboxes it was passed on to.
fn place_alias_chain(evidence: &mut [Evidence]) {
    let routing = Kind::Envelope(ROUTING_RANK);
    let chain: Vec<usize> = evidence
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == routing && e.place == Place::Current)
        .map(|(i, _)| i)
        .collect();
    if let [first, .., last] = chain.as_slice()
        && evidence[*first].address != evidence[*last].address
    {
        evidence[*last].kind = Kind::Envelope(0);
    }
}

/// The `by` host of a Received field. Comments are skipped (qmail's `(qmail 1 invoked by
/// uid 89)` names no host), and so are address literals (Google's `by 2002:a05:…`).
fn hop(text: &str) -> Hop {
    let head = text.split_once(';').map_or(text, |(h, _)| h);
    let plain = outside_comments(head);
    // After the first word (`from`, or what stands in its place), the first word `by`.
    let first = plain.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let second = first
        .find(|c: char| c.is_ascii_whitespace())
        .map_or("", |i| &first[i..]);
    let mut words = after_word(second, b"by")
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace();
    let by = words
        .next()
        // indimail writes `by host mail.example.jp`.
        .and_then(|w| match w.eq_ignore_ascii_case("host") {
            true => words.next(),
            false => Some(w),
        })
        .and_then(host_name);
    Hop { by }
}

/// The word after `by` as a host name, lower case, or `None` for what cannot be one (an
/// address literal, a word without letters).
fn host_name(word: &str) -> Option<String> {
    Some(word.trim_end_matches('.').to_ascii_lowercase()).filter(|h| {
        h.chars().any(|c| c.is_ascii_alphabetic())
            && h.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
            && !h.starts_with('-')
    })
}

/// What follows each word of `text` that is `key` (ASCII, in any case), where words are
/// what `split_ascii_whitespace` makes of it. Found by memchr on the key's first letter:
/// a Received field read word by word was most of `gather`'s own instructions (callgrind).
fn after_word<'a>(text: &'a str, key: &'static [u8]) -> impl Iterator<Item = &'a str> + 'a {
    let b = text.as_bytes();
    let (lower, upper) = (key[0].to_ascii_lowercase(), key[0].to_ascii_uppercase());
    memchr::memchr2_iter(lower, upper, b).filter_map(move |at| {
        let end = at + key.len();
        let whole = (at == 0 || b[at - 1].is_ascii_whitespace())
            && b.get(at..end).is_some_and(|w| w.eq_ignore_ascii_case(key))
            && b.get(end).is_none_or(u8::is_ascii_whitespace);
        // `end` follows ASCII and is at the end or before ASCII white space: a boundary.
        whole.then(|| &text[end..])
    })
}

/// `head` with what is inside comments made spaces and the parentheses dropped.
fn outside_comments(head: &str) -> String {
    // By bytes, as parentheses are ASCII and never part of another character: what is
    // inside a comment becomes spaces and the parentheses go, so the words outside
    // comments stay whole UTF-8. The runs between parentheses are copied whole (a
    // character at a time, then a byte at a time, this loop was most of `gather`'s own
    // instructions, callgrind).
    let bytes = head.as_bytes();
    let mut plain = Vec::with_capacity(bytes.len());
    let mut depth = 0usize;
    let mut at = 0;
    let run = |plain: &mut Vec<u8>, part: &[u8], depth: usize| match depth {
        0 => plain.extend_from_slice(part),
        _ => plain.resize(plain.len() + part.len(), b' '),
    };
    for i in memchr::memchr2_iter(b'(', b')', bytes) {
        run(&mut plain, &bytes[at..i], depth);
        depth = match bytes[i] {
            b'(' => depth + 1,
            _ => depth.saturating_sub(1),
        };
        at = i + 1;
    }
    run(&mut plain, &bytes[at..], depth);
    // Only ASCII bytes were replaced or dropped, so the text is still UTF-8.
    String::from_utf8(plain).unwrap_or_default()
}

/// Read/answered/flagged state that mail clients wrote into the mbox.
#[derive(Debug, Default)]
struct Flags {
    seen: bool,
    replied: bool,
    flagged: bool,
}

impl Flags {
    fn read(&mut self, name: &[u8], value: &str) {
        let v = value.trim();
        match name {
            b"status" => self.seen |= v.contains('R'),
            b"x-status" => {
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

/// The first Date field of `msg` that parses, as seconds since the epoch. Read apart from
/// [`gather`], and only for a message whose time the mbox separator or the file does not
/// give: parsing every Date in every pass was 1.6% of the work on small messages.
pub fn date(msg: &[u8]) -> Option<i64> {
    headers::split(msg)
        .fields
        .iter()
        .filter(|f| f.is("date"))
        .find_map(|f| mailparse::dateparse(&f.value()).ok())
}

/// How much of a hashed stream [`hash_parts`] copies: BLAKE3 hashes 16 chunks of 1 KB at
/// once (AVX-512), and what follows the first 16 chunks is on its chunk grid.
const HEAD: usize = 16 * blake3::CHUNK_LEN;

/// BLAKE3 of the concatenation of `parts`, without copying more than its first 16 KB.
/// Fed after a few bytes of prefix, a body or header block starts off BLAKE3's chunk grid,
/// and the incremental hasher then takes its first chunks one at a time (1 GB of mail:
/// 0.44 s, against 0.24 s from one contiguous copy); copying every body was 10% of the
/// user time on 1 GB. So the stream's first `HEAD` bytes are copied, and the rest, now on
/// the grid, is hashed where it lies: the same value as hashing the whole stream.
pub fn hash_parts(parts: &[&[u8]]) -> blake3::Hash {
    thread_local! {
        // One buffer per thread: two streams a message are hashed, and a fresh 16 KB
        // buffer each time showed in the profile of small messages.
        static HEAD_COPY: std::cell::RefCell<Vec<u8>> =
            std::cell::RefCell::new(Vec::with_capacity(HEAD));
    }
    HEAD_COPY.with_borrow_mut(|head| {
        head.clear();
        for (i, part) in parts.iter().enumerate() {
            let take = part.len().min(HEAD - head.len());
            head.extend_from_slice(&part[..take]);
            if take < part.len() {
                let mut h = blake3::Hasher::new();
                h.update(head).update(&part[take..]);
                for later in &parts[i + 1..] {
                    h.update(later);
                }
                return h.finalize();
            }
        }
        blake3::hash(head)
    })
}

/// A 128-bit identity of the message that ignores the per-copy trace fields the
/// delivering server added (Received, Delivered-To, ...), so that the copies one
/// per envelope recipient that a box received are recognised as one message.
/// Only the passes that deliver need it, so it is kept apart from [`gather`]: the body is
/// the bulk of a message, and it is hashed once.
pub fn identity(msg: &[u8], facts: &Facts) -> [u8; 16] {
    let body = msg.get(facts.body_start..).unwrap_or_default();
    let digest = hash_parts(&[&facts.header_key, b"\0body\0", body]);
    let mut out = [0; 16];
    out.copy_from_slice(&digest.as_bytes()[..16]);
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

    #[test]
    fn field_names_are_kept_as_written_and_usual_spellings_borrowed() {
        assert!(matches!(
            label(b"Delivered-To"),
            Cow::Borrowed("Delivered-To")
        ));
        for (raw, shown) in [
            (&b"tO"[..], "tO"),
            (b"X-Envelope-TO", "X-Envelope-TO"),
            (b"X-\xe2\x80\xaeTo", "X-?To"),
            (b"X-\xffTo", "X-\u{fffd}To"),
        ] {
            let got = label(raw);
            assert!(matches!(got, Cow::Owned(_)), "{raw:?}");
            assert_eq!(got, shown);
        }
        let facts = gather(b"tO: a@example.com\nTo: b@example.com, c@example.com\n\n");
        let names: Vec<&str> = facts.evidence.iter().map(|e| &*e.header).collect();
        assert_eq!(names, ["tO", "To", "To"]);
        // Names are classed by their bytes: one that is not UTF-8 is still an `X-` field,
        // shown made safe.
        let facts = gather(b"X-\xffTo: a@example.com\nRESENT-TO: b@example.com\n\n");
        let got: Vec<(&str, Kind)> = facts
            .evidence
            .iter()
            .map(|e| (&*e.header, e.kind))
            .collect();
        assert_eq!(
            got,
            [("X-\u{fffd}To", Kind::Other), ("RESENT-TO", Kind::Content)]
        );
    }

    proptest::proptest! {
        /// The run-by-run copy gives what a byte at a time gave.
        #[test]
        fn outside_comments_agrees_with_a_byte_at_a_time(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "(", ")", "((", "))", "by", " ", "mx.example.net", "\u{e9}", "\u{3000}",
                "[192.0.2.1]", "\t", "qmail 1 invoked by uid 89",
            ]), 0..16),
        ) {
            let head = parts.concat();
            let mut plain = Vec::new();
            let mut depth = 0usize;
            for &b in head.as_bytes() {
                match b {
                    b'(' => depth += 1,
                    b')' => depth = depth.saturating_sub(1),
                    _ if depth == 0 => plain.push(b),
                    _ => plain.push(b' '),
                }
            }
            let plain = String::from_utf8(plain).expect("UTF-8");
            proptest::prop_assert_eq!(outside_comments(&head), plain);
        }

        /// The `for` address and the `by` host found by memchr are the ones a walk word
        /// by word finds.
        #[test]
        fn received_words_agree_with_a_word_by_word_walk(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "for", "FOR", "For", "fore", "xfor", "by", "BY", "bY", "byx", "host", "from",
                " ", "\t", "\r\n", "\u{c}", "(", ")", ";", ",", "<a@example.com>",
                "b@example.net;", "mx.example.net", "MX.Example.NET.", "f", "b", "\u{e9}",
                "\u{3000}", "\u{85}", "for<c@example.com>",
            ]), 0..24),
        ) {
            let text = parts.concat();
            let head = text.rsplit_once(';').map_or(text.as_str(), |(h, _)| h);
            let (mut addr, mut after_for) = (None, false);
            for word in head.split_ascii_whitespace() {
                if after_for
                    && let Some(a) = bare_address(word.trim_end_matches([';', ')', ',']))
                {
                    addr = Some(a);
                }
                after_for = word.eq_ignore_ascii_case("for");
            }
            let got = received_for(&text, 0, Place::Current).and_then(|e| e.address);
            proptest::prop_assert_eq!(got, addr.map(one_line_owned));

            let head = text.split_once(';').map_or(text.as_str(), |(h, _)| h);
            let plain = outside_comments(head);
            let mut words = plain.split_ascii_whitespace().skip(1);
            let by = words
                .by_ref()
                .find(|w| w.eq_ignore_ascii_case("by"))
                .and_then(|_| words.next())
                .and_then(|w| match w.eq_ignore_ascii_case("host") {
                    true => words.next(),
                    false => Some(w),
                })
                .and_then(host_name);
            proptest::prop_assert_eq!(hop(&text).by, by);
        }
    }

    const MSG: &str = "Return-Path: <s@y>\r\nDelivered-To: box@isp.net\r\nX-Original-To: Alice@example.com\r\nReceived: from mx by pop.isp.net with ESMTP id 1 for <alice@example.com>; Mon, 1 Jan 2001 00:00:00 +0000\r\nReceived: from evil (helo) by relay (for <ceo@example.com>) for <ceo@example.com>; Sun, 31 Dec 2000 00:00:00 +0000\r\nTo: \"B\" <bob@example.com>, carol@example.com\r\nMessage-ID: <1@y>\r\nDate: Mon, 1 Jan 2001 00:00:00 +0000\r\nStatus: RO\r\nX-Status: AF\r\n\r\nbody\r\n";

    #[test]
    fn gathers_every_claim_with_its_depth() {
        let f = gather(MSG.as_bytes());
        let got: Vec<(&str, Option<&str>, Kind, usize)> = f
            .evidence
            .iter()
            .map(|e| (&*e.header, e.address.as_deref(), e.kind, e.depth))
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
        assert_eq!(date(MSG.as_bytes()), Some(978_307_200));
        assert_eq!(f.message_id.as_deref(), Some("<1@y>"));
    }

    #[test]
    fn the_first_date_that_parses_counts() {
        let two = b"Date: Mon, 1 Foo 2001 00:00:00 +0000\nDate: Mon, 1 Jan 2001 00:00:00 +0000\nDate: Tue, 2 Jan 2001 00:00:00 +0000\n\nDate: Wed, 3 Jan 2001 00:00:00 +0000\n";
        assert_eq!(date(two), Some(978_307_200));
        // A Date in the body is no header field.
        assert_eq!(
            date(b"Subject: x\n\nDate: Mon, 1 Jan 2001 00:00:00 +0000\n"),
            None
        );
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
    fn an_identity_is_the_same_value_however_long_the_body() {
        // It names copies, so reruns by earlier versions find them: its value is fixed.
        let head = b"Message-ID: <m@x>\n\n";
        let whole = |body_len: usize| {
            let mut m = head.to_vec();
            m.extend((0..body_len).map(|i| b"abcdefghij\n"[i % 11]));
            m
        };
        let hex = |id: [u8; 16]| id.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let m = whole(5);
        assert_eq!(
            hex(identity(&m, &gather(&m))),
            "17ec518ebef5639653edce26ee5f25dd"
        );
        // Either side of the bound: the value of the one stream they all hash.
        for len in [
            0,
            5,
            5000,
            HEAD - 23,
            HEAD - 22,
            HEAD - 21,
            HEAD,
            3 * HEAD + 7,
            1 << 21,
        ] {
            let m = whole(len);
            let facts = gather(&m);
            let mut h = blake3::Hasher::new();
            h.update(&facts.header_key);
            h.update(b"\0body\0");
            h.update(&m[head.len()..]);
            assert_eq!(identity(&m, &facts), h.finalize().as_bytes()[..16], "{len}");
        }
    }

    #[test]
    fn hashing_parts_is_hashing_their_concatenation() {
        let bytes: Vec<u8> = (0..3 * HEAD + 100).map(|i| (i * 7 % 251) as u8).collect();
        // Cuts either side of the copied head, inside it, and past it several times.
        for cuts in [
            vec![],
            vec![0],
            vec![22],
            vec![5, 40],
            vec![HEAD - 1],
            vec![HEAD],
            vec![HEAD + 1, HEAD + 2],
            vec![100, HEAD + 3, 2 * HEAD + 9],
        ] {
            for len in [0, 1, 1000, HEAD - 1, HEAD, HEAD + 1, bytes.len()] {
                let whole = &bytes[..len];
                let mut parts = Vec::new();
                let mut at = 0;
                for &c in cuts.iter().filter(|&&c| c <= len) {
                    parts.push(&whole[at..c]);
                    at = c;
                }
                parts.push(&whole[at..]);
                assert_eq!(hash_parts(&parts), blake3::hash(whole), "{cuts:?} {len}");
            }
        }
    }

    #[test]
    fn hops_lists_threads_and_other_fields() {
        let f = gather(
            b"Received: (qmail 1 invoked by uid 89); 1 Jan 2001\nReceived: from a.example.org (a [1.2.3.4]) by MX1.isp.net. with SMTP; x\nReceived: from localhost by localhost; x\nList-Id: Rust Users <Rust.lists.example.org>\nList-Post: <mailto:rust@lists.example.org?subject=x>\nIn-Reply-To: <p@x>\nReferences: <a@x> <b@x>\n <p@x>\nX-Rcpt-Info: alice@example.com\nX-Sender: bob@example.com\nFrom: \"Bob\" <Bob@Example.org>\n\n",
        );
        let hops: Vec<Option<&str>> = f.hops.iter().map(|h| h.by.as_deref()).collect();
        assert_eq!(hops, vec![None, Some("mx1.isp.net"), Some("localhost")]);
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
            .map(|e| &*e.header)
            .collect();
        assert_eq!(other, vec!["X-Rcpt-Info"]);
    }

    fn places(msg: &str) -> Vec<(String, Option<String>, Kind, Place)> {
        gather(msg.as_bytes())
            .evidence
            .into_iter()
            .map(|e| (e.header.into_owned(), e.address, e.kind, e.place))
            .collect()
    }

    fn at(h: &str, a: &str, k: Kind, p: Place) -> (String, Option<String>, Kind, Place) {
        (h.into(), Some(a.into()), k, p)
    }

    #[test]
    fn hosts_are_names_not_comments_or_literals() {
        let f = gather(
            b"Received: by 2002:a05:6a10:9e0c:b0:5b1:1c2a with SMTP id x; 1 Jan\nReceived: from mail.lfdr.de\n\tby lfdr with LMTP id 2I; 1 Jan\nReceived: indimail-mta queue 1 by host mail.example.jp (invoked by alias); 1 Jan\nReceived: from [1.2.3.4] by [5.6.7.8]; x\n\n",
        );
        let hops: Vec<Option<&str>> = f.hops.iter().map(|h| h.by.as_deref()).collect();
        assert_eq!(
            hops,
            vec![None, Some("lfdr"), Some("mail.example.jp"), None]
        );
    }

    /// The shape of `../shared/corpora/kernel-lists`: the subscriber's delivery on top, the
    /// list server's own `X-Original-To` below its hops.
    #[test]
    fn a_list_servers_delivery_is_earlier() {
        let got = places(
            "Delivered-To: lists+leds@lfdr.de\nReceived: from mail.lfdr.de\n\tby lfdr with LMTP id 2I\n\tfor <lists+leds@lfdr.de>; Wed, 29 Apr 2026 17:47:56 +0200\nX-Original-To: lists+leds@lfdr.de\nReceived: from sto.lore.kernel.org by mail.lfdr.de (Postfix) with ESMTPS id 6E\n\tfor <lists+leds@lfdr.de>; x\nReceived: from smtp.subspace.kernel.org by sto.lore.kernel.org (Postfix) with ESMTP id 38; x\nX-Original-To: linux-leds@vger.kernel.org\nReceived: from mail-dl1-f49.google.com by smtp.subspace.kernel.org (Postfix)\n\tfor <linux-leds@vger.kernel.org>; x\nTo: linux-leds@vger.kernel.org\n\n",
        );
        use Place::*;
        assert_eq!(
            got,
            vec![
                at(
                    "Delivered-To",
                    "lists+leds@lfdr.de",
                    Kind::Envelope(2),
                    Current
                ),
                at("Received", "lists+leds@lfdr.de", Kind::ReceivedFor, Current),
                at(
                    "X-Original-To",
                    "lists+leds@lfdr.de",
                    Kind::Envelope(0),
                    Current
                ),
                at("Received", "lists+leds@lfdr.de", Kind::ReceivedFor, Current),
                at(
                    "X-Original-To",
                    "linux-leds@vger.kernel.org",
                    Kind::Envelope(0),
                    Earlier
                ),
                at(
                    "Received",
                    "linux-leds@vger.kernel.org",
                    Kind::ReceivedFor,
                    Earlier
                ),
                at("To", "linux-leds@vger.kernel.org", Kind::Content, Current),
            ]
        );
    }

    /// Gmail's forwarding: the box's Delivered-To, then X-Forwarded-*, then the Delivered-To
    /// of the mailbox it was forwarded from.
    #[test]
    fn a_forwarded_messages_first_delivery_is_earlier() {
        let got = places(
            "Delivered-To: box@gmail.com\nReceived: by 2002:a05:7300:1 with SMTP id x; 1 Jan\nReceived: from mail-sor-f69.google.com by mx.google.com with SMTPS id y\n\tfor <box@gmail.com>; 1 Jan\nX-Forwarded-To: box@gmail.com\nX-Forwarded-For: alice@example.com box@gmail.com\nDelivered-To: alice@example.com\nReceived: from s.example.org by mx.google.com for <alice@example.com>; 1 Jan\nTo: alice@example.com\n\n",
        );
        use Place::*;
        assert_eq!(
            got,
            vec![
                at("Delivered-To", "box@gmail.com", Kind::Envelope(2), Current),
                at("Received", "box@gmail.com", Kind::ReceivedFor, Current),
                at(
                    "Delivered-To",
                    "alice@example.com",
                    Kind::Envelope(2),
                    Earlier
                ),
                at("Received", "alice@example.com", Kind::ReceivedFor, Earlier),
                at("To", "alice@example.com", Kind::Content, Current),
            ]
        );
    }

    #[test]
    fn below_a_resent_block_everything_is_earlier() {
        let got = places(
            "X-Original-To: bob@example.com\nReceived: from a by mx.isp.net; x\nResent-From: alice@example.com\nResent-To: bob@example.com\nX-Original-To: alice@example.com\nReceived: from b by mx.isp.net; x\nTo: alice@example.com\n\n",
        );
        use Place::*;
        assert_eq!(
            got,
            vec![
                at(
                    "X-Original-To",
                    "bob@example.com",
                    Kind::Envelope(0),
                    Current
                ),
                at("Resent-To", "bob@example.com", Kind::Content, Current),
                at(
                    "X-Original-To",
                    "alice@example.com",
                    Kind::Envelope(0),
                    Earlier
                ),
                at("To", "alice@example.com", Kind::Content, Earlier),
            ]
        );
    }

    /// Plesk's `.qmail-default`: the catch-all on top, the address the sender used lowest.
    #[test]
    fn the_lowest_of_a_qmail_alias_chain_is_the_original_recipient() {
        let got = places(
            "Delivered-To: example.com-office@example.com\nReceived: (qmail 9 invoked by alias); 1 Jan\nDelivered-To: example.com-carol@example.com\nReceived: (qmail 8 invoked from network); 1 Jan\nReceived: from s.example.org by mail.plesk.example.net; 1 Jan\n\n",
        );
        use Place::*;
        assert_eq!(
            got,
            vec![
                at(
                    "Delivered-To",
                    "example.com-office@example.com",
                    Kind::Envelope(2),
                    Current
                ),
                at(
                    "Delivered-To",
                    "example.com-carol@example.com",
                    Kind::Envelope(0),
                    Current
                ),
            ]
        );
    }

    /// Exchange Online appends its organisation fields below everything; a sender's copy of
    /// the same field higher up is not the last one.
    #[test]
    fn fields_below_every_hop_are_bottom_fields_and_only_the_last_counts() {
        let got = places(
            "Received: from x.outlook.com by y.outlook.com; x\nReceived: from s.example.org by x.outlook.com; x\nTo: bob@example.com\nEnvelope-To: ceo@example.com\nX-MS-Exchange-Organization-OriginalEnvelopeRecipients: =?us-ascii?Q?alice=40example.com?=\nEnvelope-To: bob@example.com\n\n",
        );
        use Place::*;
        assert_eq!(
            got,
            vec![
                at("To", "bob@example.com", Kind::Content, Current),
                at("Envelope-To", "ceo@example.com", Kind::Envelope(1), Earlier),
                at(
                    "X-MS-Exchange-Organization-OriginalEnvelopeRecipients",
                    "alice@example.com",
                    Kind::Envelope(1),
                    Bottom
                ),
                at("Envelope-To", "bob@example.com", Kind::Envelope(1), Bottom),
            ]
        );
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

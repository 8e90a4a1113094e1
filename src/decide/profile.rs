//! Learn the mailbox (a first pass over every message): which envelope fields this ISP
//! wrote, which address is the shared box itself, what prefix the ISP put on envelope
//! addresses, and which hosts are its own relays. Other multidrop tools need the admin to
//! know all this in advance; here it is read off the mailbox and shown.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use crate::compact::{Map as HashMap, Set as HashSet};
use std::fmt::Write as _;

use serde::Serialize;

use crate::decide::directory::Directory;
use crate::evidence::address::{ascii_lowercase, localize, lowercase, rsplit_ascii};
use crate::evidence::{Facts, Hop, Kind, Place};

/// A learned pattern must hold on at least this share of messages.
const ENVELOPE_SHARE: f64 = 0.2;
/// An envelope address on at least this share of messages, rarely named in To/Cc, is the box.
const BOX_SHARE: f64 = 0.5;
/// Received lines looked at, from the top, when learning relays.
const TOP_HOPS: usize = 4;
/// Patterns are learned only from at least this many messages.
const MIN_MESSAGES: u64 = 5;
/// Messages whose envelope names one person and To/Cc another, needed before deciding
/// whether the box kept one copy per Message-ID.
const MIN_ONE_COPY: u64 = 10;
/// Such messages kept for the look-up of their twins; beyond it the share is estimated.
const MAX_ONE_COPY: usize = 200_000;
/// The domains of Exchange Online's own servers.
const MICROSOFT: [&str; 3] = ["outlook.com", "office365.com", "exchangelabs.com"];
/// Domains counted for the `--domain` check.
const MAX_DOMAINS: usize = 10_000;

/// What the admin says instead of what was learned.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Only these fields (lower case) are envelope evidence (`--envelope-header`).
    pub envelope_headers: Vec<String>,
    /// The ISP's relays (`--trusted-relay`), replacing the learned ones.
    pub trusted_relays: Vec<String>,
    /// Envelope-address prefixes to strip (`--strip-prefix`), replacing the learned ones.
    pub strip_prefixes: Vec<String>,
    /// Addresses that are the shared box itself (`--shared-box`), besides the learned ones.
    pub shared_boxes: Vec<String>,
    /// Run even when a `--domain` names no address in the mailbox (`--allow-unseen-domain`).
    pub allow_unseen_domain: bool,
}

/// A constant part the ISP put around the user's local part on envelope addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Affix {
    /// `officepop-alice@…`: the prefix is `officepop-`.
    Prefix(String),
    /// `alice-officepop@…`: the suffix is `-officepop`.
    Suffix(String),
}

/// Rewrites `<affix>user@domain` to `user@target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rewrite {
    /// What to strip.
    pub affix: Affix,
    /// The domain it appears at (`None`: any).
    pub domain: Option<String>,
    /// The local domain the stripped address belongs to.
    pub target: String,
}

impl Rewrite {
    /// The rewritten address, if this rule applies to `addr`.
    pub fn apply(&self, addr: &str) -> Option<String> {
        let (local, domain) = rsplit_ascii(addr, b'@')?;
        let (local, domain) = (local.to_lowercase(), domain.to_ascii_lowercase());
        if self.domain.as_ref().is_some_and(|d| *d != domain) {
            return None;
        }
        let rest = match &self.affix {
            Affix::Prefix(p) => local.strip_prefix(p.as_str())?,
            Affix::Suffix(s) => local.strip_suffix(s.as_str())?,
        };
        (!rest.is_empty()).then(|| format!("{rest}@{}", self.target))
    }
}

/// A name or address and on how many messages it was seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Share {
    /// Field name, address or host.
    pub name: String,
    /// Messages it was seen on.
    pub messages: u64,
}

/// A local address seen in the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalSeen {
    /// Canonical address.
    pub address: String,
    /// Messages naming it.
    pub messages: u64,
    /// Whether it maps to a user.
    pub user: bool,
}

/// Whether messages for several local people arrived as one copy each or as one in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OneCopy {
    /// Messages whose envelope names one local address and whose To/Cc name another.
    pub candidates: u64,
    /// Of those, how many have another copy with the same Message-ID in the box.
    pub with_twin: u64,
    /// The box kept one copy: the colleagues in To/Cc lost theirs.
    pub kept_one: bool,
}

/// What popsplit knows about this mailbox before deciding anything.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Profile {
    /// Messages looked at.
    pub messages: u64,
    /// Envelope fields seen, most frequent first.
    pub envelope_headers: Vec<Share>,
    /// `X-` fields of no standard meaning that hold a local address on most messages:
    /// this ISP's own envelope field.
    pub learned_headers: Vec<String>,
    /// When set, only these fields are envelope evidence.
    pub only_headers: Option<Vec<String>>,
    /// Addresses that are the shared box itself: never a recipient.
    pub boxes: Vec<Share>,
    /// Addresses that look like the shared box but that the directory maps to a user: the
    /// directory wins, and the profile says so.
    pub boxes_in_directory: Vec<Share>,
    /// Envelope fields this provider appends below every Received field (Exchange Online's
    /// `X-MS-Exchange-Organization-OriginalEnvelopeRecipients`, GMX's `Envelope-To`).
    pub bottom_fields: Vec<Share>,
    /// Whether the box kept one copy of a message for several recipients (Gmail keeps one
    /// per Message-ID), with the counts that say so.
    pub one_copy: OneCopy,
    /// The domains that envelope fields and To/Cc name, most frequent first (the top 10).
    pub domains_seen: Vec<Share>,
    /// `--domain` domains that no address in the mailbox is at (a typo, most likely).
    pub unseen_domains: Vec<String>,
    /// The ISP writes a Received `for` naming the local address on most messages whose
    /// To/Cc name one local address: as Postfix, Exim and sendmail do when a delivery has
    /// one recipient.
    pub for_when_single: bool,
    /// Sender domains (lower case) of messages whose envelope named a user: the office's
    /// correspondents (at most 10,000).
    #[serde(skip)]
    pub correspondents: HashSet<String>,
    /// Prefixes or suffixes to strip from envelope addresses.
    pub rewrites: Vec<Rewrite>,
    /// Hosts whose Received fields are the ISP's own (empty: fall back to a fixed depth).
    pub relays: Vec<String>,
    /// Whether the relays were given on the command line.
    pub relays_given: bool,
    /// Local addresses seen, most frequent first.
    pub local_addresses: Vec<LocalSeen>,
}

impl Profile {
    /// The address after stripping a learned prefix or suffix.
    pub fn rewrite(&self, addr: &str) -> Option<String> {
        self.rewrites.iter().find_map(|r| r.apply(addr))
    }

    /// Whether `addr` is the shared box itself.
    pub fn is_box(&self, addr: &str) -> bool {
        self.boxes.iter().any(|b| b.name.eq_ignore_ascii_case(addr))
    }

    /// Whether an address-holding field of `kind` named `header` is envelope evidence.
    pub fn is_envelope(&self, kind: Kind, header: &str) -> bool {
        let lower = header.to_ascii_lowercase();
        match (&self.only_headers, kind) {
            (_, Kind::Content | Kind::ReceivedFor) => false,
            (Some(only), _) => only.contains(&lower),
            (None, Kind::Envelope(_)) => true,
            (None, Kind::Other) => self.learned_headers.contains(&lower),
        }
    }

    /// Whether `header`, found below every Received field, is this provider's own: a field
    /// it writes there on many messages, in a message whose top relay is the provider's.
    pub fn is_bottom_field(&self, header: &str, hops: &[Hop]) -> bool {
        let Some(top) = hops.iter().find_map(|h| h.by.as_deref()) else {
            return false;
        };
        // Exchange removes `X-MS-Exchange-Organization-*` from mail entering a tenant from
        // outside (Microsoft's header firewall), so below a Microsoft top hop such a field
        // is the tenant's own, however small the mailbox is.
        let exchange = header
            .to_ascii_lowercase()
            .starts_with("x-ms-exchange-organization-")
            && MICROSOFT.contains(&org_domain(top));
        exchange
            || (self
                .bottom_fields
                .iter()
                .any(|b| b.name.eq_ignore_ascii_case(header))
                && self.is_relay(top))
    }

    fn is_relay(&self, by: &str) -> bool {
        self.relays.iter().any(|r| r == by || r == org_domain(by))
    }

    /// How many Received fields from the top the ISP wrote: up to the last field of the
    /// leading run whose `by` host is a relay (or in a relay domain), and at least the
    /// topmost, which only the receiving side can write. A field that names no host is
    /// passed over inside the run but never ends or extends it. Without learned relays,
    /// `default`.
    pub fn trusted_hops(&self, hops: &[Hop], default: usize) -> usize {
        if self.relays.is_empty() {
            return default;
        }
        let mut run = 0;
        for (i, h) in hops.iter().enumerate() {
            match h.by.as_deref() {
                None => continue,
                Some(by) if self.is_relay(by) => run = i + 1,
                Some(_) => break,
            }
        }
        run.max(1)
    }

    /// A human-readable account of what was learned.
    pub fn describe(&self, dir: &Directory) -> String {
        let mut t = String::new();
        let pct = |n: u64| {
            if self.messages == 0 {
                0.0
            } else {
                100.0 * n as f64 / self.messages as f64
            }
        };
        let _ = writeln!(
            t,
            "mailbox profile ({})",
            crate::text::count(self.messages, "message", "messages")
        );
        let _ = writeln!(t, "  envelope fields:");
        if self.envelope_headers.is_empty() {
            let _ = writeln!(
                t,
                "    none: only Received `for` clauses and To/Cc can say whom mail was for"
            );
        }
        for h in &self.envelope_headers {
            let learned = if self.learned_headers.contains(&h.name) {
                " (learned)"
            } else {
                ""
            };
            let _ = writeln!(
                t,
                "    {:<40} {:>8} {} ({:.1}%){learned}",
                h.name,
                h.messages,
                noun(h.messages),
                pct(h.messages)
            );
        }
        if let Some(only) = &self.only_headers {
            let _ = writeln!(
                t,
                "    only these count (--envelope-header): {}",
                only.join(", ")
            );
        }
        let _ = writeln!(t, "  the shared box itself (never a recipient):");
        if self.boxes.is_empty() {
            let _ = writeln!(t, "    none found");
        }
        for b in &self.boxes {
            let _ = writeln!(
                t,
                "    {:<40} {:>8} {} ({:.1}%)",
                b.name,
                b.messages,
                noun(b.messages),
                pct(b.messages)
            );
        }
        for b in &self.boxes_in_directory {
            let _ = writeln!(
                t,
                "    {} looks like it ({}, rarely in To/Cc), but the directory maps it to {}: it stays a person's address; if it is the catch-all account, say --shared-box {}",
                b.name,
                crate::text::count(b.messages, "message", "messages"),
                dir.users(&b.name).join(", "),
                b.name
            );
        }
        if !self.bottom_fields.is_empty() {
            let _ = writeln!(
                t,
                "  envelope fields the provider appends below every Received field (count when its own relay is on top):"
            );
        }
        for b in &self.bottom_fields {
            let _ = writeln!(
                t,
                "    {:<40} {:>8} {} ({:.1}%)",
                b.name,
                b.messages,
                noun(b.messages),
                pct(b.messages)
            );
        }
        let c = &self.one_copy;
        if c.candidates > 0 {
            let verdict = if c.kept_one {
                "this box kept ONE copy per message (as Gmail does): colleagues named in To/Cc are added at medium"
            } else {
                "copies per recipient (or too few to tell): To/Cc colleagues are not added"
            };
            let _ = writeln!(
                t,
                "  messages for one person by envelope and others by To/Cc: {}, {} of them with a second copy: {verdict}",
                c.candidates, c.with_twin
            );
        }
        if self.for_when_single {
            let _ = writeln!(
                t,
                "  the ISP writes Received `for` when a delivery has one recipient: mail from a stranger without it, whose To/Cc name one user, is not delivered by To/Cc ({} known correspondent domains)",
                self.correspondents.len()
            );
        }
        for d in &self.unseen_domains {
            let _ = writeln!(
                t,
                "  WARNING: no address in the mailbox is at --domain {d}; the domains it names most:"
            );
            for s in &self.domains_seen {
                let _ = writeln!(
                    t,
                    "    {:<40} {:>8} {}",
                    s.name,
                    s.messages,
                    noun(s.messages)
                );
            }
        }
        let _ = writeln!(t, "  envelope address rewrites:");
        if self.rewrites.is_empty() {
            let _ = writeln!(t, "    none");
        }
        for r in &self.rewrites {
            let at = r
                .domain
                .as_deref()
                .map_or("any domain".to_string(), |d| format!("@{d}"));
            let what = match &r.affix {
                Affix::Prefix(p) => format!("strip prefix `{p}`"),
                Affix::Suffix(s) => format!("strip suffix `{s}`"),
            };
            let _ = writeln!(t, "    {what} at {at}, deliver as @{}", r.target);
        }
        let source = if self.relays_given {
            "given"
        } else {
            "learned"
        };
        let _ = writeln!(
            t,
            "  trusted relays ({source}; hosts or domains): only Received `for` clauses and envelope fields they wrote count"
        );
        if self.relays.is_empty() {
            let _ = writeln!(t, "    none learned: the top 3 Received fields are trusted");
        }
        for r in &self.relays {
            let _ = writeln!(t, "    {r}");
        }
        let _ = writeln!(t, "  local addresses seen:");
        for l in self.local_addresses.iter().take(50) {
            let status = match (l.user, dir.is_closed()) {
                (true, _) => "",
                (false, true) => "  NOT IN DIRECTORY",
                (false, false) => "  not a user",
            };
            let _ = writeln!(
                t,
                "    {:<40} {:>8} {}{status}",
                l.address,
                l.messages,
                noun(l.messages)
            );
        }
        if self.local_addresses.len() > 50 {
            let _ = writeln!(t, "    … {} more", self.local_addresses.len() - 50);
        }
        t
    }
}

/// Counts gathered over the messages; merged across worker threads.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    messages: u64,
    envelope: HashMap<String, u64>,
    /// Other `X-` fields: (messages, messages where it held a local address).
    other: HashMap<String, (u64, u64)>,
    /// Envelope addresses of the current delivery: (messages, messages that also name it
    /// in To/Cc).
    envelope_addrs: HashMap<String, Sightings>,
    /// Fields below every Received field holding a local address → messages.
    bottom: HashMap<String, u64>,
    /// Domain → the affix candidates seen on its envelope addresses.
    affixes: HashMap<String, Affixes>,
    top_hosts: HashMap<String, u64>,
    local: HashMap<String, u64>,
    /// Message-ID hash → copies, of messages whose envelope names one local address and
    /// whose To/Cc name another (capped at [`MAX_ONE_COPY`] ids).
    one_copy: HashMap<u64, u32>,
    /// Domains of the addresses in envelope fields and To/Cc → messages (capped).
    domains: HashMap<String, u64>,
    /// Messages whose To/Cc name exactly one local address (no list mail): (messages, of
    /// those with a Received `for` naming a local address in the current delivery).
    single_to: (u64, u64),
    /// Sender domains of messages whose envelope named a user (capped).
    correspondents: HashSet<String>,
    /// Scratch for the message being added; not a count.
    seen: Seen,
}

/// On how many messages an envelope address was seen, and in what company.
#[derive(Debug, Default, Clone, Copy)]
struct Sightings {
    messages: u64,
    /// Of those, messages whose To/Cc also name it.
    in_content: u64,
    /// Of those, messages whose envelope also names another address (a catch-all's
    /// Delivered-To beside the X-Original-To of the person).
    beside_another: u64,
}

impl Sightings {
    /// Box-shaped: on most messages, rarely in To/Cc, and either beside the person's own
    /// envelope address or on (nearly) every message. A busy person who is rarely in To/Cc
    /// (list mail, Bcc) is on many envelopes too, but alone and not on all.
    fn box_shaped(&self, messages: u64) -> bool {
        let n = self.messages as f64;
        self.messages >= MIN_MESSAGES
            && n >= BOX_SHARE * messages as f64
            && (self.in_content as f64) < 0.2 * n
            && (self.beside_another as f64 >= 0.5 * n || n >= 0.9 * messages as f64)
    }

    fn add(&mut self, other: Sightings) {
        self.messages += other.messages;
        self.in_content += other.in_content;
        self.beside_another += other.beside_another;
    }
}

/// The count kept under `key`, made (zero) when new: the key is copied only then, as
/// most messages count keys seen before (allocating each key was a good part of the
/// profile's work on small messages).
fn count<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// The affix candidates of one domain, by the part before the first `-` (prefixes) or
/// after the last (suffixes), without the `-`: keyed by text as the address holds it, so
/// that counting one looks it up without making its key.
#[derive(Debug, Default, Clone)]
struct Affixes {
    prefix: HashMap<String, Tally>,
    suffix: HashMap<String, Tally>,
}

/// Messages an affix candidate was seen on, and distinct remainders (capped).
type Tally = (u64, BTreeSet<String>);

/// Adds `other`'s tallies to `into`'s.
fn merge_tallies(into: &mut HashMap<String, Tally>, other: HashMap<String, Tally>) {
    for (k, (n, rests)) in other {
        let e = into.entry(k).or_default();
        e.0 += n;
        for r in rests {
            if e.1.len() < MAX_RESTS {
                e.1.insert(r);
            }
        }
    }
}

/// Distinct remainders kept per affix candidate; three are enough to learn one.
const MAX_RESTS: usize = 16;

/// What one message has already added, so each fact counts once per message. Kept in the
/// [`Stats`] and emptied for each message: a new set of strings per message was a good part
/// of the profile's work (callgrind). Text of the facts is held in one buffer.
#[derive(Debug, Default, Clone)]
struct Seen {
    facts: Vec<(Fact, std::ops::Range<usize>)>,
    text: String,
    /// Past [`Seen::SHORT`] facts (a hostile field of thousands of addresses), a hash set,
    /// so that a long list is not searched once per entry.
    many: HashSet<(Fact, String)>,
}

/// The facts counted once per message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Fact {
    Local,
    Field,
    FieldWithLocal,
    Address,
    Prefix,
    Suffix,
    Bottom,
    Domain,
}

impl Seen {
    /// Facts searched one by one; a message has far fewer.
    const SHORT: usize = 64;

    fn clear(&mut self) {
        self.facts.clear();
        self.text.clear();
        self.many.clear();
    }

    /// Whether `fact` about the text `parts` make (joined) is new for this message.
    fn first(&mut self, fact: Fact, parts: &[&str]) -> bool {
        let start = self.text.len();
        for p in parts {
            self.text.push_str(p);
        }
        let what = &self.text[start..];
        let known = self
            .facts
            .iter()
            .any(|(f, r)| *f == fact && &self.text[r.clone()] == what);
        if known {
            self.text.truncate(start);
            return false;
        }
        if self.facts.len() < Self::SHORT {
            self.facts.push((fact, start..self.text.len()));
            return true;
        }
        let new = self.many.insert((fact, what.to_string()));
        self.text.truncate(start);
        new
    }
}

impl Stats {
    /// Adds one message.
    pub fn add(&mut self, facts: &Facts, dir: &Directory) {
        let domains = &dir.domains;
        self.messages += 1;
        let mut seen = std::mem::take(&mut self.seen);
        seen.clear();
        // The To/Cc addresses (lower case), and among them the local ones: how many were
        // written, and the users' addresses they are. Found in the one loop that resolves
        // every address (resolving the To/Cc set again after it was 1% of a run).
        let mut content: HashSet<Cow<'_, str>> = HashSet::default();
        let mut local_in_content = 0;
        let mut in_content = BTreeSet::new();
        let mut envelope_local = BTreeSet::new();
        let mut envelope_addrs: Vec<Cow<'_, str>> = Vec::new();
        // Field names in lower case, one buffer for the message.
        let mut name = String::new();
        for e in &facts.evidence {
            let addr = e.address.as_deref().map(lowercase);
            let local = addr.as_deref().and_then(|a| localize(a, domains));
            if e.kind == Kind::Content
                && e.place == Place::Current
                && let Some(a) = &addr
                && content.insert(a.clone())
                && let Some(l) = &local
            {
                local_in_content += 1;
                in_content.insert(l.to_address());
            }
            // Counted as written: a directory may name `lists+a@` and `lists+b@` apart.
            if let (Some(_), Some(a)) = (&local, &addr)
                && seen.first(Fact::Local, &[a])
            {
                *count(&mut self.local, a) += 1;
            }
            if let Some(d) = addr
                .as_deref()
                .and_then(|a| rsplit_ascii(a, b'@'))
                .map(|x| x.1)
                && e.kind != Kind::ReceivedFor
                && seen.first(Fact::Domain, &[d])
                && (self.domains.len() < MAX_DOMAINS || self.domains.contains_key(d))
            {
                *count(&mut self.domains, d) += 1;
            }
            let envelope_like = matches!(e.kind, Kind::Envelope(_) | Kind::Other);
            if !envelope_like || e.place == Place::Earlier {
                continue;
            }
            name.clear();
            name.extend(e.header.chars().map(|c| c.to_ascii_lowercase()));
            if seen.first(Fact::Field, &[&name]) {
                match e.kind {
                    Kind::Other => count(&mut self.other, &name).0 += 1,
                    _ => *count(&mut self.envelope, &name) += 1,
                }
            }
            if e.place == Place::Bottom && local.is_some() && seen.first(Fact::Bottom, &[&name]) {
                *count(&mut self.bottom, &name) += 1;
            }
            let Some(a) = addr else { continue };
            if let Some(l) = &local {
                envelope_local.insert(l.to_address());
            }
            if e.kind == Kind::Other {
                if local.is_some() && seen.first(Fact::FieldWithLocal, &[&name]) {
                    count(&mut self.other, &name).1 += 1;
                }
                continue;
            }
            if seen.first(Fact::Address, &[&a]) {
                self.add_affixes(&a, &mut seen);
                envelope_addrs.push(a);
            }
        }
        // The sender of mail that the envelope shows was for a user here corresponds with
        // the office; spam to guessed addresses comes from domains that never do.
        if let Some((_, domain)) = facts
            .from_address
            .as_deref()
            .and_then(|a| rsplit_ascii(a, b'@'))
        {
            let domain = ascii_lowercase(domain);
            if !self.correspondents.contains(domain.as_ref())
                && self.correspondents.len() < MAX_DOMAINS
                && facts.evidence.iter().any(|e| {
                    // Only what the receiving side wrote: the topmost field or `for` clause
                    // (relays are not learned yet, and a sender forges `for` lower down).
                    e.kind != Kind::Content
                        && e.place == Place::Current
                        && e.depth == 0
                        && e.address.as_deref().is_some_and(|a| dir.is_user(a))
                })
            {
                self.correspondents.insert(domain.into_owned());
            }
        }
        if local_in_content == 1 && !facts.is_list {
            self.single_to.0 += 1;
            self.single_to.1 += u64::from(facts.evidence.iter().any(|e| {
                e.kind == Kind::ReceivedFor
                    && e.place == Place::Current
                    && e.address
                        .as_deref()
                        .is_some_and(|a| localize(a, domains).is_some())
            }));
        }
        for a in &envelope_addrs {
            count(&mut self.envelope_addrs, a).add(Sightings {
                messages: 1,
                in_content: u64::from(content.contains(a)),
                beside_another: u64::from(envelope_addrs.len() > 1),
            });
        }
        // The envelope's one address among To/Cc, beside another local one: the message
        // was for several people here (a catch-all account's Delivered-To is not in To/Cc).
        let for_several = envelope_local.len() == 1
            && envelope_local.iter().all(|a| in_content.contains(a))
            && in_content.len() > 1;
        if let Some(id) = facts.id_hash.filter(|id| {
            for_several
                && !facts.is_list
                && (self.one_copy.len() < MAX_ONE_COPY || self.one_copy.contains_key(id))
        }) {
            *self.one_copy.entry(id).or_default() += 1;
        }
        let hosts: BTreeSet<&str> = facts
            .hops
            .iter()
            .take(TOP_HOPS)
            .filter_map(|h| h.by.as_deref())
            .map(org_domain)
            .collect();
        for h in hosts {
            *count(&mut self.top_hosts, h) += 1;
        }
        self.seen = seen;
    }

    fn add_affixes(&mut self, addr: &str, seen: &mut Seen) {
        let Some((local, domain)) = rsplit_ascii(addr, b'@') else {
            return;
        };
        let prefix = local
            .split_once('-')
            .map(|(p, rest)| (Fact::Prefix, p, rest));
        let suffix = local
            .rsplit_once('-')
            .map(|(rest, s)| (Fact::Suffix, s, rest));
        for (fact, part, rest) in prefix.into_iter().chain(suffix) {
            if rest.is_empty() || !seen.first(fact, &[part, "-@", domain]) {
                continue;
            }
            let of_domain = count(&mut self.affixes, domain);
            let tallies = match fact {
                Fact::Prefix => &mut of_domain.prefix,
                _ => &mut of_domain.suffix,
            };
            let entry = count(tallies, part);
            entry.0 += 1;
            if entry.1.len() < MAX_RESTS && !entry.1.contains(rest) {
                entry.1.insert(rest.to_string());
            }
        }
    }

    /// Combines the counts of two workers.
    pub fn merge(mut self, other: Stats) -> Stats {
        self.messages += other.messages;
        self.single_to.0 += other.single_to.0;
        self.single_to.1 += other.single_to.1;
        for d in other.correspondents {
            if self.correspondents.len() < MAX_DOMAINS {
                self.correspondents.insert(d);
            }
        }
        for (k, v) in other.envelope {
            *self.envelope.entry(k).or_default() += v;
        }
        for (k, (a, b)) in other.other {
            let e = self.other.entry(k).or_default();
            e.0 += a;
            e.1 += b;
        }
        for (k, v) in other.envelope_addrs {
            self.envelope_addrs.entry(k).or_default().add(v);
        }
        for (k, v) in other.bottom {
            *self.bottom.entry(k).or_default() += v;
        }
        for (domain, a) in other.affixes {
            let mine = self.affixes.entry(domain).or_default();
            merge_tallies(&mut mine.prefix, a.prefix);
            merge_tallies(&mut mine.suffix, a.suffix);
        }
        for (k, v) in other.top_hosts {
            *self.top_hosts.entry(k).or_default() += v;
        }
        for (k, v) in other.local {
            *self.local.entry(k).or_default() += v;
        }
        for (k, v) in other.one_copy {
            if self.one_copy.len() < MAX_ONE_COPY || self.one_copy.contains_key(&k) {
                *self.one_copy.entry(k).or_default() += v;
            }
        }
        for (k, v) in other.domains {
            if self.domains.len() < MAX_DOMAINS || self.domains.contains_key(&k) {
                *self.domains.entry(k).or_default() += v;
            }
        }
        self
    }

    /// Turns the counts into a profile, letting the admin's overrides win.
    pub fn learn(self, dir: &Directory, over: &Overrides) -> Profile {
        let n = self.messages;
        let enough =
            |count: u64, share: f64| count >= MIN_MESSAGES && count as f64 >= share * n as f64;
        let learned_headers: BTreeSet<String> = self
            .other
            .iter()
            .filter(|(_, (seen, local))| {
                enough(*seen, ENVELOPE_SHARE) && *local as f64 >= 0.8 * *seen as f64
            })
            .map(|(k, _)| k.clone())
            .collect();
        let mut envelope_headers: Vec<Share> = self
            .envelope
            .iter()
            .map(|(k, v)| Share {
                name: k.clone(),
                messages: *v,
            })
            .chain(learned_headers.iter().map(|k| Share {
                name: k.clone(),
                messages: self.other[k].0,
            }))
            .collect();
        sort_shares(&mut envelope_headers);
        // The directory is the truth about who is a person: an address it maps to a user
        // is never learned as the box, however box-like it looks.
        let (mut boxes, mut boxes_in_directory): (Vec<Share>, Vec<Share>) = self
            .envelope_addrs
            .iter()
            .filter(|(_, seen)| seen.box_shaped(n))
            .map(|(k, seen)| Share {
                name: k.clone(),
                messages: seen.messages,
            })
            .partition(|b| !dir.is_closed() || !dir.is_user(&b.name));
        for given in &over.shared_boxes {
            let name = given.trim().to_lowercase();
            boxes_in_directory.retain(|b| b.name != name);
            if !boxes.iter().any(|b| b.name == name) {
                let messages = self.envelope_addrs.get(&name).map_or(0, |e| e.messages);
                boxes.push(Share { name, messages });
            }
        }
        sort_shares(&mut boxes);
        sort_shares(&mut boxes_in_directory);
        let mut bottom_fields: Vec<Share> = self
            .bottom
            .iter()
            .filter(|(_, n)| enough(**n, ENVELOPE_SHARE))
            .map(|(k, n)| Share {
                name: k.clone(),
                messages: *n,
            })
            .collect();
        sort_shares(&mut bottom_fields);
        let candidates = self.one_copy.len() as u64;
        let with_twin = self.one_copy.values().filter(|n| **n > 1).count() as u64;
        let one_copy = OneCopy {
            candidates,
            with_twin,
            // A box with a copy per recipient shows most such messages twice; one that
            // kept one copy shows (almost) none twice.
            kept_one: candidates >= MIN_ONE_COPY && with_twin * 10 < candidates,
        };
        let mut domains_seen: Vec<Share> = self
            .domains
            .iter()
            .map(|(k, n)| Share {
                name: k.clone(),
                messages: *n,
            })
            .collect();
        sort_shares(&mut domains_seen);
        domains_seen.truncate(10);
        let unseen_domains = dir
            .domains
            .iter()
            .filter(|d| !self.local.keys().any(|a| a.ends_with(&format!("@{d}"))))
            .cloned()
            .collect();
        let rewrites = match over.strip_prefixes.is_empty() {
            false => over
                .strip_prefixes
                .iter()
                .map(|p| given_rewrite(p, &dir.domains))
                .collect(),
            true => self.learn_rewrites(dir, &enough),
        };
        let (relays, relays_given) = match over.trusted_relays.is_empty() {
            false => (
                over.trusted_relays
                    .iter()
                    .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                    .collect(),
                true,
            ),
            true => {
                let mut r: Vec<String> = self
                    .top_hosts
                    .iter()
                    .filter(|(_, c)| enough(**c, ENVELOPE_SHARE))
                    .map(|(h, _)| h.clone())
                    .collect();
                r.sort();
                (r, false)
            }
        };
        let mut local_addresses: Vec<LocalSeen> = self
            .local
            .iter()
            .map(|(a, c)| LocalSeen {
                address: a.clone(),
                messages: *c,
                user: dir.is_user(a),
            })
            .collect();
        local_addresses.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.address.cmp(&b.address)));
        Profile {
            messages: n,
            envelope_headers,
            learned_headers: learned_headers.into_iter().collect(),
            only_headers: (!over.envelope_headers.is_empty()).then(|| {
                over.envelope_headers
                    .iter()
                    .map(|h| h.to_ascii_lowercase())
                    .collect()
            }),
            boxes,
            boxes_in_directory,
            bottom_fields,
            one_copy,
            domains_seen,
            unseen_domains,
            // Mail for one local person nearly always shows `for` where the ISP writes it.
            for_when_single: self.single_to.0 >= MIN_MESSAGES
                && self.single_to.1 as f64 >= 0.5 * self.single_to.0 as f64,
            correspondents: self.correspondents,
            rewrites,
            relays,
            relays_given,
            local_addresses,
        }
    }

    /// An affix is learned when it stands on many envelope addresses with at least three
    /// different remainders, two of which are local addresses seen elsewhere.
    fn learn_rewrites(&self, dir: &Directory, enough: &dyn Fn(u64, f64) -> bool) -> Vec<Rewrite> {
        let mut out = Vec::new();
        let candidates = self.affixes.iter().flat_map(|(domain, a)| {
            let prefixes = a.prefix.iter().map(move |(p, t)| (domain, p, true, t));
            prefixes.chain(a.suffix.iter().map(move |(p, t)| (domain, p, false, t)))
        });
        for (domain, part, is_prefix, (count, rests)) in candidates {
            if !enough(*count, ENVELOPE_SHARE) || rests.len() < 3 {
                continue;
            }
            if is_prefix && dir.domains.contains(part) {
                continue; // qmail's `domain-` prefix is always stripped
            }
            let mut targets: BTreeMap<&str, usize> = BTreeMap::new();
            for r in rests {
                for d in &dir.domains {
                    if self.local.contains_key(&format!("{r}@{d}")) {
                        *targets.entry(d).or_default() += 1;
                    }
                }
            }
            if let Some((target, _)) = targets
                .into_iter()
                .filter(|(_, h)| *h >= 2)
                .max_by_key(|(_, h)| *h)
            {
                out.push(Rewrite {
                    affix: if is_prefix {
                        Affix::Prefix(format!("{part}-"))
                    } else {
                        Affix::Suffix(format!("-{part}"))
                    },
                    domain: Some(domain.clone()),
                    target: target.to_string(),
                });
            }
        }
        out.sort_by(|a, b| (&a.domain, &a.affix).cmp(&(&b.domain, &b.affix)));
        out
    }
}

/// The organisation's domain of a host: its last two labels, or three when the second
/// last is a registry label under a country (`mail.example.co.uk` → `example.co.uk`).
pub fn org_domain(host: &str) -> &str {
    // The last three dots from the end, without a list of them all: a host is looked up
    // for every hop of every message.
    let mut dots = memchr::memrchr_iter(b'.', host.as_bytes());
    let (Some(last), Some(second)) = (dots.next(), dots.next()) else {
        return host;
    };
    let second_last = &host[second + 1..last];
    let country = host.len() - last == 3;
    let registry = [
        "co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go",
    ];
    if !(country && registry.contains(&second_last)) {
        return &host[second + 1..];
    }
    match dots.next() {
        Some(third) => &host[third + 1..],
        None => host,
    }
}

/// `message` or `messages`, after a right-aligned count.
fn noun(n: u64) -> &'static str {
    if n == 1 { "message" } else { "messages" }
}

fn sort_shares(v: &mut [Share]) {
    v.sort_by(|a, b| b.messages.cmp(&a.messages).then(a.name.cmp(&b.name)));
}

/// `--strip-prefix P` or `P@domain`: the stripped address belongs to the first `--domain`.
fn given_rewrite(spec: &str, domains: &[String]) -> Rewrite {
    let (prefix, domain) = match rsplit_ascii(spec, b'@') {
        Some((p, d)) => (p, Some(d.to_ascii_lowercase())),
        None => (spec, None),
    };
    Rewrite {
        affix: Affix::Prefix(prefix.to_lowercase()),
        domain,
        target: domains.first().cloned().unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::gather;

    #[test]
    fn seen_counts_each_fact_once_also_past_the_short_list() {
        let mut seen = Seen::default();
        let names: Vec<String> = (0..200).map(|i| format!("d{i}.example")).collect();
        for round in 0..2 {
            for n in &names {
                assert_eq!(seen.first(Fact::Domain, &[n]), round == 0, "{n}");
            }
        }
        // The same text as another fact, and text joined from parts, are facts of their own.
        assert!(seen.first(Fact::Local, &["d0.example"]));
        assert!(!seen.first(Fact::Domain, &["d1", ".example"]));
        assert!(seen.first(Fact::Prefix, &["d1", "-@", "x"]));
        assert!(!seen.first(Fact::Prefix, &["d1-@x"]));
        seen.clear();
        assert!(seen.first(Fact::Domain, &["d150.example"]));
    }

    fn learn(messages: &[String], over: &Overrides) -> Profile {
        let dir = Directory::open(&["example.com".to_string()]);
        let mut stats = Stats::default();
        for m in messages {
            stats.add(&gather(m.as_bytes()), &dir);
        }
        stats.learn(&dir, over)
    }

    fn postfix(user: &str, i: usize) -> String {
        format!(
            "Delivered-To: office@example.com\nX-Original-To: {user}@example.com\nReceived: from s.org{i}.example by mx1.isp.net; x\nReceived: from c by s.org{i}.example; x\nTo: {user}@example.com\nMessage-ID: <{i}@x>\n\nbody\n"
        )
    }

    #[test]
    fn learns_envelope_field_box_and_relays() {
        let users = ["alice", "bob", "carol", "dave"];
        let msgs: Vec<String> = (0..40).map(|i| postfix(users[i % 4], i)).collect();
        let p = learn(&msgs, &Overrides::default());
        assert_eq!(
            p.envelope_headers[0],
            Share {
                name: "delivered-to".into(),
                messages: 40
            }
        );
        assert_eq!(
            p.envelope_headers[1],
            Share {
                name: "x-original-to".into(),
                messages: 40
            }
        );
        assert_eq!(
            p.boxes.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(),
            vec!["office@example.com"]
        );
        assert_eq!(p.relays, vec!["isp.net"]);
        let hops = gather(msgs[0].as_bytes()).hops;
        assert_eq!(p.trusted_hops(&hops, 3), 1);
        let renamed = gather(b"Received: from a by mx9.isp.net; x\nReceived: from b by box.isp.net; x\nReceived: from c by evil.example.biz; x\n\n").hops;
        assert_eq!(p.trusted_hops(&renamed, 3), 2);
        let unknown = gather(b"Received: (qmail 1 invoked from network); x\nReceived: from c by evil.example.biz; x\n\n").hops;
        assert_eq!(p.trusted_hops(&unknown, 3), 1);
        assert!(
            p.describe(&Directory::open(&["example.com".into()]))
                .contains("office@example.com")
        );
    }

    #[test]
    fn a_one_person_box_is_not_mistaken_for_the_shared_box() {
        let msgs: Vec<String> = (0..40).map(|i| postfix("alice", i)).collect();
        let p = learn(&msgs, &Overrides::default());
        let boxes: Vec<&str> = p.boxes.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(boxes, vec!["office@example.com"]);
    }

    #[test]
    fn learns_an_isp_prefix_and_an_unknown_envelope_field() {
        let msgs = for_four_users(|u| {
            format!(
                "Delivered-To: acmepop-{u}@isp.example.net\nX-Rcpt-Info: {u}@example.com\nReceived: from a by pop.isp.example.net; x\nTo: {u}@example.com\n\n"
            )
        });
        let p = learn(&msgs, &Overrides::default());
        assert_eq!(p.rewrites.len(), 1, "{:?}", p.rewrites);
        assert_eq!(
            p.rewrite("acmepop-bob@isp.example.net").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(p.rewrite("bob@isp.example.net"), None);
        assert_eq!(p.learned_headers, vec!["x-rcpt-info"]);
        assert!(p.is_envelope(Kind::Other, "X-Rcpt-Info"));
        assert!(!p.is_envelope(Kind::Other, "X-Something-Else"));
    }

    /// A suffix is learned as a prefix is, also when the messages were counted by two
    /// workers and merged; qmail's `domain-` prefix never is (it is always stripped).
    #[test]
    fn learns_an_isp_suffix_across_workers_but_not_the_qmail_prefix() {
        let msgs = for_four_users(|u| {
            format!(
                "Delivered-To: {u}-acmepop@isp.example.net\nDelivered-To: example.com-{u}@example.com\nReceived: from a by pop.isp.example.net; x\nTo: {u}@example.com\n\n"
            )
        });
        let dir = Directory::open(&["example.com".into()]);
        let (first, second) = msgs.split_at(17);
        let p = counted(first, &dir)
            .merge(counted(second, &dir))
            .learn(&dir, &Overrides::default());
        let affixes: Vec<&Affix> = p.rewrites.iter().map(|r| &r.affix).collect();
        assert_eq!(
            affixes,
            [&Affix::Suffix("-acmepop".into())],
            "{:?}",
            p.rewrites
        );
        assert_eq!(
            p.rewrite("carol-acmepop@isp.example.net").as_deref(),
            Some("carol@example.com")
        );
    }

    fn learn_with(messages: &[String], dir: &Directory) -> Profile {
        counted(messages, dir).learn(dir, &Overrides::default())
    }

    /// The counts of `messages`, as one worker makes them.
    fn counted(messages: &[String], dir: &Directory) -> Stats {
        let mut stats = Stats::default();
        for m in messages {
            stats.add(&gather(m.as_bytes()), dir);
        }
        stats
    }

    /// 40 messages, `message` of alice, bob, carol and dave in turn.
    fn for_four_users(message: impl Fn(&str) -> String) -> Vec<String> {
        let users = ["alice", "bob", "carol", "dave"];
        (0..40).map(|i| message(users[i % 4])).collect()
    }

    fn office(rows: &[(&str, &str)]) -> Directory {
        Directory::from_rows(rows, &["example.com".into()]).expect("dir")
    }

    /// A busy reader of list mail and Bcc copies is rarely in To/Cc and on most envelopes,
    /// but alone there and not on all: a person, not the box.
    #[test]
    fn a_busy_reader_is_not_the_box() {
        let msgs: Vec<String> = (0..40)
            .map(|i| {
                let (user, to) = if i % 3 == 0 { ("bob", "bob@example.com") } else { ("alice", "list@lists.example.org") };
                format!("X-Original-To: {user}@example.com\nReceived: from s{i}.example.org by mx.isp.net; x\nTo: {to}\nMessage-ID: <{i}@x>\n\n")
            })
            .collect();
        let open = learn_with(&msgs, &Directory::open(&["example.com".into()]));
        assert!(open.boxes.is_empty(), "{:?}", open.boxes);
    }

    /// The catch-all account beside each person's X-Original-To is box-shaped; when the
    /// directory maps it to a user, it stays that user's address and the profile says so.
    #[test]
    fn a_directory_user_is_never_learned_as_the_box() {
        let users = ["alice", "bob", "carol"];
        let msgs: Vec<String> = (0..40)
            .map(|i| format!("Delivered-To: office@example.com\nX-Original-To: {}@example.com\nReceived: from s{i}.example.org by mx.isp.net; x\nMessage-ID: <{i}@x>\n\n", users[i % 3]))
            .collect();
        let open = learn_with(&msgs, &Directory::open(&["example.com".into()]));
        let names: Vec<&str> = open.boxes.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, vec!["office@example.com"]);
        let dir = office(&[
            ("alice@example.com", "alice"),
            ("bob@example.com", "bob"),
            ("office@example.com", "alice"),
        ]);
        let p = learn_with(&msgs, &dir);
        assert!(p.boxes.is_empty());
        assert_eq!(p.boxes_in_directory[0].name, "office@example.com");
        let said = p.describe(&dir);
        assert!(
            said.contains("the directory maps it to alice")
                && said.contains("--shared-box office@example.com"),
            "{said}"
        );
    }

    /// Exchange Online appends its envelope field below every hop, on every message.
    #[test]
    fn learns_a_providers_bottom_field() {
        let exchange = "X-MS-Exchange-Organization-OriginalEnvelopeRecipients";
        let msgs: Vec<String> = (0..20)
            .map(|i| format!("Received: from a by am0pr01mb{i}.eurprd01.prod.outlook.com; x\nReceived: from s.example.org by x.outlook.com; x\nTo: bob@example.com\n{exchange}: alice@example.com\n\n"))
            .collect();
        let p = learn(&msgs, &Overrides::default());
        assert_eq!(p.bottom_fields.len(), 1);
        assert_eq!(p.relays, vec!["outlook.com"]);
        let hops = gather(msgs[0].as_bytes()).hops;
        assert!(p.is_bottom_field(exchange, &hops));
        let elsewhere = gather(b"Received: from a by mx.other.example; x\n\n").hops;
        assert!(!p.is_bottom_field(exchange, &elsewhere));
        // Exchange's own fields need no learning below a Microsoft hop; others do.
        let small = Profile::default();
        assert!(small.is_bottom_field(exchange, &hops));
        assert!(!small.is_bottom_field("Envelope-To", &hops));
        assert!(!small.is_bottom_field(exchange, &elsewhere));
    }

    /// Messages for alice by envelope and bob by Cc: a box with a copy per recipient holds
    /// bob's copy too; one that kept one copy per Message-ID does not.
    #[test]
    fn learns_whether_the_box_kept_one_copy() {
        let copy = |rcpt: &str, i: usize| {
            format!(
                "X-Original-To: {rcpt}@example.com\nReceived: from s by mx.isp.net; x\nTo: alice@example.com\nCc: bob@example.com\nMessage-ID: <{i}@x>\n\n"
            )
        };
        let per_recipient: Vec<String> = (0..20)
            .flat_map(|i| [copy("alice", i), copy("bob", i)])
            .collect();
        let p = learn(&per_recipient, &Overrides::default());
        assert_eq!(
            (
                p.one_copy.candidates,
                p.one_copy.with_twin,
                p.one_copy.kept_one
            ),
            (20, 20, false)
        );
        let one: Vec<String> = (0..20)
            .map(|i| copy(if i % 2 == 0 { "alice" } else { "bob" }, i))
            .collect();
        let p = learn(&one, &Overrides::default());
        assert_eq!(
            (
                p.one_copy.candidates,
                p.one_copy.with_twin,
                p.one_copy.kept_one
            ),
            (20, 0, true)
        );
        let few: Vec<String> = (0..5).map(|i| copy("alice", i)).collect();
        assert!(!learn(&few, &Overrides::default()).one_copy.kept_one);
    }

    /// The server's `for` clause names the one local To/Cc address: counted once however
    /// often and in whatever case the address is written, and not when two are local.
    #[test]
    fn learns_whether_for_names_the_single_local_recipient() {
        let msgs = |to: &str, cc: &str, rcpt: &str| -> Vec<String> {
            (0..6)
                .map(|i| {
                    format!(
                        "Received: from s by mx.isp.net{rcpt}; x\nTo: {to}\nCc: {cc}\nMessage-ID: <{i}@x>\n\n"
                    )
                })
                .collect()
        };
        let over = Overrides::default();
        let for_alice = " for <alice@example.com>";
        let once = msgs("alice@example.com", "Alice@Example.COM", for_alice);
        assert!(learn(&once, &over).for_when_single);
        let outside = msgs("alice@example.com", "carol@example.org", for_alice);
        assert!(learn(&outside, &over).for_when_single);
        let two = msgs("alice@example.com", "bob@example.com", for_alice);
        assert!(!learn(&two, &over).for_when_single);
        let no_for = msgs("alice@example.com", "Alice@Example.COM", "");
        assert!(!learn(&no_for, &over).for_when_single);
    }

    #[test]
    fn a_domain_named_nowhere_is_reported_with_the_ones_seen() {
        let msgs: Vec<String> = (0..6)
            .map(|i| format!("To: a{i}@exmaple.com\n\n"))
            .collect();
        let p = learn(&msgs, &Overrides::default());
        assert_eq!(p.unseen_domains, vec!["example.com"]);
        assert_eq!(
            p.domains_seen[0],
            Share {
                name: "exmaple.com".into(),
                messages: 6
            }
        );
        assert!(
            p.describe(&Directory::open(&["example.com".into()]))
                .contains("WARNING: no address")
        );
    }

    proptest::proptest! {
        /// The same as counting every dot, as it was done before.
        #[test]
        fn org_domain_agrees_with_the_list_of_dots(
            labels in proptest::collection::vec(proptest::sample::select(vec![
                "", "mx", "co", "uk", "com", "example", "de", "go", "jp", "\u{e9}t\u{e9}", "-",
            ]), 0..6),
        ) {
            let host = labels.join(".");
            let dots: Vec<usize> = host.match_indices('.').map(|(i, _)| i).collect();
            let keep = match dots.len() {
                0 | 1 => None,
                n => {
                    let second_last = &host[dots[n - 2] + 1..dots[n - 1]];
                    let country = host.len() - dots[n - 1] == 3;
                    let registry = ["co", "com", "net", "org", "ac", "gov", "edu", "ne", "or", "go"];
                    Some(if country && registry.contains(&second_last) { 3 } else { 2 })
                }
            };
            let want = match keep.and_then(|k| dots.len().checked_sub(k)) {
                Some(i) => &host[dots[i] + 1..],
                None => host.as_str(),
            };
            proptest::prop_assert_eq!(org_domain(&host), want);
        }
    }

    #[test]
    fn org_domains() {
        assert_eq!(org_domain("mx1.isp.example.net"), "example.net");
        assert_eq!(org_domain("mail.example.co.uk"), "example.co.uk");
        assert_eq!(org_domain("localhost"), "localhost");
        assert_eq!(org_domain("-"), "-");
        assert_eq!(org_domain("example.net"), "example.net");
    }

    #[test]
    fn overrides_win() {
        let msgs: Vec<String> = (0..10).map(|i| postfix("alice", i)).collect();
        let over = Overrides {
            envelope_headers: vec!["X-Original-To".into()],
            trusted_relays: vec!["Gate.ISP.net.".into()],
            strip_prefixes: vec!["pop-".into()],
            shared_boxes: vec!["Box@Example.com".into()],
            allow_unseen_domain: false,
        };
        let p = learn(&msgs, &over);
        assert_eq!(p.relays, vec!["gate.isp.net"]);
        assert!(p.relays_given);
        assert!(!p.is_envelope(Kind::Envelope(2), "Delivered-To"));
        assert!(p.is_envelope(Kind::Envelope(0), "x-original-to"));
        assert_eq!(
            p.rewrite("pop-zed@anything.org").as_deref(),
            Some("zed@example.com")
        );
        assert!(p.is_box("box@example.com"));
    }
}

//! Provider-shaped test mailboxes with ground truth, and a scorer that runs the real
//! `popsplit split` on them.
//!
//! The generator models one office domain (`example.com`) whose whole mail a provider
//! dropped into one shared box, once per provider style, each written as that provider's
//! servers write it, top to bottom, with the sender side's hops below the provider's own:
//!
//! - `postfix`: an ISP's Postfix virtual catch-all. `Return-Path`, `X-Original-To` (the
//!   recipient), `Delivered-To` (the box), one copy per recipient, a Received `for` only on
//!   single-recipient transactions (Postfix `local(8)`/`virtual(8)` manual pages;
//!   SpamAssassin test corpus, `grep -n '^Delivered-To' spamassassin t/data`).
//! - `postfix-office`: the same, delivered through Dovecot LMTP into a box that is itself
//!   a directory address (`office@`, read by alice): `Delivered-To: office@` and an LMTP
//!   `for <office@>` on every message, `X-Original-To` below naming the real recipient
//!   (the LMTP-over-Postfix shape of the kernel mailing-list archive, lfdr.de deliveries).
//! - `qmail-plesk`: `Delivered-To: example.com-bob@example.com`, `(qmail N invoked from
//!   network)` and `(qmail N invoked by alias)` lines with no receiving host, and Plesk's
//!   `.qmail-default` chains, the original address lowest (qmail `dot-qmail(5)`; sisimai
//!   set-of-emails, `grep 'invoked by alias'`).
//! - `exim-cpanel`: `Return-path`, `Envelope-to` (several addresses when several routed to
//!   the one mailbox), `Delivery-date`, Exim Received with `for addr` only for a single
//!   recipient, and fetchmail's own POP3 Received on top (Exim specification,
//!   `envelope_to_add`; fetchmail manual; sisimai `grep '^Envelope-to'`).
//! - `bare`: sendmail with no envelope field at all: Received `for <addr>` only on
//!   single-recipient transactions, one copy per transaction (RFC 5321 section 4.4).
//! - `m365`: Exchange Online: top hops by `*.prod.outlook.com` / `*.outlook.com` /
//!   `*.exchangelabs.com`, content fields, then `X-MS-Exchange-Organization-*` and
//!   `X-MS-Exchange-CrossTenant-*` at the bottom with `OriginalEnvelopeRecipients`,
//!   `;`-separated and sometimes RFC 2047 encoded (Microsoft Learn, "Header firewall" in
//!   Exchange Server and "Anti-spam message headers" in Microsoft 365; sisimai
//!   `grep X-MS-Exchange-CrossTenant`, whose fields sit below the content fields).
//! - `google`: Google Workspace catch-all: `Delivered-To` on top, `Received: by 2002:a05:…`
//!   (an IPv6 literal, no host name), ARC fields, `mx.google.com` with `for <rcpt>`,
//!   sometimes `X-Gm-Original-To`, and one copy per Message-ID (Google Workspace admin
//!   help, catch-all routing and duplicate suppression).
//! - `ionos`: United Internet's `mx.kundenserver.de` (Nemesis) hops with `for <rcpt>`, then
//!   content, then `Envelope-To` and `X-UI-*` near the bottom (sisimai `grep kundenserver`,
//!   `grep X-UI-`).
//! - `forwarded`: an ISP Postfix delivery forwarded into Gmail (SRS return path, the
//!   earlier `X-Original-To`/`Delivered-To` below Gmail's), and Google auto-forward
//!   (`X-Forwarded-To`/`X-Forwarded-For` between the two deliveries); Gmail keeps one copy
//!   per Message-ID (sisimai `grep X-Forwarded-For`; Gmail help on forwarding).
//! - `lists`: list mail on the Postfix catch-all: the subscriber's delivery above the list
//!   server's hops and the list server's own `X-Original-To: list@lists.example.org`, To/Cc
//!   naming the list, one VERP-signed transaction per subscriber (kernel mailing-list
//!   archive, `zcat mailbox.mbox.gz | head -200`).
//!
//! Postfix, qmail and IONOS deliver one copy per recipient; Exim, sendmail and Exchange one
//! copy per SMTP transaction naming all its recipients; Gmail only the first copy of a
//! Message-ID, so there the truth may hold users the copy's envelope does not name.
//!
//! Situations mixed into every style: aliases and a distribution list, Bcc recipients, a
//! busy user (judy) on a large share of envelope fields yet rarely in To/Cc, BATV
//! (`prvs=…=judy@`) and SRS shapes (an `SRS0=…=partner.example=carol@example.com` bounce is
//! carol *at partner.example*, not ours), `+tag` addresses mapped to different users
//! (`lists+a@` frank, `lists+b@` erin), redirects (`Resent-*` on top, the old envelope
//! below: truth is the Resent recipients only), spam to guessed addresses whose To names a
//! colleague, forged `for <ceo@example.com>` in sender-side Received lines, and a departed
//! person who is not in the directory. Ground truth is per logical message: the set of
//! directory users whose envelope address received one of its copies.
//!
//! The generator is written from the providers' documented and observed shapes only; it
//! shares nothing with popsplit's own decision code or its own generator.
//!
//! `POPSPLIT_PROVIDERS_KEEP=DIR` keeps every run (mbox, directory, `truth.tsv`, report,
//! Maildirs) under `DIR/<style>` so a mistake can be replayed with `popsplit split --explain`.

#![allow(dead_code, unused_imports)] // The test file and the benchmark each use a different part.

mod mailgen;
mod score;

pub use mailgen::{Copy, Mailbox, Style, generate, generate_situations, write_directory};
pub use score::{Outcome, Scores, Targets, run_and_score, run_kept, score_styles};

/// The office's own mail domain in every generated mailbox.
pub const DOMAIN: &str = "example.com";

/// The directory: `(address, user)`. office@ is the catch-all box of one style and is
/// read by alice; sales@ is a distribution list; lists+a@ and lists+b@ differ only by tag.
pub const DIRECTORY: &[(&str, &str)] = &[
    ("alice@example.com", "alice"),
    ("a.smith@example.com", "alice"),
    ("office@example.com", "alice"),
    ("bob@example.com", "bob"),
    ("carol@example.com", "carol"),
    ("info@example.com", "carol"),
    ("dave@example.com", "dave"),
    ("ceo@example.com", "dave"),
    ("erin@example.com", "erin"),
    ("frank@example.com", "frank"),
    ("judy@example.com", "judy"),
    ("sales@example.com", "bob"),
    ("sales@example.com", "carol"),
    ("lists+a@example.com", "frank"),
    ("lists+b@example.com", "erin"),
];

/// Options for one generated set of mailboxes.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Logical messages per style.
    pub per_style: usize,
    /// PRNG seed: the same seed gives the same bytes.
    pub seed: u64,
}

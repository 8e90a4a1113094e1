//! Duplicates: which folders of a message already hold an identical copy (the box got
//! one copy per envelope recipient), and the key that names a copy so a rerun finds it.

use crate::compact::{Names, Repeats};
use crate::config::DUPLICATES;
use crate::evidence::hash_parts;
use crate::input::Source;
use crate::output::report::FirstSeen;
use crate::run::analyse::Decided;

/// Where one message's copies go after duplicates are set aside.
pub(crate) struct Plan {
    /// (folder, key) of each copy.
    pub(crate) copies: Vec<(String, String)>,
    pub(crate) duplicate_of: Option<FirstSeen>,
    /// Every destination had the message already: the copy goes to [`DUPLICATES`].
    pub(crate) set_aside: bool,
}

/// The messages delivered so far in this run that may have a copy elsewhere, by identity.
/// An entry holds numbers (about 40 bytes), not names.
pub(crate) struct DuplicateIndex {
    pub(crate) seen: crate::compact::Map<[u8; 16], Seen>,
    pub(crate) folders: Names,
    /// The messages that may have a copy elsewhere: the others never enter `seen`.
    pub(crate) repeats: Repeats,
}

/// Where the first copy of a message was, and the folders that hold it.
pub(crate) struct Seen {
    /// The first copy: position of its source and its 1-based index there.
    pub(crate) source: u32,
    pub(crate) number: u64,
    /// The first folder (none before any); most messages have just one.
    pub(crate) folder: Option<u32>,
    pub(crate) more: Box<[u32]>,
    /// Copies of the message set aside so far.
    pub(crate) set_aside: u32,
}

impl Seen {
    pub(crate) fn holds(&self, folder: u32) -> bool {
        self.folder == Some(folder) || self.more.contains(&folder)
    }

    pub(crate) fn add(&mut self, folder: u32) {
        match self.folder {
            None => self.folder = Some(folder),
            // Rare (one message, several users), so a tight slice beats a Vec's spare room.
            _ => self.more = self.more.iter().copied().chain([folder]).collect(),
        }
    }
}

/// Where a source's messages go: which source, the unassigned folder, and the Maildir++
/// subfolder of the source's folder (`""`: INBOX).
pub(crate) struct Destination<'a> {
    pub(crate) source: usize,
    pub(crate) unassigned: &'a str,
    pub(crate) sub: &'a str,
}

/// The Maildir `user` (a user, the unassigned or the duplicates folder) or its
/// subfolder `sub`, as a path relative to `--out`: what a copy's key and the report name.
pub(crate) fn in_folder(user: &str, sub: &str) -> String {
    match sub {
        "" => user.to_string(),
        _ => format!("{user}/{sub}"),
    }
}

/// The user's Maildir of a copy's folder (`alice` of `alice/.Archive`).
pub(crate) fn user_of(folder: &str) -> &str {
    folder.split('/').next().unwrap_or(folder)
}

/// The Maildir++ subfolder of a copy's folder (`.Archive` of `alice/.Archive`, `""`).
pub(crate) fn sub_of(folder: &str) -> &str {
    folder.split_once('/').map_or("", |(_, sub)| sub)
}

impl DuplicateIndex {
    /// The folders of `wanted` that hold no earlier copy of the message, which they now
    /// hold, the first copy when some folder did, and, when every folder did, how many
    /// copies of the message have been set aside with this one.
    pub(crate) fn place(
        &mut self,
        w: &Decided<'_>,
        source: usize,
        wanted: Vec<String>,
        sources: &[Source],
    ) -> (Vec<String>, Option<FirstSeen>, u32) {
        let ids: Vec<u32> = wanted.iter().map(|f| self.folders.intern(f)).collect();
        let entry = self.seen.entry(w.identity).or_insert_with(|| Seen {
            source: source as u32,
            number: w.number as u64,
            folder: None,
            more: Box::default(),
            set_aside: 0,
        });
        let (folders, new): (Vec<String>, Vec<u32>) = wanted
            .iter()
            .zip(&ids)
            .filter(|(_, id)| !entry.holds(**id))
            .map(|(f, id)| (f.clone(), *id))
            .unzip();
        let first = (folders.len() < wanted.len()).then(|| FirstSeen {
            source: sources
                .get(entry.source as usize)
                .map(|s| s.message_name(entry.number as usize))
                .unwrap_or_default(),
            index: entry.number as usize,
        });
        for id in new {
            entry.add(id);
        }
        if folders.is_empty() {
            entry.set_aside += 1;
        }
        (folders, first, entry.set_aside)
    }
}

/// Where one message's copies go, before their keys are made.
pub(crate) struct Placed {
    folders: Vec<String>,
    duplicate_of: Option<FirstSeen>,
    /// Every destination had the message already: its place among the copies set aside.
    set_aside: Option<u32>,
}

/// Chooses the folders of one message, leaving out those that already hold an identical
/// earlier copy (the box got one copy per envelope recipient). In input order, one
/// message after another; the keys are made after, in parallel ([`Placed::keyed`]).
pub(crate) fn place(
    w: &Decided<'_>,
    to: &Destination<'_>,
    delivered: &mut DuplicateIndex,
    sources: &[Source],
) -> Placed {
    let wanted: Vec<String> = match w.decision.users.is_empty() {
        true => vec![in_folder(to.unassigned, to.sub)],
        false => w
            .decision
            .users
            .iter()
            .map(|u| in_folder(u, to.sub))
            .collect(),
    };
    let (folders, duplicate_of, nth) = if delivered.repeats.maybe(&w.facts.header_key) {
        delivered.place(w, to.source, wanted, sources)
    } else {
        // No other message shares its Message-ID (or From, Date and Subject): no copy of
        // it came before or will come after.
        (wanted, None, 0)
    };
    let set_aside = folders.is_empty().then_some(nth);
    Placed {
        folders: match set_aside {
            Some(_) => vec![in_folder(DUPLICATES, to.sub)],
            None => folders,
        },
        duplicate_of,
        set_aside,
    }
}

impl Placed {
    /// The plan of `w`, whose folders these are: each copy with its key.
    pub(crate) fn keyed(self, w: &Decided<'_>) -> Plan {
        let Placed {
            folders,
            duplicate_of,
            set_aside,
        } = self;
        let copies = folders.into_iter().map(|f| {
            let key = copy_key(w, &f, set_aside);
            (f, key)
        });
        Plan {
            copies: copies.collect(),
            duplicate_of,
            set_aside: set_aside.is_some(),
        }
    }
}

/// The key that names a copy: the same copy of the same message always gets the same key,
/// so a rerun finds it. Copies kept in `_duplicates` also carry their place among the
/// set-aside copies of the message (1 for the first), so that every one of them is kept;
/// not the input's name, which another path or a gzip'd copy of the same mailbox changes.
pub(crate) fn copy_key(w: &Decided<'_>, folder: &str, set_aside: Option<u32>) -> String {
    // The header block tells copies with different trace fields apart; the body is in
    // the identity already.
    let header = &w.content[..w.facts.body_start.min(w.content.len())];
    let nth = set_aside.map(|nth| format!("\0duplicate {nth}"));
    let nth = nth.as_deref().unwrap_or_default().as_bytes();
    hash_parts(&[folder.as_bytes(), b"\0", &w.identity, header, nth]).to_hex()[..24].to_string()
}

//! Inference from other messages: the user a reply's thread belongs to, and the user
//! a mailing list's mail goes to, learned from the messages evidence decided.

use crate::compact::Names;
use crate::decide::directory::Directory;
use crate::decide::{Confidence, Decision, Hints};
use crate::evidence::Facts;
use std::collections::HashMap;

/// Whom a reply to a message may be for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// One user, by number into [`Inference::users`].
    User(u32),
    /// Several users: a reply names none of them alone.
    Several,
}

/// What other messages say about threads and lists, for inference.
#[derive(Debug, Default)]
pub(crate) struct Inference {
    /// Message-ID hash → the one user a reply to it may be for: the local sender, or else
    /// the one recipient evidence decided. Kept for the whole run, so an entry is a
    /// number into `users` rather than a name.
    pub(crate) threads: HashMap<u64, Owner>,
    /// The users `threads` names.
    pub(crate) users: Names,
    /// List-Id → users that envelope evidence gave its messages to, with counts.
    pub(crate) lists: HashMap<String, HashMap<String, u32>>,
}

impl Inference {
    pub(crate) fn add(&mut self, facts: &Facts, d: &Decision, dir: &Directory) {
        let sender = facts
            .from_address
            .as_deref()
            .map(|a| dir.users(a))
            .filter(|u| u.len() == 1)
            .and_then(|mut u| u.pop());
        let sure = matches!(d.confidence, Confidence::High | Confidence::Medium);
        let id = match (sender, d.users.as_slice()) {
            (Some(s), _) => Some(Owner::User(self.users.intern(&s))),
            (None, [one]) if sure => Some(Owner::User(self.users.intern(one))),
            (None, [_, _, ..]) if sure => Some(Owner::Several),
            _ => None,
        };
        if let (Some(id), Some(message)) = (id, facts.id_hash) {
            self.threads.insert(message, id);
        }
        if let (Some(list), Confidence::High, [user]) =
            (&facts.list_id, d.confidence, d.users.as_slice())
        {
            *self
                .lists
                .entry(list.clone())
                .or_default()
                .entry(user.clone())
                .or_default() += 1;
        }
    }

    pub(crate) fn merge(mut self, other: Inference) -> Inference {
        for (message, owner) in other.threads {
            let owner = match owner {
                Owner::User(id) => match other.users.get(id) {
                    Some(user) => Owner::User(self.users.intern(user)),
                    None => Owner::Several,
                },
                Owner::Several => Owner::Several,
            };
            self.threads.insert(message, owner);
        }
        for (list, users) in other.lists {
            let mine = self.lists.entry(list).or_default();
            for (u, n) in users {
                *mine.entry(u).or_default() += n;
            }
        }
        self
    }

    /// The inference a message's thread and list allow: one user each, or none.
    pub(crate) fn hints(&self, facts: &Facts) -> Hints {
        let list = facts
            .list_id
            .as_ref()
            .filter(|_| facts.is_list)
            .and_then(|l| self.lists.get(l))
            .filter(|users| users.len() == 1)
            .and_then(|users| users.iter().next())
            .filter(|(_, n)| **n >= 2)
            .map(|(u, _)| u.clone());
        let mut thread: Vec<u32> = facts
            .parents
            .iter()
            .filter_map(|p| match self.threads.get(p) {
                Some(Owner::User(id)) => Some(*id),
                Some(Owner::Several) | None => None,
            })
            .collect();
        thread.sort_unstable();
        thread.dedup();
        let thread = match thread.as_slice() {
            [one] => self.users.get(*one).map(str::to_string),
            _ => None,
        };
        Hints { thread, list }
    }
}

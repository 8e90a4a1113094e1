//! The facts pass 1 gathered from the first messages, kept for passes 2 and 3 up to a
//! memory budget, so that those messages' header blocks are not read again: on list mail
//! with long address lists, gathering was more than half of a run, once in each pass.

use crate::compact::Map;
use crate::evidence::Facts;
use crate::input::Unit;
use std::borrow::Cow;

/// Memory the kept facts may take, at most. Past it, later messages are gathered again in
/// each pass, as before: a large mailbox keeps its first part, and its memory stays flat.
/// 1 MB in debug builds, the binary the end-to-end tests run, so that every test mailbox
/// of more than a few hundred messages (kernel-lists, the generated ones) crosses it
/// and checks that messages past it are decided as those before it.
const BUDGET: usize = if cfg!(debug_assertions) {
    1 << 20
} else {
    32 << 20
};

/// Facts of the first messages of each source, by position, while the budget lasts.
#[derive(Default)]
pub(crate) struct Kept {
    by_source: Map<String, Vec<Option<Facts>>>,
    /// The weight of the facts kept, and of the first that did not fit, if one did not.
    weight: usize,
}

impl Kept {
    /// Keeps the facts of the messages of source `name` from 0-based position `first` on,
    /// when they follow the ones kept already and the budget allows; once it does not,
    /// keeps nothing more.
    pub(crate) fn keep(&mut self, name: &str, first: usize, facts: Vec<Facts>) {
        if Self::spent(self.weight) {
            return;
        }
        let kept = self.by_source.entry(name.to_string()).or_default();
        // Only an unbroken run from the start: a position is then its index. (The same
        // file given twice starts again at 0, and its facts are there already.)
        if kept.len() != first {
            return;
        }
        for f in facts {
            self.weight += weight(&f);
            if Self::spent(self.weight) {
                return;
            }
            kept.push(Some(f));
        }
    }

    /// Whether facts of this `weight` have spent the budget: nothing more is kept.
    fn spent(weight: usize) -> bool {
        weight > BUDGET
    }

    /// The facts of the message at 0-based `position` of source `name`, when kept (and
    /// not taken yet).
    pub(crate) fn get(&self, name: &str, position: usize) -> Option<&Facts> {
        self.by_source.get(name)?.get(position)?.as_ref()
    }

    /// Takes out the kept facts of a batch's messages (`None` for the others): pass 3 is
    /// their last reader, and their memory goes with it.
    pub(crate) fn take(&mut self, name: &str, batch: &[Unit]) -> Vec<Option<Facts>> {
        let mut kept = self.by_source.get_mut(name);
        batch
            .iter()
            .map(|u| {
                kept.as_mut()
                    .and_then(|k| k.get_mut(u.position()))
                    .and_then(Option::take)
            })
            .collect()
    }

    /// The facts of the message at `position`, kept or gathered by `gather`.
    pub(crate) fn or_gather<'k, E>(
        &'k self,
        name: &str,
        position: usize,
        gather: impl FnOnce() -> Result<Facts, E>,
    ) -> Result<Cow<'k, Facts>, E> {
        match self.get(name, position) {
            Some(f) => Ok(Cow::Borrowed(f)),
            None => gather().map(Cow::Owned),
        }
    }
}

/// About how many bytes of memory `f` holds, its slot included.
fn weight(f: &Facts) -> usize {
    let text = |s: &str| s.len();
    let evidence: usize = f
        .evidence
        .iter()
        .map(|e| {
            e.address.as_deref().map_or(0, text)
                + match &e.header {
                    Cow::Owned(h) => h.len(),
                    Cow::Borrowed(_) => 0,
                }
        })
        .sum();
    let hops: usize = f.hops.iter().map(|h| h.by.as_deref().map_or(0, text)).sum();
    size_of::<Option<Facts>>()
        + f.evidence.capacity() * size_of::<crate::evidence::Evidence>()
        + evidence
        + f.hops.capacity() * size_of::<crate::evidence::Hop>()
        + hops
        + f.parents.capacity() * size_of::<u64>()
        + [&f.from, &f.subject, &f.flags]
            .map(|s| s.capacity())
            .iter()
            .sum::<usize>()
        + [&f.message_id, &f.from_address, &f.list_id, &f.list_post]
            .map(|s| s.as_ref().map_or(0, String::capacity))
            .iter()
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::gather;

    fn unit(position: usize) -> Unit {
        Unit::File(position)
    }

    #[test]
    fn facts_are_kept_in_order_taken_once_and_not_past_the_budget() {
        let msg = |i: usize| {
            gather(format!("To: user{i}@example.com\nMessage-ID: <{i}@x>\n\nbody\n").as_bytes())
        };
        let mut kept = Kept::default();
        kept.keep("box", 0, (0..3).map(msg).collect());
        // Not following the kept ones: not kept (a gap would shift the positions).
        kept.keep("box", 5, vec![msg(5)]);
        assert!(kept.get("box", 5).is_none());
        kept.keep("box", 3, vec![msg(3)]);
        assert_eq!(
            kept.get("box", 3).and_then(|f| f.message_id.clone()),
            msg(3).message_id
        );
        assert!(kept.get("other", 0).is_none());
        let or_gather = kept.or_gather("box", 1, || Err::<Facts, ()>(()));
        assert!(matches!(or_gather, Ok(Cow::Borrowed(_))));
        assert!(kept.or_gather("box", 9, || Err::<Facts, ()>(())).is_err());
        // Pass 3 takes them out: a second take finds nothing.
        let taken = kept.take("box", &[unit(1), unit(2), unit(7)]);
        let ids: Vec<Option<String>> = taken
            .into_iter()
            .map(|f| f.and_then(|f| f.message_id))
            .collect();
        assert_eq!(ids, [msg(1).message_id, msg(2).message_id, None]);
        assert!(kept.take("box", &[unit(1)])[0].is_none());
        assert!(kept.get("box", 0).is_some());
        // Past the budget nothing more is kept, not even for another source.
        let one = weight(&msg(0));
        let many = BUDGET / one + 10;
        kept.keep("big", 0, (0..many).map(msg).collect());
        assert!(Kept::spent(kept.weight));
        assert!(kept.get("big", 0).is_some() && kept.get("big", many - 1).is_none());
        kept.keep("late", 0, vec![msg(0)]);
        assert!(kept.get("late", 0).is_none());
    }

    // `cargo test --release` runs the end-to-end tests on the release binary, past no budget.
    #[cfg(debug_assertions)]
    #[test]
    fn the_end_to_end_mailboxes_spend_the_test_builds_budget() {
        // The smallest of them: kernel-lists, 2,202 messages (the crash tests write 6,000).
        // Even facts of one recipient and nothing else would spend the budget, so those
        // tests decide messages past it; raising it would silently stop that.
        let least = weight(&gather(b"To: a@example.com\n\nbody\n"));
        assert!(2_202 * least > BUDGET, "{least} bytes a message");
    }
}

//! Whole-run state kept small: fixed bitmaps that answer "maybe" or "no", and names
//! stored once and referred to by number.

use std::collections::HashMap;

/// A hash map for keys taken from mail, with a hasher seeded at random per run (so a
/// sender cannot pick keys that collide) that is several times cheaper than std's SipHash
/// on short strings: hashing names and addresses was 4% of a run's instructions.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The set form of [`Map`].
pub(crate) type Set<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;

/// Which messages may share their Message-ID (or From, Date and Subject) with another: only
/// those can be duplicates, so only those need a place in the duplicate index, which would
/// otherwise hold every message of the archive. Up to [`Repeats::EXACT`] keys, a map of
/// them; past that, two fixed bitmaps of 8 MB, pages touched only as used: "maybe" for
/// some messages that have no twin, never "no" for one that has.
pub(crate) enum Repeats {
    /// Each key (its first 8 bytes) and whether it came twice, until there are too many.
    /// A small archive so never touches the bitmaps: their first touch was 25 ms of a
    /// 150 ms run on kernel-lists, zeroing pages on one thread while the other waited.
    Exact(Map<u64, bool>),
    /// Keys seen once, and twice (or more), by slot.
    Bits(Bits, Bits),
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats::Exact(Map::default())
    }
}

impl Repeats {
    pub(crate) const BITS: usize = 1 << 26;

    /// Keys held in the map before the bitmaps take over (its table then takes about 2 MB).
    pub(crate) const EXACT: usize = 1 << 16;

    fn prefix(key: &[u8; 16]) -> u64 {
        u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ])
    }

    fn slot(prefix: u64) -> usize {
        // The key is a BLAKE3 digest: any 26 of its bits are uniform.
        prefix as usize & (Repeats::BITS - 1)
    }

    pub(crate) fn add(&mut self, key: &[u8; 16]) {
        let p = Repeats::prefix(key);
        match self {
            Repeats::Exact(exact) => {
                exact
                    .entry(p)
                    .and_modify(|twice| *twice = true)
                    .or_insert(false);
                if exact.len() > Repeats::EXACT {
                    let (mut once, mut twice) =
                        (Bits::new(Repeats::BITS), Bits::new(Repeats::BITS));
                    for (&p, &two) in exact.iter() {
                        once.set(Repeats::slot(p));
                        if two {
                            twice.set(Repeats::slot(p));
                        }
                    }
                    *self = Repeats::Bits(once, twice);
                }
            }
            Repeats::Bits(once, twice) => {
                let b = Repeats::slot(p);
                if once.get(b) {
                    twice.set(b);
                }
                once.set(b);
            }
        }
    }

    pub(crate) fn maybe(&self, key: &[u8; 16]) -> bool {
        let p = Repeats::prefix(key);
        match self {
            Repeats::Exact(exact) => exact.get(&p) == Some(&true),
            Repeats::Bits(_, twice) => twice.get(Repeats::slot(p)),
        }
    }
}

/// A fixed bitmap whose pages are touched only as bits are set.
pub(crate) struct Bits(Vec<u64>);

impl Bits {
    pub(crate) fn new(bits: usize) -> Self {
        Bits(vec![0; bits / 64])
    }

    pub(crate) fn set(&mut self, b: usize) {
        self.0[b / 64] |= 1 << (b % 64);
    }

    pub(crate) fn get(&self, b: usize) -> bool {
        self.0[b / 64] & (1 << (b % 64)) != 0
    }
}

/// Message-IDs other messages refer to, in a fixed 2 MB whatever the archive's size: it
/// may say "maybe" of one nobody refers to (pass 2 then decides one message more), never
/// "no" of one somebody does.
pub(crate) struct Referred(Bits);

impl Default for Referred {
    fn default() -> Self {
        Referred(Bits::new(Referred::BITS))
    }
}

impl Referred {
    pub(crate) const BITS: usize = 1 << 24;

    pub(crate) fn slot(id: u64) -> usize {
        // Fibonacci hashing: the top bits of the product depend on every bit of the hash.
        (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize
    }

    pub(crate) fn insert(&mut self, id: u64) {
        self.0.set(Referred::slot(id));
    }

    pub(crate) fn maybe(&self, id: u64) -> bool {
        self.0.get(Referred::slot(id))
    }
}

/// Names kept for the whole run, each stored once and referred to by number.
#[derive(Debug, Default)]
pub(crate) struct Names {
    pub(crate) names: Vec<String>,
    pub(crate) ids: Map<String, u32>,
}

impl Names {
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = self.names.len() as u32;
        self.ids.insert(name.to_string(), id);
        self.names.push(name.to_string());
        id
    }

    pub(crate) fn get(&self, id: u32) -> Option<&str> {
        self.names.get(id as usize).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u64) -> [u8; 16] {
        *blake3::hash(&i.to_le_bytes())
            .as_bytes()
            .first_chunk()
            .expect("16 bytes")
    }

    /// `keys` keys, every seventh added twice: each of those is "maybe", and how many of
    /// the others are too.
    fn lonely_maybes(keys: u64) -> (Repeats, usize) {
        let mut repeats = Repeats::default();
        for i in 0..keys {
            repeats.add(&key(i));
        }
        for i in (0..keys).step_by(7) {
            repeats.add(&key(i));
        }
        assert!((0..keys).step_by(7).all(|i| repeats.maybe(&key(i))));
        let lonely = (0..keys)
            .filter(|i| i % 7 != 0)
            .filter(|i| repeats.maybe(&key(*i)))
            .count();
        (repeats, lonely)
    }

    #[test]
    fn only_messages_with_a_twin_may_be_duplicates() {
        // Within the map: exact.
        let (repeats, lonely) = lonely_maybes(50_000);
        assert!(matches!(repeats, Repeats::Exact(_)));
        assert_eq!(lonely, 0);
        // Past it, the bitmaps: 200,000 keys in 2^26 slots, a lonely key shares one about
        // 0.3% of the time.
        let (repeats, lonely) = lonely_maybes(200_000);
        assert!(matches!(repeats, Repeats::Bits(..)));
        assert!(lonely < 1_000, "{lonely}");
    }

    #[test]
    fn twins_seen_before_the_bitmaps_took_over_are_still_known() {
        let mut repeats = Repeats::default();
        repeats.add(&key(u64::MAX));
        repeats.add(&key(u64::MAX));
        for i in 0..Repeats::EXACT as u64 + 1 {
            repeats.add(&key(i));
        }
        assert!(matches!(repeats, Repeats::Bits(..)));
        assert!(repeats.maybe(&key(u64::MAX)));
        // A key added once before and once after the change is a twin too.
        repeats.add(&key(0));
        assert!(repeats.maybe(&key(0)));
    }
}

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
/// otherwise hold every message of the archive. Two fixed bitmaps of 8 MB, pages touched
/// only as used: "maybe" for some messages that have no twin, never "no" for one that has.
pub(crate) struct Repeats {
    pub(crate) once: Bits,
    pub(crate) twice: Bits,
}

impl Default for Repeats {
    fn default() -> Self {
        Repeats {
            once: Bits::new(Repeats::BITS),
            twice: Bits::new(Repeats::BITS),
        }
    }
}

impl Repeats {
    pub(crate) const BITS: usize = 1 << 26;

    pub(crate) fn slot(key: &[u8; 16]) -> usize {
        // The key is a BLAKE3 digest: any 26 of its bits are uniform.
        (u64::from_le_bytes([
            key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
        ]) as usize)
            & (Repeats::BITS - 1)
    }

    pub(crate) fn add(&mut self, key: &[u8; 16]) {
        let b = Repeats::slot(key);
        if self.once.get(b) {
            self.twice.set(b);
        }
        self.once.set(b);
    }

    pub(crate) fn maybe(&self, key: &[u8; 16]) -> bool {
        self.twice.get(Repeats::slot(key))
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

    #[test]
    fn only_messages_with_a_twin_may_be_duplicates() {
        let key = |i: u64| -> [u8; 16] {
            *blake3::hash(&i.to_le_bytes())
                .as_bytes()
                .first_chunk()
                .expect("16 bytes")
        };
        let mut repeats = Repeats::default();
        for i in 0..50_000 {
            repeats.add(&key(i));
        }
        for i in (0..50_000).step_by(7) {
            repeats.add(&key(i));
        }
        assert!((0..50_000).step_by(7).all(|i| repeats.maybe(&key(i))));
        let lonely = (0..50_000)
            .filter(|i| i % 7 != 0)
            .filter(|i| repeats.maybe(&key(*i)))
            .count();
        // 50,000 keys in 2^26 slots: a lonely key shares one about 0.07% of the time.
        assert!(lonely < 200, "{lonely}");
    }
}

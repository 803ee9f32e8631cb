//! The name hash index: an open-addressed table over a name-sorted symbol
//! table, for lookups that cost one hash and about one probe.
//!
//! The index does not replace the sorted table, it points into it: slot `s`
//! holds `tag << 32 | (i + 1)`, where `i` is the symbol's position in the
//! sorted table and `tag` the high 32 bits of the name's [`hash`]; 0 is an
//! empty slot. A name's home slot is `hash & (slots - 1)`; collisions probe
//! the following slots, wrapping, at most [`MAX_PROBE`] of them. A lookup
//! compares the name itself before it answers, so an index that lies (one
//! read from a module is untrusted) can only make a name missing, never
//! return a wrong symbol or read outside the table.
//!
//! The same index serves a module's exports (stored in the module, see
//! `dynld-module(5)`) and a host's [`ExportTable`](crate::ExportTable)
//! (built by [`build`] into caller storage, or generated as a constant by
//! `aout exports`).

/// Longest probe sequence a lookup follows. [`build`] fails rather than
/// place a name further than this from its home slot.
pub const MAX_PROBE: usize = 32;

/// Most slots an index may have (2^26 slots, 512 MiB).
pub const MAX_SLOTS: usize = 1 << 26;

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K2: u64 = 0x1656_67b1_9e37_79f9;
const K3: u64 = 0x27d4_eb2f_1656_67c5;

/// The 128-bit product of `a` and `b`, folded to 64 bits. One instruction
/// or two on a 64-bit machine, so inlined there; a dozen on a 32-bit one,
/// which shares one copy.
#[cfg_attr(target_pointer_width = "64", inline(always))]
#[cfg_attr(not(target_pointer_width = "64"), inline(never))]
const fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128) * (b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[inline(always)]
fn word(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// The index's name hash: 64 bits, the same on every host (words are read
/// little-endian), defined in `dynld-module(5)`.
///
/// Names of up to 16 bytes take one multiply; longer ones take one per
/// 16 bytes, in two independent lanes so that long mangled names hash at
/// memory speed.
#[inline]
pub fn hash(b: &[u8]) -> u64 {
    let n = b.len();
    let seed = K0 ^ (n as u64).wrapping_mul(K1);
    let (lo, hi) = if n > 16 {
        let (mut a, mut c) = (seed, seed ^ K3);
        let mut at = 0;
        while n - at > 32 {
            a = fold(word(b, at) ^ K1, word(b, at + 8) ^ a);
            c = fold(word(b, at + 16) ^ K2, word(b, at + 24) ^ c);
            at += 32;
        }
        // The last 16 or 32 bytes, overlapping what came before.
        if n - at > 16 {
            a = fold(word(b, at) ^ K1, word(b, at + 8) ^ a);
        }
        (word(b, n - 16) ^ a, word(b, n - 8) ^ c)
    } else if n >= 8 {
        (word(b, 0), word(b, n - 8))
    } else if n >= 4 {
        let w = |at: usize| u64::from(u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]));
        (w(0), w(n - 4))
    } else if n > 0 {
        (
            u64::from(b[0]) | u64::from(b[n / 2]) << 8,
            u64::from(b[n - 1]),
        )
    } else {
        (0, 0)
    };
    fold(fold(lo ^ K2, hi ^ seed) ^ K3, K0)
}

/// Slots an index over `n` names gets from [`build`]: the smallest power of
/// two at least twice `n`, and at least 8.
pub const fn slots_for(n: usize) -> usize {
    let want = if n > usize::MAX / 2 {
        usize::MAX
    } else {
        2 * n
    };
    if want <= 8 {
        8
    } else {
        match want.checked_next_power_of_two() {
            Some(s) => s,
            None => usize::MAX,
        }
    }
}

/// Why an index could not be built or was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IndexError {
    /// The slot count is not a power of two, or is too small or too large
    /// for the table.
    Size,
    /// A slot names a symbol past the end of the table.
    Slot {
        /// The slot.
        slot: usize,
    },
    /// A name is further than [`MAX_PROBE`] slots from its home slot.
    TooCrowded,
}

impl IndexError {
    /// The loader's error for this problem in `table`'s index.
    pub fn at(self, table: crate::Table) -> crate::Error {
        let what = match self {
            IndexError::Size => "slot count not a power of two, or too small or too large",
            IndexError::Slot { .. } => "a slot names no symbol",
            IndexError::TooCrowded => "a name is too far from its home slot",
        };
        crate::Error::BadIndex { table, what }
    }
}

/// A name's home slot, and its tag shifted into place.
#[inline(always)]
fn place(h: u64, mask: usize) -> (usize, u64) {
    (h as usize & mask, h & !0xffff_ffff)
}

/// Fills `slots` with an index over `n` names, `name(i)` being the `i`th.
/// `slots.len()` must be a power of two greater than `n`, at most
/// [`MAX_SLOTS`]; [`slots_for`] gives the size that keeps probes short.
pub fn build<'n>(
    n: usize,
    name: impl Fn(usize) -> &'n [u8],
    slots: &mut [u64],
) -> Result<(), IndexError> {
    let len = slots.len();
    if !len.is_power_of_two() || len <= n || len > MAX_SLOTS {
        return Err(IndexError::Size);
    }
    slots.fill(0);
    let mask = len - 1;
    for i in 0..n {
        let (home, tag) = place(hash(name(i)), mask);
        let free = (0..MAX_PROBE)
            .map(|k| (home + k) & mask)
            .find(|&s| slots[s] == 0)
            .ok_or(IndexError::TooCrowded)?;
        slots[free] = tag | (i as u64 + 1);
    }
    Ok(())
}

/// An index over `n` names in a new vector: [`slots_for`]`(n)` slots, or
/// twice that if the names crowd the smaller table (the most a loader
/// accepts in a module).
#[cfg(feature = "alloc")]
pub fn build_vec<'n>(
    n: usize,
    name: impl Fn(usize) -> &'n [u8],
) -> Result<alloc::vec::Vec<u64>, IndexError> {
    let mut slots = alloc::vec![0u64; slots_for(n)];
    match build(n, &name, &mut slots) {
        Err(IndexError::TooCrowded) => {
            slots = alloc::vec![0u64; slots_for(n).saturating_mul(2)];
            build(n, &name, &mut slots)?;
        }
        r => r?,
    }
    Ok(slots)
}

/// Checks that `slots` can serve a table of `n` names: a power-of-two
/// length no larger than [`MAX_SLOTS`], and every occupied slot naming a
/// symbol that exists. Lookups through a checked index stay in bounds
/// whatever else the slots say.
pub fn check(slots: &[u64], n: usize) -> Result<(), IndexError> {
    check_by(slots.len(), |i| slots[i], n)
}

/// [`check`] over `len` slots read by `slot(i)`.
pub fn check_by(len: usize, slot: impl Fn(usize) -> u64, n: usize) -> Result<(), IndexError> {
    if !len.is_power_of_two() || len > MAX_SLOTS {
        return Err(IndexError::Size);
    }
    match (0..len).find(|&i| (slot(i) & 0xffff_ffff) as usize > n) {
        Some(slot) => Err(IndexError::Slot { slot }),
        None => Ok(()),
    }
}

/// Follows `name`'s probe sequence in a checked index; `is(i, name)` says
/// whether symbol `i` is called `name`. Returns the symbol's position.
#[inline]
pub fn probe(slots: &[u64], name: &[u8], is: impl Fn(usize, &[u8]) -> bool) -> Option<usize> {
    probe_by(slots.len(), |i| slots.get(i).copied(), name, is)
}

/// [`probe`] over `len` slots read by `slot(i)`.
#[inline]
pub fn probe_by(
    len: usize,
    slot: impl Fn(usize) -> Option<u64>,
    name: &[u8],
    is: impl Fn(usize, &[u8]) -> bool,
) -> Option<usize> {
    probe_hashed(len, slot, hash(name), name, is)
}

/// Whether slot word `v` may hold the name whose hash is `h`; if so, the
/// symbol's position.
#[inline(always)]
pub(crate) fn candidate(v: u64, h: u64) -> Option<usize> {
    (v != 0 && v & !0xffff_ffff == h & !0xffff_ffff)
        .then(|| ((v & 0xffff_ffff) as usize).wrapping_sub(1))
}

/// [`probe_by`] for a name whose hash `h` is known.
#[inline]
pub(crate) fn probe_hashed(
    len: usize,
    slot: impl Fn(usize) -> Option<u64>,
    h: u64,
    name: &[u8],
    is: impl Fn(usize, &[u8]) -> bool,
) -> Option<usize> {
    if len == 0 {
        return None;
    }
    let mask = len - 1;
    let (home, tag) = place(h, mask);
    let mut s = home;
    for _ in 0..MAX_PROBE.min(len) {
        let v = slot(s)?;
        if v == 0 {
            return None;
        }
        if v & !0xffff_ffff == tag {
            let i = ((v & 0xffff_ffff) as usize).wrapping_sub(1);
            if is(i, name) {
                return Some(i);
            }
        }
        s = (s + 1) & mask;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;
    use std::string::String;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn hash_reads_every_byte() {
        // Changing any one byte of names of every length up to 80 changes
        // the hash.
        for n in 1..if cfg!(miri) { 40 } else { 80 } {
            let base: Vec<u8> = (0..n as u8).map(|b| b.wrapping_mul(7) | 1).collect();
            let h = hash(&base);
            for at in 0..n {
                let mut b = base.clone();
                b[at] ^= 0x20;
                assert_ne!(hash(&b), h, "len {n}, byte {at}");
            }
        }
        assert_ne!(hash(b""), hash(b"\0"));
    }

    #[test]
    fn hash_is_fixed() {
        // The format depends on these values; they must never change.
        assert_eq!(hash(b""), 0x4352_159b_7eab_a0c6);
        assert_eq!(hash(b"main"), 0x05bf_7032_a662_9764);
    }

    fn names(n: usize) -> Vec<String> {
        let mut v: Vec<String> = (0..n).map(|i| format!("sym_{i}_{}", i * 7919)).collect();
        v.sort();
        v
    }

    #[test]
    fn build_and_probe() {
        let sizes: &[usize] = if cfg!(miri) {
            &[0, 1, 7, 40]
        } else {
            &[0, 1, 7, 100, 5000]
        };
        for &n in sizes {
            let names = names(n);
            let mut slots = vec![0u64; slots_for(n)];
            build(n, |i| names[i].as_bytes(), &mut slots).unwrap();
            check(&slots, n).unwrap();
            let is = |i: usize, k: &[u8]| names[i].as_bytes() == k;
            for (i, s) in names.iter().enumerate() {
                assert_eq!(probe(&slots, s.as_bytes(), is), Some(i));
                let miss = format!("{s}x");
                assert_eq!(probe(&slots, miss.as_bytes(), is), None);
            }
        }
    }

    #[test]
    fn refuses_bad_sizes_and_slots() {
        let mut s = [0u64; 6];
        assert_eq!(build(1, |_| b"a", &mut s), Err(IndexError::Size));
        let mut s = [0u64; 4];
        assert_eq!(build(4, |_| b"a", &mut s), Err(IndexError::Size));
        assert_eq!(check(&[0, 0, 3, 0], 2), Err(IndexError::Slot { slot: 2 }));
        assert_eq!(check(&[0, 0, 0], 2), Err(IndexError::Size));
    }

    #[test]
    fn lying_index_only_misses() {
        // Every slot occupied, every tag matching, every index pointing at
        // symbol 0: lookups stay in bounds and end after MAX_PROBE probes.
        let tag = hash(b"b") & !0xffff_ffff;
        let slots = vec![tag | 1; 64];
        check(&slots, 1).unwrap();
        let probes = core::cell::Cell::new(0);
        let found = probe(&slots, b"b", |i, _| {
            probes.set(probes.get() + 1);
            assert_eq!(i, 0);
            false
        });
        assert_eq!(found, None);
        assert_eq!(probes.get(), MAX_PROBE);
    }
}

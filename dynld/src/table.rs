//! Symbol tables: `Dynsym` and the verified, name-sorted [`ExportTable`].

use crate::error::{Error, NameProblem, SymName, Table};
use core::cmp::Ordering;

/// A symbol: name, address and type signature (Plan 9's `Dynsym`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dynsym<'a> {
    /// Type signature (see [`crate::sig`]); 0 = unchecked.
    pub sig: u32,
    /// Address in the current address space.
    pub addr: *const (),
    /// Linkage name.
    pub name: &'a str,
}

// SAFETY: a Dynsym is a name and an address value; dynld never dereferences
// `addr` through a Dynsym, so sharing one between threads shares only values.
unsafe impl Sync for Dynsym<'_> {}
// SAFETY: as above.
unsafe impl Send for Dynsym<'_> {}

impl<'a> Dynsym<'a> {
    /// A symbol `name` at `addr` with signature `sig`.
    pub const fn new(name: &'a str, sig: u32, addr: *const ()) -> Self {
        Dynsym { sig, addr, name }
    }
}

/// Orders names as memcmp does (Rust's `str` order is bytewise).
const fn name_cmp(a: &str, b: &str) -> Ordering {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return if a[i] < b[i] {
                Ordering::Less
            } else {
                Ordering::Greater
            };
        }
        i += 1;
    }
    if a.len() < b.len() {
        Ordering::Less
    } else if a.len() > b.len() {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// A host's export table, verified sorted by name (memcmp order) and unique.
///
/// ```
/// use dynld::{Dynsym, ExportTable, signof};
/// extern "C" fn twice(x: i32) -> i32 { 2 * x }
/// static SYMS: [Dynsym; 1] =
///     [Dynsym::new("twice", signof!("fn(int) int"), twice as *const ())];
/// // Checked when the constant is evaluated: an unsorted table does not compile.
/// static TABLE: ExportTable = ExportTable::new_const(&SYMS);
/// assert_eq!(TABLE.find("twice").map(|s| s.addr), Some(twice as *const ()));
/// ```
///
/// A table may carry a hash index over its names ([`Self::with_index`]);
/// lookups and binding then cost about one hash and one probe instead of a
/// binary search.
#[derive(Clone, Copy, Debug)]
pub struct ExportTable<'a> {
    syms: &'a [Dynsym<'a>],
    index: &'a [u64],
    descs: &'a [&'a str],
}

impl<'a> ExportTable<'a> {
    /// The empty table.
    pub const EMPTY: ExportTable<'static> = ExportTable {
        syms: &[],
        index: &[],
        descs: &[],
    };

    /// Verifies `syms` in one pass: names non-empty, without NUL, strictly
    /// increasing.
    pub fn new(syms: &'a [Dynsym<'a>]) -> Result<Self, Error> {
        for (i, s) in syms.iter().enumerate() {
            let problem = if s.name.is_empty() {
                Some(NameProblem::Empty)
            } else if s.name.as_bytes().contains(&0) {
                Some(NameProblem::Nul)
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(Error::BadName {
                    table: Table::Host,
                    index: u32::try_from(i).unwrap_or(u32::MAX),
                    problem,
                });
            }
            if i > 0 {
                match syms[i - 1].name.cmp(s.name) {
                    Ordering::Less => {}
                    Ordering::Equal => {
                        return Err(Error::Duplicate {
                            table: Table::Host,
                            name: SymName::new(s.name),
                        })
                    }
                    Ordering::Greater => {
                        return Err(Error::Unsorted {
                            table: Table::Host,
                            name: SymName::new(s.name),
                        })
                    }
                }
            }
        }
        Ok(ExportTable {
            syms,
            index: &[],
            descs: &[],
        })
    }

    /// Like [`Self::new`] but usable in constants, where a bad table is a
    /// compile-time error.
    pub const fn new_const(syms: &'a [Dynsym<'a>]) -> Self {
        let mut i = 0;
        while i < syms.len() {
            let name = syms[i].name.as_bytes();
            assert!(!name.is_empty(), "export table: empty name");
            let mut k = 0;
            while k < name.len() {
                assert!(name[k] != 0, "export table: NUL in a name");
                k += 1;
            }
            if i > 0 {
                assert!(
                    matches!(name_cmp(syms[i - 1].name, syms[i].name), Ordering::Less),
                    "export table: names not sorted and unique"
                );
            }
            i += 1;
        }
        ExportTable {
            syms,
            index: &[],
            descs: &[],
        }
    }

    /// Builds a table in caller storage from symbols in any order (the
    /// host's own exports together with a loaded module's, for a module
    /// that imports from both), sorting them in place and verifying them
    /// as [`Self::new`] does. Needs no allocator.
    ///
    /// Fails with [`Error::Memory`] if `syms` yields more symbols than
    /// `storage` holds, and with [`Error::Duplicate`] if two share a name.
    ///
    /// ```
    /// use dynld::{Dynsym, ExportTable};
    /// let host = [Dynsym::new("b", 0, core::ptr::null())];
    /// let more = [Dynsym::new("a", 0, core::ptr::null())];
    /// let mut storage = [Dynsym::new("", 0, core::ptr::null()); 4];
    /// let t = ExportTable::gather(&mut storage, host.iter().chain(&more).copied()).unwrap();
    /// assert_eq!(t.as_slice()[0].name, "a");
    /// ```
    pub fn gather<I>(storage: &'a mut [Dynsym<'a>], syms: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = Dynsym<'a>>,
    {
        let mut n = 0;
        for s in syms {
            let slot = storage.get_mut(n).ok_or(Error::Memory {
                what: "export table storage too small",
                size: 0,
            })?;
            *slot = s;
            n += 1;
        }
        let used = &mut storage[..n];
        used.sort_unstable_by(|a, b| a.name.cmp(b.name));
        Self::new(used)
    }

    /// This table with the hash index `slots` over its names, built by
    /// [`crate::index::build`] or generated by `aout exports`. The index is
    /// checked to be a power of two long with every slot naming a symbol
    /// of the table; a stale index can make names missing but never
    /// returns a wrong symbol.
    pub fn with_index(self, slots: &'a [u64]) -> Result<Self, Error> {
        crate::index::check(slots, self.syms.len()).map_err(|e| e.at(Table::Host))?;
        Ok(ExportTable {
            index: slots,
            ..self
        })
    }

    /// Like [`Self::with_index`] but usable in constants, where a bad index
    /// is a compile-time error.
    pub const fn with_index_const(self, slots: &'a [u64]) -> Self {
        assert!(
            slots.len().is_power_of_two() && slots.len() <= crate::index::MAX_SLOTS,
            "export table index: slot count not a power of two"
        );
        let mut i = 0;
        while i < slots.len() {
            assert!(
                (slots[i] & 0xffff_ffff) as usize <= self.syms.len(),
                "export table index: a slot names no symbol"
            );
            i += 1;
        }
        ExportTable {
            syms: self.syms,
            index: slots,
            descs: self.descs,
        }
    }

    /// This table with a type description (see [`crate::sig`]) for each
    /// symbol, in table order (`""` for none): a loader shows them when a
    /// module's import has another type. `aout exports` generates them.
    /// Fails if there are not as many descriptions as symbols.
    pub fn with_descs(self, descs: &'a [&'a str]) -> Result<Self, Error> {
        if descs.len() != self.syms.len() {
            return Err(Error::Limit {
                what: "type description count (one per symbol)",
                count: descs.len() as u64,
                max: self.syms.len() as u64,
            });
        }
        Ok(ExportTable {
            syms: self.syms,
            index: self.index,
            descs,
        })
    }

    /// Like [`Self::with_descs`] but usable in constants, where a wrong
    /// count is a compile-time error.
    pub const fn with_descs_const(self, descs: &'a [&'a str]) -> Self {
        assert!(
            descs.len() == self.syms.len(),
            "export table: not one type description per symbol"
        );
        ExportTable {
            syms: self.syms,
            index: self.index,
            descs,
        }
    }

    /// The type description of symbol `i`, if the table has one for it.
    pub fn desc(&self, i: usize) -> Option<&'a str> {
        self.descs.get(i).copied().filter(|d| !d.is_empty())
    }

    /// The hash index, empty if the table has none.
    pub const fn index(&self) -> &'a [u64] {
        self.index
    }

    /// The symbols, sorted.
    pub const fn as_slice(&self) -> &'a [Dynsym<'a>] {
        self.syms
    }

    /// Number of symbols.
    pub const fn len(&self) -> usize {
        self.syms.len()
    }

    /// Whether the table is empty.
    pub const fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    /// The symbol called `name`: through the index if the table has one,
    /// else by a search of the sorted table.
    #[inline]
    pub fn find(&self, name: &str) -> Option<&'a Dynsym<'a>> {
        self.position(name.as_bytes())
            .and_then(|i| self.syms.get(i))
    }

    /// The position of the symbol whose name is the bytes `name`.
    #[inline]
    pub(crate) fn position(&self, name: &[u8]) -> Option<usize> {
        let syms = self.syms;
        if self.index.is_empty() {
            return search(syms, name);
        }
        crate::index::probe(self.index, name, |i, k| {
            syms.get(i).is_some_and(|s| s.name.as_bytes() == k)
        })
    }

    /// The positions of `names` (whose [`hash`](crate::index::hash)es are
    /// `h`) through the index (which the table must have), as
    /// [`Self::position`] gives them one by one. Each step is taken for all
    /// of them before the next (the first probes, then a read of each
    /// candidate's name), and only then are names compared, so their cache
    /// misses overlap instead of queueing. With `claimed`, the hashes were
    /// read from a module, not computed, and a name they do not find is
    /// probed again under its computed hash.
    #[inline]
    pub(crate) fn positions<const K: usize>(
        &self,
        names: &[&[u8]; K],
        h: &[u64; K],
        claimed: bool,
    ) -> [Option<usize>; K] {
        let (syms, slots) = (self.syms, self.index);
        let mask = slots.len().wrapping_sub(1);
        let mut first = [0u64; K];
        for j in 0..K {
            first[j] = slots.get(h[j] as usize & mask).copied().unwrap_or(0);
        }
        let mut cand: [Option<&Dynsym<'a>>; K] = [None; K];
        let mut touch = 0u8;
        for j in 0..K {
            cand[j] = crate::index::candidate(first[j], h[j]).and_then(|i| syms.get(i));
            // Touching the names starts their cache misses together: for
            // a 64-bit host; a 32-bit target (small, in order) skips it.
            if let Some(s) = cand[j].filter(|_| cfg!(target_pointer_width = "64")) {
                let b = s.name.as_bytes();
                touch ^= b.first().copied().unwrap_or(0) ^ b.last().copied().unwrap_or(0);
            }
        }
        core::hint::black_box(touch);
        let mut out = [None; K];
        for j in 0..K {
            if names[j].is_empty() {
                continue;
            }
            let probe = |h| {
                crate::index::probe_hashed(
                    slots.len(),
                    |s| slots.get(s).copied(),
                    h,
                    names[j],
                    |i, k| syms.get(i).is_some_and(|s| s.name.as_bytes() == k),
                )
            };
            out[j] = match cand[j] {
                Some(s) if s.name.as_bytes() == names[j] => crate::index::candidate(first[j], h[j]),
                _ => probe(h[j]),
            };
            if out[j].is_none() && claimed {
                let real = crate::index::hash(names[j]);
                if real != h[j] {
                    out[j] = probe(real);
                }
            }
        }
        out
    }

    /// Finds `name` at or after index `from`, galloping: the cost grows with
    /// the log of the distance from `from`, so looking up sorted names in
    /// order is a merge (without the `index` feature, a linear scan: still
    /// a merge, in less code). Returns the index found, or where it would
    /// go.
    pub fn find_from(&self, name: &str, from: usize) -> Result<usize, usize> {
        self.find_from_bytes(name.as_bytes(), from)
    }

    /// [`Self::find_from`] for a name given as bytes. Its first check is
    /// inlined into the caller: binding a module that imports most of the
    /// table makes it for every import, and it usually succeeds.
    #[inline(always)]
    pub(crate) fn find_from_bytes(&self, name: &[u8], from: usize) -> Result<usize, usize> {
        let s = self.syms;
        // Binding a module that imports most of the table: the next name is
        // usually the very next entry.
        if s.get(from).is_some_and(|x| x.name.as_bytes() == name) {
            return Ok(from);
        }
        self.gallop(name, from)
    }

    /// [`Self::find_from_bytes`] past its first check, in the minimal
    /// build: a linear scan, which a merge of sorted imports makes
    /// O(exports + imports) over a whole module, in less code.
    #[cfg(not(feature = "index"))]
    fn gallop(&self, name: &[u8], from: usize) -> Result<usize, usize> {
        let s = self.syms;
        let mut i = from.min(s.len());
        while let Some(x) = s.get(i) {
            match x.name.as_bytes().cmp(name) {
                Ordering::Less => i += 1,
                Ordering::Equal => return Ok(i),
                Ordering::Greater => break,
            }
        }
        Err(i)
    }

    /// [`Self::find_from_bytes`] past its first check.
    #[cfg(feature = "index")]
    #[inline]
    fn gallop(&self, name: &[u8], from: usize) -> Result<usize, usize> {
        let s = self.syms;
        let mut lo = from.min(s.len());
        let mut step = 1;
        let mut hi = lo;
        let key = Key::new(name);
        // Grow [lo, hi) until s[hi - 1] >= name or the end.
        loop {
            if hi >= s.len() {
                hi = s.len();
                break;
            }
            if !key.above(s[hi].name.as_bytes()) {
                hi += 1;
                break;
            }
            lo = hi + 1;
            hi = hi.saturating_add(step);
            step = step.saturating_mul(2);
        }
        let w = &s[lo..hi];
        let i = lo + lower_bound(w.len(), |i| w[i].name.as_bytes(), &key);
        match s.get(i) {
            Some(x) if x.name.as_bytes() == key.bytes => Ok(i),
            _ => Err(i),
        }
    }
}

/// A name being searched for, with its first sixteen bytes as a
/// big-endian number: most comparisons in a sorted table are decided by it.
pub(crate) struct Key<'k> {
    bytes: &'k [u8],
    prefix: u128,
}

/// The first sixteen bytes of `b` as a big-endian number, zero-padded.
/// Names hold no NUL, so comparing these numbers orders names as memcmp
/// does whenever the numbers differ. Shared, as [`Key::above`] is, on a
/// 32-bit machine.
#[cfg_attr(
    not(all(feature = "index", not(target_pointer_width = "64"))),
    inline(always)
)]
#[cfg_attr(
    all(feature = "index", not(target_pointer_width = "64")),
    inline(never)
)]
fn prefix(b: &[u8]) -> u128 {
    let mut w = [0u8; 16];
    if let Some(head) = b.get(..16) {
        w.copy_from_slice(head);
    } else {
        w[..b.len()].copy_from_slice(b);
    }
    u128::from_be_bytes(w)
}

impl<'k> Key<'k> {
    #[inline(always)]
    pub(crate) fn new(bytes: &'k [u8]) -> Self {
        Key {
            bytes,
            prefix: if cfg!(feature = "index") {
                prefix(bytes)
            } else {
                0
            },
        }
    }

    /// Whether the key sorts after `name`. With the `index` feature, most
    /// comparisons are of the 16-byte integer prefixes; without it (the
    /// minimal build), of the bytes, in less code. Inlined, but for the
    /// prefixes on a 32-bit machine, where they take four registers each:
    /// there every search shares one copy.
    #[cfg_attr(
        not(all(feature = "index", not(target_pointer_width = "64"))),
        inline(always)
    )]
    #[cfg_attr(
        all(feature = "index", not(target_pointer_width = "64")),
        inline(never)
    )]
    pub(crate) fn above(&self, name: &[u8]) -> bool {
        if cfg!(feature = "index") {
            let p = prefix(name);
            if p != self.prefix {
                return p < self.prefix;
            }
        }
        name < self.bytes
    }
}

/// The first of `n` sorted names (`name(i)` the `i`th) that does not sort
/// before `key`, or `n`. The loop has a fixed trip count for a given `n`
/// and chooses each half without a branch, so it costs the same for every
/// key and does not stall on mispredictions.
#[inline]
pub(crate) fn lower_bound<'n>(n: usize, name: impl Fn(usize) -> &'n [u8], key: &Key<'_>) -> usize {
    if n == 0 {
        return 0;
    }
    let (mut base, mut len) = (0usize, n);
    while len > 1 {
        let half = len / 2;
        let go = usize::from(key.above(name(base + half)));
        base += half & go.wrapping_neg();
        len -= half;
    }
    base + usize::from(key.above(name(base)))
}

/// The position of `name` in a name-sorted slice ([`lower_bound`]).
#[inline]
fn search(syms: &[Dynsym<'_>], name: &[u8]) -> Option<usize> {
    let i = lower_bound(syms.len(), |i| syms[i].name.as_bytes(), &Key::new(name));
    syms.get(i)
        .is_some_and(|s| s.name.as_bytes() == name)
        .then_some(i)
}

/// The entry called `name` in a name-sorted slice.
#[inline]
pub(crate) fn find<'a, 'b>(syms: &'b [Dynsym<'a>], name: &str) -> Option<&'b Dynsym<'a>> {
    search(syms, name.as_bytes()).and_then(|i| syms.get(i))
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

    #[test]
    fn gather_sorts_and_checks() {
        let p = core::ptr::null();
        let mut st = [Dynsym::new("", 0, p); 3];
        let t = ExportTable::gather(&mut st, [Dynsym::new("c", 1, p), Dynsym::new("a", 2, p)]);
        let names: Vec<&str> = t.unwrap().as_slice().iter().map(|s| s.name).collect();
        assert_eq!(names, ["a", "c"]);
        let mut st = [Dynsym::new("", 0, p); 1];
        let e = ExportTable::gather(&mut st, [Dynsym::new("c", 1, p), Dynsym::new("a", 2, p)]);
        assert_eq!(e.unwrap_err().to_string(), "export table storage too small");
        let mut st = [Dynsym::new("", 0, p); 2];
        let e = ExportTable::gather(&mut st, [Dynsym::new("a", 1, p), Dynsym::new("a", 2, p)]);
        assert!(matches!(e, Err(Error::Duplicate { .. })));
    }

    #[test]
    fn gallop_matches_binary_search() {
        let names: Vec<String> = (0..300).map(|i| format!("s{:04}", i * 2)).collect();
        let syms: Vec<Dynsym> = names
            .iter()
            .map(|n| Dynsym::new(n, 0, core::ptr::null()))
            .collect();
        let t = ExportTable::new(&syms).unwrap();
        for from in [0, 1, 7, 150, 299, 300, 400] {
            for probe in 0..610 {
                let n = format!("s{probe:04}");
                let want = syms.binary_search_by(|x| x.name.cmp(&n));
                let got = t.find_from(&n, from);
                match want {
                    Ok(i) if i >= from => assert_eq!(got, Ok(i)),
                    Ok(_) | Err(_) => {
                        let i = want.unwrap_or_else(|e| e).max(from.min(300));
                        assert!(got == Err(i) || got == Ok(i), "{n} from {from}: {got:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn search_and_index_match_binary_search() {
        // Short names, names that are prefixes of others, and long names
        // sharing their first eight bytes.
        // Fewer under Miri, which runs this some thousand times slower.
        let count = if cfg!(miri) { 60 } else { 700 };
        let mut names: Vec<String> = (0..count)
            .map(|i| match i % 5 {
                0 => format!("{}", i % 13),
                1 => format!("_ZN4core3fmt{i}"),
                2 => format!("_ZN4core3fmt{}x", i / 2),
                3 => format!("{}{}", "y".repeat(i % 37), i % 3),
                _ => format!("a{}", "b".repeat(i % 23)),
            })
            .collect();
        names.sort();
        names.dedup();
        let syms: Vec<Dynsym> = names
            .iter()
            .map(|n| Dynsym::new(n, 0, core::ptr::null()))
            .collect();
        let mut slots = std::vec![0; crate::index::slots_for(syms.len())];
        crate::index::build(syms.len(), |i| names[i].as_bytes(), &mut slots).unwrap();
        let plain = ExportTable::new(&syms).unwrap();
        let indexed = plain.with_index(&slots).unwrap();
        for n in 0..syms.len() + 1 {
            let sub = ExportTable::new(&syms[..n]).unwrap();
            for probe in names
                .iter()
                .map(|s| s.as_str())
                .chain(["", "0", "zzz", "a", "_ZN"])
            {
                let want = syms[..n].binary_search_by(|x| x.name.cmp(probe)).ok();
                let got = sub.find(probe).map(|s| s.name);
                assert_eq!(got, want.map(|i| syms[i].name), "{probe} in {n}");
                if n == syms.len() {
                    assert_eq!(indexed.find(probe).map(|s| s.name), got, "{probe}");
                }
            }
        }
        assert!(plain.with_index(&slots[..3]).is_err());
    }

    #[test]
    fn verifies_order() {
        let a = [
            Dynsym::new("b", 0, core::ptr::null()),
            Dynsym::new("a", 0, core::ptr::null()),
        ];
        assert!(matches!(
            ExportTable::new(&a),
            Err(Error::Unsorted {
                table: Table::Host,
                ..
            })
        ));
        let d = [
            Dynsym::new("a", 0, core::ptr::null()),
            Dynsym::new("a", 0, core::ptr::null()),
        ];
        assert!(matches!(ExportTable::new(&d), Err(Error::Duplicate { .. })));
        let e = [Dynsym::new("", 0, core::ptr::null())];
        assert!(matches!(ExportTable::new(&e), Err(Error::BadName { .. })));
    }
}

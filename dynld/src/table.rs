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
#[derive(Clone, Copy, Debug)]
pub struct ExportTable<'a> {
    syms: &'a [Dynsym<'a>],
}

impl<'a> ExportTable<'a> {
    /// The empty table.
    pub const EMPTY: ExportTable<'static> = ExportTable { syms: &[] };

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
        Ok(ExportTable { syms })
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
        ExportTable { syms }
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

    /// The symbol called `name`.
    pub fn find(&self, name: &str) -> Option<&'a Dynsym<'a>> {
        find(self.syms, name)
    }

    /// Finds `name` at or after index `from`, galloping: the cost grows with
    /// the log of the distance from `from`, so looking up sorted names in
    /// order is a merge. Returns the index found, or where it would go.
    pub fn find_from(&self, name: &str, from: usize) -> Result<usize, usize> {
        let s = self.syms;
        let mut lo = from.min(s.len());
        let mut step = 1;
        let mut hi = lo;
        // Grow [lo, hi) until s[hi - 1] >= name or the end.
        loop {
            if hi >= s.len() {
                hi = s.len();
                break;
            }
            if s[hi].name >= name {
                hi += 1;
                break;
            }
            lo = hi + 1;
            hi = hi.saturating_add(step);
            step = step.saturating_mul(2);
        }
        s[lo..hi]
            .binary_search_by(|x| x.name.cmp(name))
            .map(|i| i + lo)
            .map_err(|i| i + lo)
    }
}

/// Binary search of a name-sorted slice.
pub(crate) fn find<'a, 'b>(syms: &'b [Dynsym<'a>], name: &str) -> Option<&'b Dynsym<'a>> {
    syms.binary_search_by(|s| s.name.cmp(name))
        .ok()
        .map(|i| &syms[i])
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::format;
    use std::string::String;
    use std::vec::Vec;

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

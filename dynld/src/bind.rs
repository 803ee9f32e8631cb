//! Binding a module's imports: for each, an address and who provides it.
//!
//! A [`Resolver`] answers one name at a time, with the symbol's address,
//! signature, provider and (if it has one) type description. An
//! [`ExportTable`] is a resolver too, and the loader binds against one
//! with a merge over the two sorted tables, or through the table's hash
//! index, rather than one name at a time. Either way each binding records
//! its [`Provider`], which is what a registry counts dependents by.

use crate::check::{self, BINDING_SIZE};
use crate::error::{Error, SymName};
use crate::limits::Limits;
#[cfg(feature = "atexit")]
use crate::runtime;
use crate::table::ExportTable;

/// Who provides a bound import: the host, or a module by an id the
/// resolver chose (a registry's module id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Provider(pub u32);

impl Provider {
    /// The program loading the module (its export table), and dynld itself
    /// for the few functions it supplies (see `runtime`, feature `atexit`).
    pub const HOST: Provider = Provider(0);
    /// In a lookup's error ([`Module::get`](crate::Module::get),
    /// [`Module::addr`](crate::Module::addr)): the module looked in, whose
    /// export has another type than the caller's.
    pub const MODULE: Provider = Provider(u32::MAX);
    /// A deferred import not yet bound: its address is a trap (see
    /// [`crate::trap`]) until a module providing it loads.
    pub const PENDING: Provider = Provider(u32::MAX - 1);
}

/// What a [`Resolver`] found for a name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resolution<'a> {
    /// The symbol's address.
    pub addr: *const (),
    /// Its signature (0 = unchecked).
    pub sig: u32,
    /// Who provides it.
    pub provider: Provider,
    /// Its type description, if the provider has one; shown when the
    /// importer expects another type.
    pub desc: Option<&'a str>,
}

/// Looks symbols up by name for binding imports.
pub trait Resolver {
    /// The symbol an import called `name` binds to, or `None`.
    fn resolve(&self, name: &str) -> Option<Resolution<'_>>;
}

impl<R: Resolver + ?Sized> Resolver for &R {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        (**self).resolve(name)
    }
}

impl Resolver for ExportTable<'_> {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        let i = self.position(name.as_bytes())?;
        let s = self.as_slice().get(i)?;
        Some(Resolution {
            addr: s.addr,
            sig: s.sig,
            provider: Provider::HOST,
            desc: self.desc(i),
        })
    }
}

/// Resolvers tried in order: the first that knows a name binds it.
#[derive(Clone, Copy)]
pub struct Chain<'r>(pub &'r [&'r dyn Resolver]);

impl Resolver for Chain<'_> {
    fn resolve(&self, name: &str) -> Option<Resolution<'_>> {
        self.0.iter().find_map(|r| r.resolve(name))
    }
}

/// What the loader binds against.
#[derive(Clone, Copy)]
pub(crate) enum Binder<'e> {
    /// A sorted table: merged with the imports, or probed through its index.
    Table(ExportTable<'e>),
    /// Anything else, one name at a time, by [`bind_dyn`] (a pointer to it,
    /// so that a kernel that never binds this way does not carry it).
    Dyn(&'e dyn Resolver, DynBind),
}

/// [`bind_dyn`]'s type.
pub(crate) type DynBind = fn(&dyn Resolver, &Imports<'_>, &mut [u8], usize) -> Result<(), Error>;

/// A module's imports as read: names, signatures, descriptions.
pub(crate) struct Imports<'a> {
    pub strs: &'a [u8],
    pub raw: &'a [u8],
    pub count: usize,
    pub lim: &'a Limits,
    /// The type table and the number of exports before the imports in it,
    /// and the module's name: shown in messages (with `alloc`).
    #[cfg(feature = "alloc")]
    pub types: &'a [u8],
    #[cfg(feature = "alloc")]
    pub nexport: usize,
    #[cfg(feature = "alloc")]
    pub module: Option<&'a str>,
}

impl Imports<'_> {
    /// The error for import `i`'s signature `want` against `have`
    /// (exported with description `desc`, if any).
    #[cfg_attr(not(feature = "alloc"), allow(unused_variables))]
    fn mismatch(
        &self,
        i: usize,
        name: &str,
        want: u32,
        have: u32,
        desc: Option<&str>,
        provider: Provider,
    ) -> Error {
        Error::SigMismatch {
            name: SymName::new(name),
            want,
            have,
            provider,
            #[cfg(feature = "alloc")]
            detail: crate::error::Mismatch::boxed(
                (
                    check::type_desc(self.types, self.strs, self.nexport + i),
                    want,
                ),
                (desc, have),
                self.module,
            ),
        }
    }
}

/// Writes import `i`'s binding.
#[inline(always)]
fn put(binds: &mut [u8], i: usize, addr: u64, provider: Provider) -> Result<(), Error> {
    let slot = i
        .checked_mul(BINDING_SIZE)
        .and_then(|at| binds.get_mut(at..at + BINDING_SIZE))
        .ok_or_else(|| check::bad("bindings"))?;
    slot[..8].copy_from_slice(&addr.to_ne_bytes());
    slot[8..12].copy_from_slice(&provider.0.to_ne_bytes());
    slot[12..].copy_from_slice(&[0; 4]);
    Ok(())
}

/// Import `i`'s binding: its address and provider.
pub(crate) fn get(binds: &[u8], i: usize) -> Option<(u64, Provider)> {
    let at = i.checked_mul(BINDING_SIZE)?;
    let b = binds.get(at..at.checked_add(BINDING_SIZE)?)?;
    let w = |r: core::ops::Range<usize>| b.get(r);
    Some((
        u64::from_ne_bytes(w(0..8)?.try_into().ok()?),
        Provider(u32::from_ne_bytes(w(8..12)?.try_into().ok()?)),
    ))
}

/// Binding probes the host table's index, rather than merging, when the
/// table has at least this many exports per import.
const INDEX_RATIO: usize = 4;

/// Imports looked up together through an index.
const BATCH: usize = 16;

/// Whether binding `nimport` imports against `table` goes through its
/// index (and so reads the module's stored import hashes).
pub(crate) fn by_index(table: &ExportTable<'_>, nimport: usize) -> bool {
    cfg!(feature = "index")
        && !table.index().is_empty()
        && nimport.saturating_mul(INDEX_RATIO) <= table.len()
}

/// Binds every import, writing `binds` (whose upper half holds the
/// imports' stored name hashes when `stored`).
pub(crate) fn bind(
    binder: Binder<'_>,
    imp: &Imports<'_>,
    binds: &mut [u8],
    stored: bool,
) -> Result<(), Error> {
    let skip = bind_special(imp, binds)?;
    match binder {
        Binder::Table(t) => bind_table(&t, imp, binds, stored, skip),
        Binder::Dyn(r, bind_dyn) => bind_dyn(r, imp, binds, skip),
    }
}

/// Binds the import that dynld supplies itself (the module's own exit
/// handlers, see [`crate::runtime`]), whatever the host exports under its
/// name, if the module has it; returns its index (`usize::MAX` if none).
#[cfg(feature = "atexit")]
fn bind_special(imp: &Imports<'_>, binds: &mut [u8]) -> Result<usize, Error> {
    let special = runtime::special_import(
        |i| check::import_fast(imp.strs, imp.raw, i, imp.lim.max_name).map(|b| b.0),
        imp.count,
    );
    let Some((i, f)) = special else {
        return Ok(usize::MAX);
    };
    let (_, sig) = check::import_fast(imp.strs, imp.raw, i, imp.lim.max_name)
        .ok_or_else(|| check::import_error(imp.strs, imp.raw, i, imp.lim))?;
    if sig != 0 && sig != f.sig {
        return Err(imp.mismatch(i, f.name, sig, f.sig, Some(f.desc), Provider::HOST));
    }
    put(binds, i, f.addr as usize as u64, Provider::HOST)?;
    Ok(i)
}

/// Without the `atexit` feature dynld supplies nothing: every import is
/// bound by the table or the resolver.
#[cfg(not(feature = "atexit"))]
fn bind_special(_: &Imports<'_>, _: &mut [u8]) -> Result<usize, Error> {
    Ok(usize::MAX)
}

/// Binds against a sorted table. Imports are sorted, so binding is a
/// merge, galloping over the exports between one import and the next.
/// When the imports are few against a table with a hash index, one probe
/// each is cheaper than the gallops.
fn bind_table(
    table: &ExportTable<'_>,
    imp: &Imports<'_>,
    binds: &mut [u8],
    stored: bool,
    skip: usize,
) -> Result<(), Error> {
    let by_index = by_index(table, imp.count);
    let stored = by_index && stored;
    let hashes_at = BINDING_SIZE / 2 * imp.count;
    let host = table.as_slice();
    let mut next = 0;
    let mut ahead = [None; BATCH];
    let mut sigs = [0u32; BATCH];
    let mut names: [&[u8]; BATCH] = [&[]; BATCH];
    for i in 0..imp.count {
        if by_index && i % BATCH == 0 {
            // Look the next imports up together (see `positions`); one
            // whose entry is malformed gets no name here and its error in
            // turn below. Their stored hashes are read before any of them
            // is bound over them.
            names = [&[]; BATCH];
            let mut hashes = [0u64; BATCH];
            let stored_hash = |k: usize| {
                let at = hashes_at + 8 * k;
                let w = binds.get(at..at + 8)?;
                stored.then(|| u64::from_be_bytes(w.try_into().unwrap_or_default()))
            };
            for (j, n) in names.iter_mut().enumerate().take(imp.count - i) {
                if let Some((b, s)) = check::import_fast(imp.strs, imp.raw, i + j, imp.lim.max_name)
                {
                    (*n, sigs[j]) = (b, s);
                    hashes[j] = stored_hash(i + j).unwrap_or_else(|| crate::index::hash(b));
                }
            }
            ahead = table.positions(&names, &hashes, stored);
        }
        if i == skip {
            continue;
        }
        // The batch read the entry already; an empty name there is a
        // malformed entry (a valid name is never empty).
        let entry = if by_index {
            Some((names[i % BATCH], sigs[i % BATCH])).filter(|(n, _)| !n.is_empty())
        } else {
            check::import_fast(imp.strs, imp.raw, i, imp.lim.max_name)
        };
        let Some((name, sig)) = entry else {
            return Err(check::import_error(imp.strs, imp.raw, i, imp.lim));
        };
        let at = if by_index {
            ahead[i % BATCH].filter(|&at| at >= next)
        } else {
            table.find_from_bytes(name, next).ok()
        };
        let (at, sym) = match at.and_then(|at| Some((at, host.get(at)?))) {
            Some(found) => found,
            None => return Err(check::import_error(imp.strs, imp.raw, i, imp.lim)),
        };
        next = at + 1;
        if sig != 0 && sym.sig != 0 && sig != sym.sig {
            return Err(imp.mismatch(i, sym.name, sig, sym.sig, table.desc(at), Provider::HOST));
        }
        put(binds, i, sym.addr as usize as u64, Provider::HOST)?;
    }
    Ok(())
}

/// Binds through a resolver, one name at a time; the import table's names
/// and order are checked first, as a merge would.
pub(crate) fn bind_dyn(
    r: &dyn Resolver,
    imp: &Imports<'_>,
    binds: &mut [u8],
    skip: usize,
) -> Result<(), Error> {
    for (i, e) in check::imports(imp.strs, imp.raw, imp.lim).enumerate() {
        let (name, e) = e?;
        if i == skip {
            continue;
        }
        let Some(found) = r.resolve(name) else {
            return Err(Error::Undefined {
                name: SymName::new(name),
            });
        };
        if e.sig != 0 && found.sig != 0 && e.sig != found.sig {
            return Err(imp.mismatch(i, name, e.sig, found.sig, found.desc, found.provider));
        }
        put(binds, i, found.addr as usize as u64, found.provider)?;
    }
    Ok(())
}

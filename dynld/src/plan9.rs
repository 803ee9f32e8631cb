//! The Plan 9 / Inferno names, for code ported from `dynld(10.2)`.
//!
//! These are thin wrappers over [`Loader`], [`Module`] and [`ExportTable`].
//! Differences from the original: errors are returned as typed [`Error`]
//! values (and also passed to `err`), tables are checked sorted instead of
//! assumed so, and a module's memory is given back when the [`Dynobj`] is
//! dropped.

#[cfg(feature = "alloc")]
use crate::{
    error::Error, limits::Limits, load::Loader, memory::Memory, source::FnSource,
    table::ExportTable,
};
use crate::{
    format::{Arch, Exec, DYN_MAGIC},
    module::Module,
    source::Source,
    table::Dynsym,
};

/// A loaded module, in memory from the default provider.
pub type Dynobj = Module<'static>;

/// The default memory provider: mmap with W^X on unix hosts (`std`), the
/// global allocator otherwise (`alloc`).
#[cfg(feature = "alloc")]
pub fn default_memory() -> &'static dyn Memory {
    #[cfg(all(feature = "std", unix))]
    return &crate::memory::MMAP;
    #[cfg(not(all(feature = "std", unix)))]
    return &crate::memory::HEAP;
}

/// Whether the source holds a module for this architecture. The source's
/// position is left where it was.
pub fn dynloadable<S: Source + ?Sized>(src: &mut S) -> bool {
    let Ok(start) = src.position() else {
        return false;
    };
    let mut b = [0u8; Exec::SIZE];
    let ok = src.read_exact_or(&mut b, "header").is_ok()
        && Exec::parse(&b).is_some_and(|e| {
            e.magic & DYN_MAGIC != 0
                && Arch::from_magic(e.magic).is_some_and(|a| Some(a) == Arch::HOST)
        });
    src.seek(start).is_ok() && ok
}

/// Loads a module through Plan 9-style `read` and `seek` callbacks on `file`.
///
/// `read(file, buf)` returns the bytes read or -1; `seek(file, off, whence)`
/// returns the new offset or -1. `exports` must be sorted by name (it is
/// checked); `maxsize`, if non-zero, limits the module's image size. On
/// error, `err` is called with the error, the file is put back at its
/// starting offset, and the error is returned.
#[cfg(feature = "alloc")]
pub fn dynloadgen<F: ?Sized>(
    file: &mut F,
    read: impl FnMut(&mut F, &mut [u8]) -> isize,
    seek: impl FnMut(&mut F, i64, i32) -> i64,
    err: &mut dyn FnMut(&Error),
    exports: &[Dynsym<'_>],
    maxsize: u64,
) -> Result<Dynobj, Error> {
    let mut src = FnSource { file, read, seek };
    let r = ExportTable::new(exports).and_then(|t| {
        Loader::new(t, default_memory())
            .limits(Limits {
                max_size: maxsize,
                ..Limits::DEFAULT
            })
            .load(&mut src)
    });
    if let Err(e) = &r {
        err(e);
    }
    r
}

/// Loads a module from a file (or any `Read + Seek`) at its current offset.
#[cfg(feature = "std")]
pub fn dynloadfd<T: std::io::Read + std::io::Seek>(
    fd: &mut T,
    exports: &[Dynsym<'_>],
    maxsize: u64,
) -> Result<Dynobj, Error> {
    let t = ExportTable::new(exports)?;
    Loader::new(t, default_memory())
        .limits(Limits {
            max_size: maxsize,
            ..Limits::DEFAULT
        })
        .load(&mut crate::source::IoSource(fd))
}

/// The address of export `name` of `o`, or `None` if `o` does not export it
/// or `sig` is non-zero and differs from the export's non-zero signature.
///
/// The address is a raw pointer, valid only while `o` is loaded: turning
/// it into a function pointer or a reference is the caller's `unsafe`
/// promise that the type is right and that it will not be used after
/// [`dynobjfree`]. [`Module::get`] gives a checked handle that cannot
/// outlive the module.
pub fn dynimport(o: &Module<'_>, name: &str, sig: u32) -> Option<*const ()> {
    o.addr(name, sig).ok()
}

/// The entry called `name` in the name-sorted table `syms`.
pub fn dynfindsym<'a, 'b>(name: &str, syms: &'b [Dynsym<'a>]) -> Option<&'b Dynsym<'a>> {
    crate::table::find(syms, name)
}

/// The number of entries before the first with an empty name (Plan 9's nil
/// terminator), or the whole length.
pub fn dyntabsize(t: &[Dynsym<'_>]) -> usize {
    t.iter().position(|s| s.name.is_empty()).unwrap_or(t.len())
}

/// Forgets `o`'s import bindings, giving their memory back where the
/// provider can; its exports are found as before.
pub fn dynfreeimport(o: &mut Module<'_>) {
    o.free_imports();
}

/// Unloads `o`: runs its destructors (if [`Module::init`] ran its
/// constructors) and the exit handlers its code registered, then gives
/// its memory back; the same as dropping it.
pub fn dynobjfree(o: Module<'_>) {
    drop(o);
}

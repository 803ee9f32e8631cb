//! `aout run`: load modules into this process and call a function; and
//! what `aout shell` shares with it: the host's export table, opening a
//! module, calling a function with integer arguments, flushing C stdio.

use crate::shell::AbiOffer;
use aout_tools::input::{self, Opened};
use dynld::{
    Dynsym, Escaped, ExportTable, FileSource, Loader, Module, Registry, SliceSource, Source, MMAP,
};
use object::{Object, ObjectSymbol, SymbolKind};
use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::path::{Path, PathBuf};

/// How to print the function's result.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Ret {
    /// 32-bit signed (C `int`).
    I32,
    /// 64-bit signed (C `long` on LP64).
    I64,
    /// 32-bit unsigned.
    U32,
    /// 64-bit unsigned.
    U64,
    /// Print nothing.
    Void,
}

/// Paths of the loaded shared objects whose file name starts with one of
/// `prefixes`.
fn loaded_paths(prefixes: &[&str]) -> Vec<PathBuf> {
    unsafe extern "C" fn each(
        info: *mut libc::dl_phdr_info,
        _size: libc::size_t,
        data: *mut libc::c_void,
    ) -> libc::c_int {
        // SAFETY: dl_iterate_phdr passes a valid info record, and `data` is
        // the Vec passed below, alive for the whole iteration.
        unsafe {
            let out = &mut *(data as *mut Vec<PathBuf>);
            let name = (*info).dlpi_name;
            if !name.is_null() {
                let s = CStr::from_ptr(name).to_string_lossy().into_owned();
                if !s.is_empty() {
                    out.push(PathBuf::from(s));
                }
            }
        }
        0
    }
    let mut all: Vec<PathBuf> = Vec::new();
    // SAFETY: the callback only reads the records it is given and writes
    // into `all`, which outlives the call.
    unsafe { libc::dl_iterate_phdr(Some(each), &mut all as *mut _ as *mut libc::c_void) };
    all.into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|f| f.to_str())
                .is_some_and(|f| prefixes.iter().any(|x| f.starts_with(x)))
        })
        .collect()
}

/// The host table: every defined dynamic symbol of the C and math
/// libraries, at the address the dynamic linker gives it, signature 0.
fn libc_exports() -> Result<BTreeMap<String, usize>, String> {
    for lib in ["libm.so.6", "libc.so.6"] {
        let c = CString::new(lib).map_err(|e| e.to_string())?;
        // SAFETY: dlopen of a system library the process already links or
        // that is safe to load; the handle is never closed.
        let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
        if h.is_null() {
            return Err(format!("cannot open {lib}"));
        }
    }
    let mut out = BTreeMap::new();
    for path in loaded_paths(&["libc.so", "libm.so"]) {
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file = object::File::parse(&*bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        for s in file.dynamic_symbols() {
            if s.is_undefined()
                || s.is_local()
                || !matches!(s.kind(), SymbolKind::Text | SymbolKind::Data)
            {
                continue;
            }
            let Ok(name) = s.name() else { continue };
            if name.is_empty() || out.contains_key(name) {
                continue;
            }
            let Ok(c) = CString::new(name) else { continue };
            // SAFETY: dlsym only looks the name up.
            let addr = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c.as_ptr()) };
            if !addr.is_null() {
                out.insert(name.to_owned(), addr as usize);
            }
        }
    }
    if out.is_empty() {
        return Err("found no C library symbols".into());
    }
    Ok(out)
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

/// A host export: signature, address, and type description (`""` for none).
type HostSym = (u32, usize, &'static str);

/// The C and math libraries' exports (see [`libc_exports`]), signature 0
/// and no description each.
pub fn host_exports() -> Result<BTreeMap<String, HostSym>, String> {
    Ok(libc_exports()?
        .into_iter()
        .map(|(n, a)| (n, (0, a, "")))
        .collect())
}

/// A host export table's storage: the symbols sorted by name, their
/// descriptions, and a hash index over the names if one could be built.
pub struct HostTable {
    syms: Vec<Dynsym<'static>>,
    descs: Vec<&'static str>,
    slots: Option<Vec<u64>>,
}

impl HostTable {
    /// The table of `map`'s symbols.
    pub fn new(map: &BTreeMap<String, HostSym>) -> HostTable {
        let (syms, descs): (Vec<_>, Vec<_>) = map
            .iter()
            .map(|(n, (sig, a, d))| (Dynsym::new(leak(n), *sig, *a as *const ()), *d))
            .unzip();
        // With a hash index, as `aout exports` generates for a kernel's
        // table: a module's few imports are found with a probe each, not a
        // merge over the C library's thousands of names. Should the names
        // crowd the index (they do not in practice), the plain table binds
        // the same.
        let slots = dynld::index::build_vec(syms.len(), |i| syms[i].name.as_bytes()).ok();
        HostTable { syms, descs, slots }
    }

    /// The export table over this storage.
    pub fn table(&self) -> Result<ExportTable<'_>, String> {
        let t = ExportTable::new(&self.syms)
            .and_then(|t| t.with_descs(&self.descs))
            .map_err(|e| e.to_string())?;
        match &self.slots {
            Some(s) => t.with_index(s).map_err(|e| e.to_string()),
            None => Ok(t),
        }
    }
}

/// Opens the module at `path` and calls `f` with a source over it: a
/// regular file is read through FileSource, which maps a page-aligned
/// text; a pipe or device was read whole, within input::MAX_STREAM.
pub fn with_source<R>(path: &Path, f: impl FnOnce(&mut dyn Source) -> R) -> Result<R, String> {
    match input::open(path)? {
        Opened::File(file) => {
            let mut src = FileSource::new(file).map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(f(&mut src))
        }
        Opened::Bytes(bytes) => Ok(f(&mut SliceSource::new(&bytes))),
    }
}

/// A load error of the module called `name`, named as `aout` reports it.
pub fn load_error(name: &str, e: dynld::Error) -> String {
    match e {
        // The message names the module already.
        dynld::Error::SigMismatch { .. } => e.to_string(),
        _ => format!("{name}: {e}"),
    }
}

/// A module loaded alone, made known to gdb (as a registry's are) until
/// it is dropped.
struct Known {
    /// Dropped first, so that its destructors run while gdb knows it.
    m: Module<'static>,
    /// Then it is unknown to gdb (whose file is not in the module's
    /// memory).
    _gdb: dynld::gdb::Registration,
}

impl std::ops::Deref for Known {
    type Target = Module<'static>;
    fn deref(&self) -> &Module<'static> {
        &self.m
    }
}

fn load(path: &Path, host: &HostTable) -> Result<Known, String> {
    let t = host.table()?;
    let name = path.display().to_string();
    let mut m = with_source(path, |src| Loader::new(t, &MMAP).name(&name).load(src))?
        .map_err(|e| load_error(&name, e))?;
    // Known to gdb before its constructors run.
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("module");
    let gdb = dynld::gdb::Registration::new(&m, stem);
    m.init();
    Ok(Known { m, _gdb: gdb })
}

/// The address of `m`'s export `function`, to call: refused (with a
/// message that does not name the module) if it is not in the text, as
/// jumping into data or bss would crash.
pub fn function_addr(m: &Module<'_>, function: &str) -> Result<*const (), String> {
    let addr = m.addr(function, 0).map_err(|e| e.to_string())?;
    let offset = (addr as usize).wrapping_sub(m.base() as usize);
    if offset >= m.text_size() {
        let kind = if offset < m.data_offset() + m.data_size() {
            "data"
        } else {
            "bss"
        };
        return Err(format!(
            "{} is in the {kind}, not the text: not a function to call",
            Escaped::new(function)
        ));
    }
    Ok(addr)
}

/// The most integer arguments [`call`] passes.
pub const MAX_ARGS: usize = 6;

/// Calls the function at `addr` with `args` (at most [`MAX_ARGS`]) in
/// integer registers, flushes what the C library buffered, and returns the
/// 64-bit return register.
///
/// # Safety
///
/// `addr` must be a function in a module's text (see [`function_addr`])
/// that stays loaded during the call and takes up to six integer
/// arguments; passing unused ones in registers is harmless in the C
/// calling convention. What the function does is up to the module.
pub unsafe fn call(addr: *const (), args: &[i64]) -> Result<i64, String> {
    if args.len() > MAX_ARGS {
        return Err("at most six arguments".into());
    }
    let mut a = [0i64; MAX_ARGS];
    a[..args.len()].copy_from_slice(args);
    // SAFETY: the caller vouches for `addr` as said above.
    let f: extern "C" fn(i64, i64, i64, i64, i64, i64) -> i64 =
        unsafe { std::mem::transmute(addr) };
    let r = f(a[0], a[1], a[2], a[3], a[4], a[5]);
    flush_c();
    Ok(r)
}

/// Flushes the C library's output buffers, so that what modules printed
/// with stdio comes out before what aout prints next.
pub fn flush_c() {
    // SAFETY: fflush(NULL) flushes every open output stream.
    unsafe { libc::fflush(std::ptr::null_mut()) };
}

impl Ret {
    /// The return register `r` as this type says, `None` for void.
    pub fn format(self, r: i64) -> Option<String> {
        match self {
            Ret::I32 => Some((r as i32).to_string()),
            Ret::I64 => Some(r.to_string()),
            Ret::U32 => Some((r as u32).to_string()),
            Ret::U64 => Some((r as u64).to_string()),
            Ret::Void => None,
        }
    }
}

/// Loads `deps` then `module`, runs their constructors, calls `function`
/// with `args`, and gives `then` its result formatted as `ret` says; then
/// unloads the modules, the one called first, so that their destructors
/// and exit handlers run (as a process's do at exit) after `then`, and
/// flushes what they print. Returns what `then` returned.
///
/// Without `path` and `abis` (`registry`), `module` is loaded alone,
/// bound against the host and `deps`'s exports. With either, it is loaded
/// through a registry that finds modules as `DIR/NAME.dl` in `path`'s
/// directories (searched in order) and offers `abis`: the modules its
/// metadata declares as dependencies are loaded first (theirs before
/// them), its ABI requirements are checked, its setup function runs after
/// its constructors, and at the end the registry unloads it before its
/// dependencies.
pub fn run<R>(
    module: &Path,
    function: &str,
    args: &[i64],
    deps: &[PathBuf],
    registry: (&[PathBuf], &[AbiOffer]),
    ret: Ret,
    then: impl FnOnce(Option<String>) -> R,
) -> Result<R, String> {
    if args.len() > MAX_ARGS {
        return Err("at most six arguments".into());
    }
    let (path, abis) = registry;
    let search = (!path.is_empty() || !abis.is_empty())
        .then(|| crate::shell::search_path(path))
        .transpose()?;
    let abis: Vec<dynld::Abi<'_>> = abis.iter().map(AbiOffer::abi).collect();
    let mut map = host_exports()?;
    // In unload order, the last loaded first, so that dropping it on an
    // error unloads them as at the end.
    let mut keep = Vec::new();
    for d in deps {
        let m = load(d, &HostTable::new(&map))?;
        for (i, s) in m.exports().enumerate() {
            let desc = m.export_desc(i).map_or("", leak);
            map.insert(s.name.to_owned(), (s.sig, s.addr as usize, desc));
        }
        keep.insert(0, m);
    }
    let host = HostTable::new(&map);
    let r = match &search {
        None => {
            let m = load(module, &host)?;
            let r = call_in(&m, module, function, args)?;
            let r = then(ret.format(r));
            drop(m);
            r
        }
        Some(search) => {
            let reg = Registry::growable(host.table()?, &MMAP)
                .with_finder(search)
                .with_abis(&abis);
            let shown = module.display().to_string();
            let name = module
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| format!("{shown}: no file name to name the module by"))?;
            let m = with_source(module, |src| reg.load(name, src))?
                .map_err(|e| load_error(&shown, e))?;
            let r = call_in(&m, module, function, args)?;
            let r = then(ret.format(r));
            // The module, then its dependencies.
            drop(m);
            drop(reg);
            r
        }
    };
    flush_c();
    for m in keep {
        drop(m);
    }
    flush_c();
    Ok(r)
}

/// Calls `m`'s export `function` (`m` loaded from `path`) with `args`.
fn call_in(m: &Module<'_>, path: &Path, function: &str, args: &[i64]) -> Result<i64, String> {
    let addr = function_addr(m, function).map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: the user names a function in the module's text taking up to
    // six integer arguments; the module stays loaded until after the call.
    unsafe { call(addr, args) }
}

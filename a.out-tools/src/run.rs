//! `aout run`: load modules into this process and call a function.

use aout_tools::input::{self, Opened};
use dynld::{Dynsym, Escaped, ExportTable, FileSource, Loader, Module, SliceSource, Source, MMAP};
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

fn table(map: &BTreeMap<String, HostSym>) -> (Vec<Dynsym<'static>>, Vec<&'static str>) {
    map.iter()
        .map(|(n, (sig, a, d))| (Dynsym::new(leak(n), *sig, *a as *const ()), *d))
        .unzip()
}

fn load(
    path: &Path,
    (syms, descs): &(Vec<Dynsym<'static>>, Vec<&'static str>),
) -> Result<Module<'static>, String> {
    // A regular file is read through FileSource, which maps a page-aligned
    // text; a pipe or device was read whole, within input::MAX_STREAM.
    let opened = input::open(path)?;
    let (mut file, bytes, mut slice);
    let src: &mut dyn Source = match opened {
        Opened::File(f) => {
            file = FileSource::new(f).map_err(|e| format!("{}: {e}", path.display()))?;
            &mut file
        }
        Opened::Bytes(b) => {
            bytes = b;
            slice = SliceSource::new(&bytes);
            &mut slice
        }
    };
    // With a hash index, as `aout exports` generates for a kernel's table:
    // a module's few imports are found with a probe each, not a merge over
    // the C library's thousands of names. Should the names crowd the index
    // (they do not in practice), the plain table binds the same.
    let slots = dynld::index::build_vec(syms.len(), |i| syms[i].name.as_bytes()).ok();
    let t = ExportTable::new(syms)
        .and_then(|t| t.with_descs(descs))
        .map_err(|e| e.to_string())?;
    let t = match &slots {
        Some(s) => t.with_index(s).map_err(|e| e.to_string())?,
        None => t,
    };
    let name = path.display().to_string();
    let mut m = Loader::new(t, &MMAP)
        .name(&name)
        .load(src)
        .map_err(|e| match e {
            // The message names the module already.
            dynld::Error::SigMismatch { .. } => e.to_string(),
            _ => format!("{name}: {e}"),
        })?;
    m.init();
    Ok(m)
}

/// What `aout run` did: the function's result, formatted, and the modules
/// still loaded.
pub struct Ran {
    /// The result as `--ret` asks, if any.
    pub result: Option<String>,
    /// The module, then the ones it was linked against, in unload order.
    modules: Vec<Module<'static>>,
}

impl Ran {
    /// Unloads the modules, the one called first: their destructors and
    /// exit handlers run, as a process's do at exit, and what they print
    /// is flushed.
    pub fn unload(self) {
        for m in self.modules {
            drop(m);
        }
        // SAFETY: flushes the C library's output buffers.
        unsafe { libc::fflush(std::ptr::null_mut()) };
    }
}

/// Loads `deps` then `module`, runs their constructors, calls `function`
/// with `args`; returns its result formatted as `ret` says, with the
/// modules (see [`Ran::unload`]).
pub fn run(
    module: &Path,
    function: &str,
    args: &[i64],
    deps: &[PathBuf],
    ret: Ret,
) -> Result<Ran, String> {
    if args.len() > 6 {
        return Err("at most six arguments".into());
    }
    let mut map: BTreeMap<String, HostSym> = libc_exports()?
        .into_iter()
        .map(|(n, a)| (n, (0, a, "")))
        .collect();
    // In unload order, the last loaded first, so that dropping it on an
    // error unloads them as `Ran::unload` does.
    let mut keep = Vec::new();
    for d in deps {
        let m = load(d, &table(&map))?;
        for (i, s) in m.exports().enumerate() {
            let desc = m.export_desc(i).map_or("", leak);
            map.insert(s.name.to_owned(), (s.sig, s.addr as usize, desc));
        }
        keep.insert(0, m);
    }
    let m = load(module, &table(&map))?;
    let addr = m
        .addr(function, 0)
        .map_err(|e| format!("{}: {e}", module.display()))?;
    // Only the text holds code: jumping into data or bss would crash.
    let offset = (addr as usize).wrapping_sub(m.base() as usize);
    if offset >= m.text_size() {
        let kind = if offset < m.data_offset() + m.data_size() {
            "data"
        } else {
            "bss"
        };
        return Err(format!(
            "{}: {} is in the {kind}, not the text: not a function to call",
            module.display(),
            Escaped::new(function)
        ));
    }
    let mut a = [0i64; 6];
    a[..args.len()].copy_from_slice(args);
    // SAFETY: the user names a function taking up to six integer arguments;
    // passing unused ones in registers is harmless in the C calling
    // convention.
    let f: extern "C" fn(i64, i64, i64, i64, i64, i64) -> i64 =
        unsafe { std::mem::transmute(addr) };
    let r = f(a[0], a[1], a[2], a[3], a[4], a[5]);
    // SAFETY: flushes the C library's output buffers.
    unsafe { libc::fflush(std::ptr::null_mut()) };
    let result = match ret {
        Ret::I32 => Some((r as i32).to_string()),
        Ret::I64 => Some(r.to_string()),
        Ret::U32 => Some((r as u32).to_string()),
        Ret::U64 => Some((r as u64).to_string()),
        Ret::Void => None,
    };
    keep.insert(0, m);
    Ok(Ran {
        result,
        modules: keep,
    })
}

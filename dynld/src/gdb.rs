//! Loaded modules made known to `gdb` through its JIT interface, with no
//! command from the user: a debugger attached to (or running) the program
//! names module functions in backtraces, and a breakpoint on a module
//! function by name, set pending before the module loads, takes effect
//! when it loads (feature `gdb`, on unix; default).
//!
//! The program defines gdb's two well-known symbols,
//! `__jit_debug_descriptor` (the version 1 descriptor: a list of
//! in-memory object files) and `__jit_debug_register_code` (a function
//! gdb puts a breakpoint on, called after each change of the list). Each
//! [`Registration`] adds to the list a small ELF file, built from the
//! module at its loaded addresses: a `.text` and a `.data` section without
//! contents (`SHT_NOBITS`) at the module's text and data, and a symbol
//! table naming the module's functions and data objects there — every
//! one the module's symbols table lists (local ones too, with their
//! sizes), or its exports when it has no such table; and, when the module
//! carries one (`aout link --unwind`), its `.eh_frame` at the place it was
//! linked for, so that gdb unwinds through module frames; and, when it
//! names its debug file (`aout link --debug FILE`), a `.gnu_debuglink`
//! naming it, from which gdb reads the module's file and line information
//! by itself. Dropping the
//! registration takes the file out of the list again.
//!
//! A [`Registry`](crate::Registry) registers each module it loads after
//! relocating and binding it and before its constructors run (so a
//! breakpoint in a constructor or setup function hits), and unregisters it
//! after its destructors, before its memory goes back. A program loading
//! modules with a [`Loader`](crate::Loader) alone registers them itself
//! with [`Registration::new`].
//!
//! Another JIT in the same program (LLVM's, a WebAssembly runtime's)
//! defines the same two symbols: such a program links only with this
//! feature off.

use core::cell::UnsafeCell;
use std::boxed::Box;
use std::sync::Mutex;
use std::vec::Vec;

use crate::format::Arch;
use crate::module::Module;

/// An entry of gdb's list (`struct jit_code_entry`).
#[repr(C)]
struct CodeEntry {
    next: *mut CodeEntry,
    prev: *mut CodeEntry,
    symfile_addr: *const u8,
    symfile_size: u64,
}

/// gdb's descriptor (`struct jit_descriptor`, version 1).
#[repr(C)]
struct Descriptor {
    version: u32,
    action_flag: u32,
    relevant_entry: *mut CodeEntry,
    first_entry: *mut CodeEntry,
}

/// `jit_actions_t`.
const JIT_REGISTER_FN: u32 = 1;
const JIT_UNREGISTER_FN: u32 = 2;

/// The descriptor, written only under [`LIST`]'s lock and read by the
/// debugger while the program is stopped.
#[repr(transparent)]
#[doc(hidden)]
pub struct DescriptorCell(UnsafeCell<Descriptor>);

// SAFETY: the descriptor is written only with `LIST` locked; the debugger
// reads it only while the program is stopped.
unsafe impl Sync for DescriptorCell {}

/// gdb's JIT descriptor, by the name gdb looks for.
#[no_mangle]
#[doc(hidden)]
pub static __jit_debug_descriptor: DescriptorCell = DescriptorCell(UnsafeCell::new(Descriptor {
    version: 1,
    action_flag: 0,
    relevant_entry: core::ptr::null_mut(),
    first_entry: core::ptr::null_mut(),
}));

/// The function gdb puts its breakpoint on: called after each change of
/// the list, with the descriptor saying what changed.
#[no_mangle]
#[inline(never)]
#[doc(hidden)]
pub extern "C" fn __jit_debug_register_code() {
    // A side effect the optimizer keeps, so the call is never dropped.
    // SAFETY: reading a field of the descriptor, which lives for ever;
    // callers hold `LIST`'s lock.
    unsafe {
        core::ptr::read_volatile(&raw const (*__jit_debug_descriptor.0.get()).action_flag);
    }
}

/// A registered file: its entry and bytes, each from `Box::into_raw`.
struct Listed {
    key: u64,
    entry: *mut CodeEntry,
    file: *mut [u8],
}

// SAFETY: the pointers are owned by the list, used only under its lock.
unsafe impl Send for Listed {}

/// The registered files, and the next key.
static LIST: Mutex<(Vec<Listed>, u64)> = Mutex::new((Vec::new(), 1));

/// A module made known to gdb (see the [module](self) documentation):
/// dropping it makes the module unknown again.
#[derive(Debug)]
pub struct Registration {
    key: u64,
}

impl Registration {
    /// Registers `module`, loaded under `name`, with gdb: an ELF file
    /// naming its symbols at their addresses, added to gdb's list (gdb, if
    /// attached, reads it at once). Drop the registration before the
    /// module.
    pub fn new(module: &Module<'_>, name: &str) -> Self {
        Self::of_file(elf(module, name))
    }

    /// Adds `file` to gdb's list.
    fn of_file(file: Vec<u8>) -> Self {
        let size = file.len() as u64;
        let file = Box::into_raw(file.into_boxed_slice());
        let entry = Box::into_raw(Box::new(CodeEntry {
            next: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
            symfile_addr: file as *const u8,
            symfile_size: size,
        }));
        let mut list = LIST.lock().unwrap_or_else(|e| e.into_inner());
        let key = list.1;
        list.1 += 1;
        // SAFETY: the list's lock is held; `entry` is fresh and every
        // entry linked is live (unlinked before it is freed).
        unsafe {
            let d = __jit_debug_descriptor.0.get();
            (*entry).next = (*d).first_entry;
            if let Some(first) = (*d).first_entry.as_mut() {
                first.prev = entry;
            }
            (*d).first_entry = entry;
            (*d).relevant_entry = entry;
            (*d).action_flag = JIT_REGISTER_FN;
        }
        __jit_debug_register_code();
        list.0.push(Listed { key, entry, file });
        Registration { key }
    }

    /// How many files are registered (in this process).
    pub fn count() -> usize {
        LIST.lock().unwrap_or_else(|e| e.into_inner()).0.len()
    }

    /// Calls `f` with each registered file, oldest first, as gdb reads
    /// them. `f` must not register or unregister.
    pub fn each_file(mut f: impl FnMut(&[u8])) {
        let list = LIST.lock().unwrap_or_else(|e| e.into_inner());
        for l in &list.0 {
            // SAFETY: the file is live while listed, and the lock is held.
            f(unsafe { &*l.file });
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut list = LIST.lock().unwrap_or_else(|e| e.into_inner());
        let Some(at) = list.0.iter().position(|l| l.key == self.key) else {
            return;
        };
        let l = list.0.swap_remove(at);
        // SAFETY: the list's lock is held; `l.entry` is linked, and its
        // neighbours are live entries.
        unsafe {
            let d = __jit_debug_descriptor.0.get();
            let (prev, next) = ((*l.entry).prev, (*l.entry).next);
            match prev.as_mut() {
                Some(p) => p.next = next,
                None => (*d).first_entry = next,
            }
            if let Some(n) = next.as_mut() {
                n.prev = prev;
            }
            (*d).relevant_entry = l.entry;
            (*d).action_flag = JIT_UNREGISTER_FN;
        }
        __jit_debug_register_code();
        // SAFETY: unlinked, and gdb has been told: nothing refers to them.
        unsafe {
            (*__jit_debug_descriptor.0.get()).relevant_entry = core::ptr::null_mut();
            drop(Box::from_raw(l.entry));
            drop(Box::from_raw(l.file));
        }
    }
}

/// One symbol of the file: its name, image offset, size, whether global.
struct Sym<'n> {
    name: &'n str,
    value: usize,
    size: usize,
    global: bool,
}

/// The symbols of `m` for the file: its symbols table, or its exports
/// (each extending to the next, or its section's end) without one.
fn symbols<'m>(m: &'m Module<'_>) -> Vec<Sym<'m>> {
    if m.has_symbols() {
        return m
            .symbols()
            .map(|s| Sym {
                name: s.name,
                value: s.value as usize,
                size: s.size as usize,
                global: s.exported,
            })
            .collect();
    }
    let base = m.base() as usize;
    let mut v: Vec<Sym<'m>> = m
        .exports()
        .filter_map(|s| {
            let value = (s.addr as usize).checked_sub(base)?;
            // (The Thumb bit of an ARM function's address.)
            let value = if m.arch() == Arch::Arm && value < m.text_size() {
                value & !1
            } else {
                value
            };
            Some(Sym {
                name: s.name,
                value,
                size: 0,
                global: true,
            })
        })
        .collect();
    v.sort_by_key(|s| s.value);
    for i in 0..v.len() {
        let end = if v[i].value < m.text_size() {
            m.text_size()
        } else {
            m.image_size()
        };
        let next = v.get(i + 1).map_or(end, |n| n.value.min(end));
        v[i].size = next.saturating_sub(v[i].value);
    }
    v
}

/// Little-endian ELF writer for one class.
struct Out {
    b: Vec<u8>,
    wide: bool,
}

impl Out {
    fn u8(&mut self, v: u8) {
        self.b.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.b.extend_from_slice(&v.to_le_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.b.extend_from_slice(&v.to_le_bytes());
    }
    /// An address or size: 8 bytes in ELF64, 4 in ELF32.
    fn word(&mut self, v: u64) {
        if self.wide {
            self.b.extend_from_slice(&v.to_le_bytes());
        } else {
            self.b.extend_from_slice(&(v as u32).to_le_bytes());
        }
    }
    fn align(&mut self, a: usize) {
        while self.b.len() % a != 0 {
            self.b.push(0);
        }
    }
}

/// A string table under construction.
struct Strtab(Vec<u8>);

impl Strtab {
    fn add(&mut self, s: &str) -> u32 {
        let at = self.0.len() as u32;
        self.0.extend_from_slice(s.as_bytes());
        self.0.push(0);
        at
    }
}

/// A section header's fields.
struct Shdr {
    name: u32,
    kind: u32,
    flags: u64,
    addr: u64,
    offset: u64,
    size: u64,
    link: u32,
    info: u32,
    align: u64,
    entsize: u64,
}

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_NOBITS: u32 = 8;
const SHF_WRITE: u64 = 1;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;
const STT_OBJECT: u8 = 1;
const STT_FUNC: u8 = 2;
const STT_FILE: u8 = 4;
const STB_GLOBAL: u8 = 1;
const SHN_ABS: u16 = 0xfff1;

/// The ELF file gdb is given for `m`, loaded under `name` (see the
/// [module](self) documentation): an executable (`ET_EXEC`) of `m`'s
/// machine, its symbols at absolute addresses.
pub(crate) fn elf(m: &Module<'_>, name: &str) -> Vec<u8> {
    let wide = matches!(m.arch(), Arch::Amd64 | Arch::Arm64 | Arch::Riscv64);
    let base = m.base() as u64;
    let (text, dataoff, image) = (
        m.text_size() as u64,
        m.data_offset() as u64,
        m.image_size() as u64,
    );
    let mut syms = symbols(m);
    // Locals first, as ELF has it.
    syms.sort_by_key(|s| s.global);
    let mut strs = Strtab(std::vec![0]);
    let mut shstrs = Strtab(std::vec![0]);
    let (n_text, n_data, n_symtab, n_strtab, n_shstrtab) = (
        shstrs.add(".text"),
        shstrs.add(".data"),
        shstrs.add(".symtab"),
        shstrs.add(".strtab"),
        shstrs.add(".shstrtab"),
    );
    let n_eh = shstrs.add(".eh_frame");
    let n_link = shstrs.add(".gnu_debuglink");
    let mut o = Out {
        b: Vec::new(),
        wide,
    };
    let (ehsize, shsize, symsize) = if wide { (64, 64, 24) } else { (52, 40, 16) };
    o.b.resize(ehsize, 0);
    // The symbol table: the null symbol, the module's name as the file,
    // then the module's symbols.
    o.align(8);
    let symoff = o.b.len();
    let sym = |o: &mut Out, name: u32, info: u8, shndx: u16, value: u64, size: u64| {
        o.u32(name);
        if o.wide {
            o.u8(info);
            o.u8(0);
            o.u16(shndx);
            o.word(value);
            o.word(size);
        } else {
            o.word(value);
            o.word(size);
            o.u8(info);
            o.u8(0);
            o.u16(shndx);
        }
    };
    sym(&mut o, 0, 0, 0, 0, 0);
    let file = strs.add(name);
    sym(&mut o, file, STT_FILE, SHN_ABS, 0, 0);
    let mut first_global = 2 + syms.len();
    for (i, s) in syms.iter().enumerate() {
        let v = s.value as u64;
        let (kind, shndx) = if v < text {
            (STT_FUNC, 1)
        } else if v >= dataoff && v < image {
            (STT_OBJECT, 2)
        } else {
            (STT_OBJECT, SHN_ABS)
        };
        if s.global && first_global == 2 + syms.len() {
            first_global = 2 + i;
        }
        let bind = if s.global { STB_GLOBAL << 4 } else { 0 };
        let n = strs.add(s.name);
        sym(&mut o, n, bind | kind, shndx, base + v, s.size as u64);
    }
    let symlen = o.b.len() - symoff;
    let stroff = o.b.len();
    o.b.extend_from_slice(&strs.0);
    let shstroff = o.b.len();
    o.b.extend_from_slice(&shstrs.0);
    o.align(8);
    let unwind = m.unwind().filter(|(_, b)| !b.is_empty());
    let ehoff = o.b.len();
    if let Some((_, bytes)) = unwind {
        o.b.extend_from_slice(bytes);
        o.align(8);
    }
    // The debug file, as gdb's `.gnu_debuglink` names one: the path, a
    // NUL, padding to 4 bytes, the CRC-32.
    let link = m.debuglink();
    let linkoff = o.b.len();
    if let Some((crc, path)) = link {
        o.b.extend_from_slice(path.as_bytes());
        o.b.push(0);
        o.align(4);
        o.u32(crc);
        o.align(8);
    }
    let linklen = o.b.len() - linkoff;
    let shoff = o.b.len();
    let mut shdrs = std::vec![
        Shdr {
            name: 0,
            kind: 0,
            flags: 0,
            addr: 0,
            offset: 0,
            size: 0,
            link: 0,
            info: 0,
            align: 0,
            entsize: 0,
        },
        Shdr {
            name: n_text,
            kind: SHT_NOBITS,
            flags: SHF_ALLOC | SHF_EXECINSTR,
            addr: base,
            offset: ehsize as u64,
            size: text,
            link: 0,
            info: 0,
            align: 16,
            entsize: 0,
        },
        Shdr {
            name: n_data,
            kind: SHT_NOBITS,
            flags: SHF_ALLOC | SHF_WRITE,
            addr: base + dataoff,
            offset: ehsize as u64,
            size: image.saturating_sub(dataoff),
            link: 0,
            info: 0,
            align: 8,
            entsize: 0,
        },
        Shdr {
            name: n_symtab,
            kind: SHT_SYMTAB,
            flags: 0,
            addr: 0,
            offset: symoff as u64,
            size: symlen as u64,
            link: 4,
            info: first_global as u32,
            align: 8,
            entsize: symsize,
        },
        Shdr {
            name: n_strtab,
            kind: SHT_STRTAB,
            flags: 0,
            addr: 0,
            offset: stroff as u64,
            size: strs.0.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
        Shdr {
            name: n_shstrtab,
            kind: SHT_STRTAB,
            flags: 0,
            addr: 0,
            offset: shstroff as u64,
            size: shstrs.0.len() as u64,
            link: 0,
            info: 0,
            align: 1,
            entsize: 0,
        },
    ];
    // The unwind information, where it was linked to lie.
    if let Some((at, bytes)) = unwind {
        shdrs.push(Shdr {
            name: n_eh,
            kind: SHT_PROGBITS,
            flags: SHF_ALLOC,
            addr: base + at as u64,
            offset: ehoff as u64,
            size: bytes.len() as u64,
            link: 0,
            info: 0,
            align: 8,
            entsize: 0,
        });
    }
    if link.is_some() {
        shdrs.push(Shdr {
            name: n_link,
            kind: SHT_PROGBITS,
            flags: 0,
            addr: 0,
            offset: linkoff as u64,
            size: linklen as u64,
            link: 0,
            info: 0,
            align: 4,
            entsize: 0,
        });
    }
    for s in &shdrs {
        o.u32(s.name);
        o.u32(s.kind);
        o.word(s.flags);
        o.word(s.addr);
        o.word(s.offset);
        o.word(s.size);
        o.u32(s.link);
        o.u32(s.info);
        o.word(s.align);
        o.word(s.entsize);
    }
    // The header, now that the offsets are known.
    let mut h = Out {
        b: Vec::new(),
        wide,
    };
    h.b.extend_from_slice(b"\x7fELF");
    h.u8(if wide { 2 } else { 1 }); // ELFCLASS64 / ELFCLASS32
    h.u8(1); // ELFDATA2LSB
    h.u8(1); // EV_CURRENT
    h.b.resize(16, 0);
    h.u16(2); // ET_EXEC
    h.u16(m.arch().elf_machine());
    h.u32(1);
    h.word(0); // e_entry
    h.word(0); // e_phoff
    h.word(shoff as u64);
    // ARM: EABI version 5; others none.
    h.u32(if m.arch() == Arch::Arm {
        0x0500_0000
    } else {
        0
    });
    h.u16(ehsize as u16);
    h.u16(0); // e_phentsize
    h.u16(0); // e_phnum
    h.u16(shsize as u16);
    h.u16(shdrs.len() as u16);
    h.u16(5); // e_shstrndx
    o.b[..ehsize].copy_from_slice(&h.b);
    o.b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_links_and_unlinks() {
        let d = __jit_debug_descriptor.0.get();
        let before = Registration::count();
        let a = Registration::of_file(b"a".to_vec());
        let b = Registration::of_file(b"bb".to_vec());
        let c = Registration::of_file(b"ccc".to_vec());
        assert_eq!(Registration::count(), before + 3);
        let sizes = || {
            let _g = LIST.lock().unwrap();
            let mut v = Vec::new();
            // SAFETY: the lock is held; the entries are live.
            unsafe {
                let mut e = (*d).first_entry;
                while let Some(x) = e.as_ref() {
                    v.push(x.symfile_size);
                    if let Some(n) = x.next.as_ref() {
                        assert_eq!(n.prev, e);
                    }
                    e = x.next;
                }
            }
            v
        };
        // Newest first (other tests' modules may come between).
        let ours = || -> Vec<u64> { sizes().into_iter().filter(|n| *n <= 3).collect() };
        assert_eq!(ours(), [3, 2, 1]);
        drop(b);
        assert_eq!(ours(), [3, 1]);
        let mut seen = Vec::new();
        Registration::each_file(|f| seen.push(f.to_vec()));
        assert!(seen.contains(&b"ccc".to_vec()) && !seen.contains(&b"bb".to_vec()));
        // SAFETY: reading the descriptor's version.
        assert_eq!(unsafe { (*d).version }, 1);
        drop((a, c));
        assert!(!sizes().contains(&3));
        assert_eq!(Registration::count(), before);
    }
}

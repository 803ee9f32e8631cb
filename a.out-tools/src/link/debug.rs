//! The debug file (`--debug FILE`): an ELF file beside the module holding
//! the objects' DWARF (`.debug_*` sections), joined section by section and
//! relocated to the module's layout with its base at 0, with the module's
//! symbols and its unwind table, so that a debugger given it at the
//! module's load address (`add-symbol-file FILE -o BASE` in gdb) shows
//! file and line for module code.
//!
//! Each object's piece of a debug section goes after the pieces before
//! it; a reference to another debug section becomes an offset into the
//! joined section, one to code or data the module's image offset, one to
//! a section `--gc` dropped a tombstone (as lld writes: all ones, or all
//! ones but the lowest bit in the old range and location lists, where 0
//! would end the list).

use super::image::Target;
use super::layout::Layout;
use super::resolve::Symbols;
use super::{fail, LinkError};
use dynld::{Arch, Limits, ModuleView};
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};
use std::collections::{BTreeMap, HashMap};

/// The bytes an absolute relocation of type `r_type` fills in a debug
/// section.
fn abs_width(arch: Arch, r_type: u32) -> Option<usize> {
    use object::elf::*;
    match (arch, r_type) {
        (Arch::Amd64, R_X86_64_32 | R_X86_64_32S) => Some(4),
        (Arch::Amd64, R_X86_64_64) => Some(8),
        (Arch::Arm64, R_AARCH64_ABS32) => Some(4),
        (Arch::Arm64, R_AARCH64_ABS64) => Some(8),
        (Arch::Arm, R_ARM_ABS32) | (Arch::I386, R_386_32) => Some(4),
        _ => None,
    }
}

/// The CRC-32 of `bytes` (IEEE, reflected; zlib's and `.gnu_debuglink`'s).
pub(super) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// A section of the debug file.
struct Out {
    name: String,
    kind: u32,
    flags: u64,
    addr: u64,
    bytes: Vec<u8>,
    /// Bytes of a section without contents.
    size: u64,
    link: u32,
    info: u32,
    entsize: u64,
}

/// The debug file of the module `module` (its bytes, as emitted), laid out
/// by `lay`, with its unwind table `unwind`.
pub(super) fn debug_file(
    syms: &Symbols<'_>,
    lay: &Layout,
    arch: Arch,
    module: &[u8],
    unwind: Option<&(u32, Vec<u8>)>,
) -> Result<Vec<u8>, LinkError> {
    let wide = arch.word_size() == 8;
    // Each object's debug sections: where its piece goes in the joined one.
    let mut joined: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut piece: HashMap<(usize, usize), (String, u64)> = HashMap::new();
    for (oi, o) in syms.objs.iter().enumerate() {
        for s in o.file.sections() {
            let Ok(name) = s.name() else { continue };
            if !name.starts_with(".debug_") {
                continue;
            }
            let data = s
                .data()
                .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
            let out = joined.entry(name.to_owned()).or_default();
            piece.insert((oi, s.index().0), (name.to_owned(), out.len() as u64));
            out.extend_from_slice(data);
        }
    }
    // The relocations, now that every piece has its place.
    for (oi, o) in syms.objs.iter().enumerate() {
        for s in o.file.sections() {
            let Some((name, at)) = piece.get(&(oi, s.index().0)).cloned() else {
                continue;
            };
            let data = s
                .data()
                .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
            let lists = matches!(name.as_str(), ".debug_ranges" | ".debug_loc");
            for (off, r) in s.relocations() {
                let RelocationFlags::Elf { r_type } = r.flags() else {
                    continue;
                };
                let Some(w) = abs_width(arch, r_type) else {
                    fail!(
                        "{}: {name}+{off:#x}: relocation type {r_type} not supported in debug information",
                        o.name
                    );
                };
                let RelocationTarget::Symbol(si) = r.target() else {
                    fail!("{}: {name}+{off:#x}: relocation without a symbol", o.name);
                };
                let sym = o
                    .file
                    .symbol_by_index(si)
                    .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
                let in_debug = sym
                    .section_index()
                    .and_then(|i| piece.get(&(oi, i.0)))
                    .map(|(_, p)| p + sym.address());
                // REL (ARM, 386): the addend is the field's contents.
                let addend = if r.has_implicit_addend() {
                    let f = data.get(off as usize..off as usize + w).ok_or_else(|| {
                        LinkError(format!(
                            "{}: {name}+{off:#x}: relocation outside the section",
                            o.name
                        ))
                    })?;
                    match w {
                        4 => i64::from(u32::from_le_bytes(f.try_into().unwrap_or([0; 4]))),
                        _ => i64::from_le_bytes(f.try_into().unwrap_or([0; 8])),
                    }
                } else {
                    r.addend()
                };
                let value = match in_debug {
                    Some(v) => Some(v as i64 + addend),
                    None => syms
                        .resolve(oi, si)
                        .ok()
                        .and_then(|res| lay.addr(&res))
                        .and_then(|t| match t {
                            Target::Local(v) => Some(v as i64 + addend),
                            Target::Abs(v) => Some(v as i64 + addend),
                            _ => None,
                        }),
                };
                let tomb: u64 = if lists { u64::MAX - 1 } else { u64::MAX };
                let v = value.map_or(tomb, |v| v as u64);
                let field = (at + off) as usize;
                let Some(out) = joined.get_mut(&name) else {
                    continue;
                };
                let Some(dst) = out.get_mut(field..field + w) else {
                    fail!(
                        "{}: {name}+{off:#x}: relocation outside the section",
                        o.name
                    );
                };
                match w {
                    4 => dst.copy_from_slice(&(v as u32).to_le_bytes()),
                    _ => dst.copy_from_slice(&v.to_le_bytes()),
                }
            }
        }
    }
    let v = ModuleView::parse(module, &Limits::DEFAULT)
        .map_err(|e| LinkError(format!("the module written: {e}")))?;
    let mut secs = vec![
        Out {
            name: ".text".into(),
            kind: object::elf::SHT_NOBITS,
            flags: u64::from(object::elf::SHF_ALLOC | object::elf::SHF_EXECINSTR),
            addr: 0,
            bytes: Vec::new(),
            size: v.text_size() as u64,
            link: 0,
            info: 0,
            entsize: 0,
        },
        Out {
            name: ".data".into(),
            kind: object::elf::SHT_NOBITS,
            flags: u64::from(object::elf::SHF_ALLOC | object::elf::SHF_WRITE),
            addr: v.data_offset() as u64,
            bytes: Vec::new(),
            size: (v.image_size() - v.data_offset()) as u64,
            link: 0,
            info: 0,
            entsize: 0,
        },
    ];
    if let Some((at, bytes)) = unwind {
        secs.push(Out {
            name: ".eh_frame".into(),
            kind: object::elf::SHT_PROGBITS,
            flags: u64::from(object::elf::SHF_ALLOC),
            addr: u64::from(*at),
            size: bytes.len() as u64,
            bytes: bytes.clone(),
            link: 0,
            info: 0,
            entsize: 0,
        });
    }
    for (name, bytes) in joined {
        secs.push(Out {
            name,
            kind: object::elf::SHT_PROGBITS,
            flags: 0,
            addr: 0,
            size: bytes.len() as u64,
            bytes,
            link: 0,
            info: 0,
            entsize: 0,
        });
    }
    // The symbols: the module's symbols table, locals first.
    let mut strtab = vec![0u8];
    let mut symtab = Vec::new();
    let sym = |symtab: &mut Vec<u8>, name: u32, info: u8, shndx: u16, value: u64, size: u64| {
        symtab.extend_from_slice(&name.to_le_bytes());
        if wide {
            symtab.extend_from_slice(&[info, 0]);
            symtab.extend_from_slice(&shndx.to_le_bytes());
            symtab.extend_from_slice(&value.to_le_bytes());
            symtab.extend_from_slice(&size.to_le_bytes());
        } else {
            symtab.extend_from_slice(&(value as u32).to_le_bytes());
            symtab.extend_from_slice(&(size as u32).to_le_bytes());
            symtab.extend_from_slice(&[info, 0]);
            symtab.extend_from_slice(&shndx.to_le_bytes());
        }
    };
    sym(&mut symtab, 0, 0, 0, 0, 0);
    let mut list: Vec<_> = v.symbols().collect();
    list.sort_by_key(|s| s.exported);
    let first_global = 1 + list.iter().take_while(|s| !s.exported).count();
    for s in &list {
        let n = strtab.len() as u32;
        strtab.extend_from_slice(s.name.as_bytes());
        strtab.push(0);
        let text = (s.value as usize) < v.text_size();
        let (kind, shndx) = if text { (2u8, 1u16) } else { (1, 2) };
        let bind = if s.exported { 1u8 << 4 } else { 0 };
        sym(
            &mut symtab,
            n,
            bind | kind,
            shndx,
            u64::from(s.value),
            u64::from(s.size),
        );
    }
    let nsec = secs.len() as u32;
    secs.push(Out {
        name: ".symtab".into(),
        kind: object::elf::SHT_SYMTAB,
        flags: 0,
        addr: 0,
        size: symtab.len() as u64,
        bytes: symtab,
        // The string table follows it.
        link: nsec + 2,
        info: first_global as u32,
        entsize: if wide { 24 } else { 16 },
    });
    secs.push(Out {
        name: ".strtab".into(),
        kind: object::elf::SHT_STRTAB,
        flags: 0,
        addr: 0,
        size: strtab.len() as u64,
        bytes: strtab,
        link: 0,
        info: 0,
        entsize: 0,
    });
    let mut shstr = vec![0u8];
    let mut names = Vec::new();
    for s in &secs {
        names.push(shstr.len() as u32);
        shstr.extend_from_slice(s.name.as_bytes());
        shstr.push(0);
    }
    names.push(shstr.len() as u32);
    shstr.extend_from_slice(b".shstrtab\0");
    secs.push(Out {
        name: ".shstrtab".into(),
        kind: object::elf::SHT_STRTAB,
        flags: 0,
        addr: 0,
        size: shstr.len() as u64,
        bytes: shstr,
        link: 0,
        info: 0,
        entsize: 0,
    });
    // The file: header, contents, section headers.
    let (ehsize, shsize) = if wide { (64usize, 64u16) } else { (52, 40) };
    let mut f = vec![0u8; ehsize];
    let mut offsets = Vec::new();
    for s in &secs {
        while f.len() % 8 != 0 {
            f.push(0);
        }
        offsets.push(f.len() as u64);
        f.extend_from_slice(&s.bytes);
    }
    while f.len() % 8 != 0 {
        f.push(0);
    }
    let shoff = f.len() as u64;
    let word = |f: &mut Vec<u8>, v: u64| {
        if wide {
            f.extend_from_slice(&v.to_le_bytes());
        } else {
            f.extend_from_slice(&(v as u32).to_le_bytes());
        }
    };
    f.extend_from_slice(&[0; 64][..shsize as usize]);
    for (i, s) in secs.iter().enumerate() {
        f.extend_from_slice(&names[i].to_le_bytes());
        f.extend_from_slice(&s.kind.to_le_bytes());
        word(&mut f, s.flags);
        word(&mut f, s.addr);
        word(&mut f, offsets[i]);
        word(&mut f, s.size);
        f.extend_from_slice(&s.link.to_le_bytes());
        f.extend_from_slice(&s.info.to_le_bytes());
        word(
            &mut f,
            if s.kind == object::elf::SHT_NOBITS {
                16
            } else {
                1
            },
        );
        word(&mut f, s.entsize);
    }
    let mut h = Vec::new();
    h.extend_from_slice(b"\x7fELF");
    h.extend_from_slice(&[if wide { 2 } else { 1 }, 1, 1]);
    h.resize(16, 0);
    h.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    h.extend_from_slice(&arch.elf_machine().to_le_bytes());
    h.extend_from_slice(&1u32.to_le_bytes());
    word(&mut h, 0); // e_entry
    word(&mut h, 0); // e_phoff
    word(&mut h, shoff);
    let eflags: u32 = if arch == Arch::Arm { 0x0500_0000 } else { 0 };
    h.extend_from_slice(&eflags.to_le_bytes());
    h.extend_from_slice(&(ehsize as u16).to_le_bytes());
    h.extend_from_slice(&0u16.to_le_bytes()); // e_phentsize
    h.extend_from_slice(&0u16.to_le_bytes()); // e_phnum
    h.extend_from_slice(&shsize.to_le_bytes());
    let shnum = secs.len() as u16 + 1;
    h.extend_from_slice(&shnum.to_le_bytes());
    h.extend_from_slice(&(shnum - 1).to_le_bytes()); // e_shstrndx
    f[..ehsize].copy_from_slice(&h);
    Ok(f)
}

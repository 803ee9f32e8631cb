//! One input object, and what the linker asks of its symbols and sections:
//! names, bindings, visibility, and which output part a section goes to.

use super::{fail, LinkError};
use crate::{modsec, sigsec};
use object::{Object, ObjectSection, ObjectSymbol, SectionIndex, SectionKind};
use std::collections::HashSet;

/// One input object.
pub(super) struct Obj<'d> {
    /// The file (`file.o`) or archive member (`lib.a(member.o)`), for messages.
    pub name: String,
    /// The parsed ELF file.
    pub file: object::File<'d>,
    /// Sections dropped because their COMDAT group was seen before.
    pub discarded: HashSet<SectionIndex>,
    /// Written by rustc (its `.comment` says so): its natural exports are
    /// its unmangled symbols, not every global one.
    pub rust: bool,
}

/// Whether an object's `.comment` section names rustc as its compiler.
pub(super) fn written_by_rustc(file: &object::File<'_>) -> bool {
    file.section_by_name(".comment")
        .and_then(|s| s.data().ok())
        .is_some_and(|d| d.windows(14).any(|w| w == b"rustc version "))
}

/// Whether `name` is a name rustc mangles (legacy `_ZN...`, v0 `_R` and a
/// path tag) or one of the runtime's own (the panic and allocator entry
/// points): never a Rust crate's `#[no_mangle]` item.
pub(super) fn rust_internal(name: &str) -> bool {
    let v0 = name.strip_prefix("_R").is_some_and(|rest| {
        rest.trim_start_matches(|c: char| c.is_ascii_digit())
            .starts_with(|c: char| c.is_ascii_uppercase())
    });
    v0 || name.starts_with("_ZN")
        || name.starts_with("__rust")
        || name.starts_with("__rg_")
        || name.starts_with("__rdl_")
        || matches!(
            name,
            "rust_begin_unwind" | "rust_eh_personality" | "rust_panic"
        )
}

impl Obj<'_> {
    /// Whether global symbol `s` (defined here) is one the object exports
    /// when no names are given: every one of default visibility, or for
    /// Rust only those with unmangled names (`#[no_mangle]` and
    /// `#[export_name]` items), not its mangled functions.
    pub fn natural_export(&self, s: &object::Symbol<'_, '_>) -> bool {
        is_default_visibility(s) && !(self.rust && rust_internal(&sym_name(s)))
    }
}

/// A section of an input object: the object's index among the included
/// objects, and the section's ELF index.
pub(super) type SectionId = (usize, usize);

impl Obj<'_> {
    /// Section `idx`.
    pub fn section(&self, idx: usize) -> Result<object::Section<'_, '_>, LinkError> {
        self.file
            .section_by_index(SectionIndex(idx))
            .map_err(|e| LinkError(format!("{}: {e}", self.name)))
    }

    /// Bytes in section `idx` (0 if there is none).
    pub fn section_size(&self, idx: usize) -> u64 {
        self.file
            .section_by_index(SectionIndex(idx))
            .map_or(0, |s| s.size())
    }

    /// Section `idx`'s name, or `#idx`.
    pub fn section_name(&self, idx: SectionIndex) -> String {
        self.file
            .section_by_index(idx)
            .ok()
            .and_then(|s| s.name().ok().map(str::to_owned))
            .unwrap_or_else(|| format!("#{}", idx.0))
    }

    /// Symbol `s`'s offset in section `idx`, checked to lie within it (or
    /// at its end).
    pub fn offset_in(
        &self,
        idx: SectionIndex,
        s: &object::Symbol<'_, '_>,
    ) -> Result<u64, LinkError> {
        let size = self
            .file
            .section_by_index(idx)
            .map_err(|e| LinkError(format!("{}: {e}", self.name)))?
            .size();
        if s.address() > size {
            fail!(
                "{}: symbol {} lies outside its section {}",
                self.name,
                sym_name(s),
                self.section_name(idx)
            );
        }
        Ok(s.address())
    }
}

/// A symbol's name (`?` if it has none that can be read).
pub(super) fn sym_name(s: &object::Symbol<'_, '_>) -> String {
    String::from_utf8_lossy(s.name_bytes().unwrap_or(b"?")).into_owned()
}

/// The x86-64 psABI's section index of large-model common symbols.
const SHN_X86_64_LCOMMON: u16 = 0xff02;

/// Why a symbol whose section the reader does not know (`SymbolSection::
/// Unknown`) has none: its raw section index (`st_shndx`), a reserved one
/// or an extended one that cannot be read.
pub(super) fn unknown_section(obj: &Obj<'_>, s: &object::Symbol<'_, '_>) -> String {
    use object::read::elf::Sym as _;
    let raw = match &obj.file {
        object::File::Elf32(f) => f
            .symbol_by_index(s.index())
            .ok()
            .map(|e| e.elf_symbol().st_shndx(f.endian())),
        object::File::Elf64(f) => f
            .symbol_by_index(s.index())
            .ok()
            .map(|e| e.elf_symbol().st_shndx(f.endian())),
        _ => None,
    };
    match raw {
        Some(object::elf::SHN_XINDEX) => {
            "at an extended section index (SHN_XINDEX) that cannot be read".to_owned()
        }
        Some(SHN_X86_64_LCOMMON) if obj.file.architecture() == object::Architecture::X86_64 => {
            format!(
                "at reserved section index {:#x} (a large-model common symbol: compile with -fno-common)",
                SHN_X86_64_LCOMMON
            )
        }
        Some(i) => format!("at reserved section index {i:#x}"),
        None => "at a section index that cannot be read".to_owned(),
    }
}

/// The ELF symbol type (`STT_*`).
pub(super) fn sym_type(s: &object::Symbol<'_, '_>) -> u8 {
    match s.flags() {
        object::SymbolFlags::Elf { st_info, .. } => st_info & 0xf,
        _ => 0,
    }
}

/// Whether a symbol is global or weak, with a name.
pub(super) fn is_global(s: &object::Symbol<'_, '_>) -> bool {
    !s.is_local() && s.name_bytes().is_ok_and(|n| !n.is_empty())
}

/// Whether a symbol has default visibility (not hidden or protected).
pub(super) fn is_default_visibility(s: &object::Symbol<'_, '_>) -> bool {
    match s.flags() {
        object::SymbolFlags::Elf { st_other, .. } => st_other & 3 == object::elf::STV_DEFAULT,
        _ => true,
    }
}

/// Output part a section goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Part {
    /// Code and read-only data (sealed after loading).
    Text,
    /// Writable data.
    Data,
    /// Zero-filled data, not stored in the file.
    Bss,
}

impl Part {
    /// The part's index in per-part arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The part's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Part::Text => "text",
            Part::Data => "data",
            Part::Bss => "bss",
        }
    }
}

/// Classifies an allocated section; `None` for sections that take no space
/// in the module (not allocated, or metadata the linker reads itself).
pub(super) fn part_of(
    obj: &Obj<'_>,
    s: &object::Section<'_, '_>,
) -> Result<Option<Part>, LinkError> {
    let name = s.name().unwrap_or("");
    let flags = match s.flags() {
        object::SectionFlags::Elf { sh_flags } => sh_flags,
        _ => 0,
    };
    if flags & u64::from(object::elf::SHF_ALLOC) == 0
        || name == sigsec::SECTION
        || name == modsec::SECTION
    {
        return Ok(None);
    }
    if FnArray::of(name).is_some()
        || name == ".eh_frame"
        || name.starts_with(".ARM.exidx")
        || name.starts_with(".ARM.extab")
    {
        // Constructors and destructors become the module's tables of
        // them; nothing would register unwind tables (.eh_frame, ARM's
        // exception index and table), so they are dropped (code that
        // throws is refused where it is resolved).
        return Ok(None);
    }
    if name == ".ctors"
        || name.starts_with(".ctors.")
        || name == ".dtors"
        || name.starts_with(".dtors.")
    {
        fail!(
            "{}: section {name}: constructors and destructors in {name} are not supported (use .init_array and .fini_array, as current compilers do)",
            obj.name
        );
    }
    let wx = u64::from(object::elf::SHF_WRITE) | u64::from(object::elf::SHF_EXECINSTR);
    if flags & wx == wx {
        fail!(
            "{}: section {name} is writable and executable: modules keep W^X",
            obj.name
        );
    }
    if flags & u64::from(object::elf::SHF_TLS) != 0 {
        fail!(
            "{}: section {name}: thread-local storage is not supported in modules",
            obj.name
        );
    }
    Ok(Some(
        if s.kind() == SectionKind::UninitializedData || s.kind() == SectionKind::Common {
            Part::Bss
        } else if flags & u64::from(object::elf::SHF_EXECINSTR) != 0 {
            Part::Text
        } else if flags & u64::from(object::elf::SHF_WRITE) == 0 || name.starts_with(".data.rel.ro")
        {
            // Read-only data, and data that is read-only once relocated,
            // go with the text: written at load, then sealed.
            Part::Text
        } else {
            Part::Data
        },
    ))
}

/// The arrays of function pointers that a C runtime calls around a
/// program's life, and that a module keeps as its constructor and
/// destructor tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum FnArray {
    /// `.preinit_array`: constructors that run before all others.
    Preinit,
    /// `.init_array`, `.init_array.N`: constructors.
    Init,
    /// `.fini_array`, `.fini_array.N`: destructors.
    Fini,
}

impl FnArray {
    /// The array a section of this name holds, if any.
    pub fn of(name: &str) -> Option<FnArray> {
        let is = |base: &str| {
            name == base
                || name
                    .strip_prefix(base)
                    .is_some_and(|rest| rest.starts_with('.'))
        };
        if is(".preinit_array") {
            Some(FnArray::Preinit)
        } else if is(".init_array") {
            Some(FnArray::Init)
        } else if is(".fini_array") {
            Some(FnArray::Fini)
        } else {
            None
        }
    }
}

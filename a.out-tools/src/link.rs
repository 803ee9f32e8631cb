//! `aout link`: ELF relocatable objects and archives in, one dynld module out.
//!
//! The linker does all the work it can: it resolves symbols (pulling archive
//! members on demand, keeping one copy of each COMDAT group, allocating
//! common symbols), drops sections nothing reachable from the exports uses,
//! lays out text, data and bss, resolves every reference inside the module,
//! and makes GOT slots and call stubs for references to imports. What is
//! left for the loader is a handful of relocation modes (see
//! `dynld-module(5)`); a reference it cannot express is an error naming the
//! object, section, offset and relocation type.

use crate::sigsec::{self, SigTable};
use dynld::{Arch, ModuleBuilder};
use object::read::archive::ArchiveFile;
use object::{
    Object, ObjectComdat, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget,
    SectionIndex, SectionKind, SymbolIndex, SymbolSection,
};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::PathBuf;

mod aarch64;
mod arm;
mod riscv;
mod x86_64;

/// What to link and how.
#[derive(Debug, Default)]
pub struct Options {
    /// Objects and archives.
    pub inputs: Vec<PathBuf>,
    /// Export only these names (all global default-visibility symbols if `None`).
    pub exports: Option<BTreeSet<String>>,
    /// Drop sections not reachable from the exports.
    pub gc: bool,
    /// Whether to store a hash index over the exports.
    pub index: IndexMode,
    /// Whether to store the imports' name hashes.
    pub import_hashes: IndexMode,
    /// Where the text starts in the module file.
    pub text_align: TextAlign,
}

/// Where the text starts in the module file (`--text-align`): on a page
/// boundary, a loader can map it from the file instead of copying it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TextAlign {
    /// On a 4 KiB boundary for a 64-bit architecture when the text is at
    /// least [`TEXT_ALIGN_AUTO_MIN`] bytes, else right after the header.
    #[default]
    Auto,
    /// On a multiple of this many bytes (a power of two up to 64 KiB; 1
    /// is right after the header).
    Bytes(u32),
}

/// Text size from which `--text-align auto` aligns: below it, copying the
/// text costs less than mapping it, and the padding would be a large part
/// of the file.
pub const TEXT_ALIGN_AUTO_MIN: usize = 64 << 10;

impl std::str::FromStr for TextAlign {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "auto" {
            return Ok(TextAlign::Auto);
        }
        match s.parse::<u32>() {
            Ok(n) if dynld::format::text_align_ok(n) => Ok(TextAlign::Bytes(n)),
            _ => Err(format!(
                "`{s}`: expected `auto` or a power of two from 1 to {}",
                dynld::format::MAX_TEXT_ALIGN
            )),
        }
    }
}

/// Whether a module gets an optional table: the hash index over its
/// exports (`--index`), its imports' name hashes (`--import-hashes`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum IndexMode {
    /// When the module has at least [`INDEX_AUTO_MIN`] exports (for the
    /// index) or [`IMPORT_HASHES_AUTO_MIN`] imports (for the hashes).
    #[default]
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// Exports from which `--index auto` stores an index: below this, a search
/// of the sorted table is as fast and the index's bytes are not worth it.
pub const INDEX_AUTO_MIN: usize = 32;

/// Imports from which `--import-hashes auto` stores their hashes (8 bytes
/// each): below this, hashing the names as the loader binds them costs
/// next to nothing.
pub const IMPORT_HASHES_AUTO_MIN: usize = 32;

/// A link error: the message names the object, section, offset and
/// relocation where one is involved.
#[derive(Debug)]
pub struct LinkError(pub String);

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! fail {
    ($($t:tt)*) => { return Err(LinkError(format!($($t)*))) };
}
pub(crate) use fail;

/// One input object.
struct Obj<'d> {
    name: String,
    file: object::File<'d>,
    /// Sections dropped because their COMDAT group was seen before.
    discarded: HashSet<SectionIndex>,
}

/// Where a global symbol is defined.
#[derive(Clone, Copy, Debug)]
enum Def {
    Sym {
        obj: usize,
        sym: SymbolIndex,
        weak: bool,
    },
    Common {
        size: u64,
        align: u64,
    },
}

/// Output part a section goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text,
    Data,
    Bss,
}

/// What a relocation refers to, after resolution.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// An image offset inside the module.
    Local(u64),
    /// An absolute value.
    Abs(u64),
    /// An import, by name.
    Import(String),
}

/// The per-architecture half of the linker.
pub(crate) struct Reloc<'a> {
    pub r_type: u32,
    pub offset: u64,
    pub addend: i64,
    pub target: Target,
    /// Describes the relocation for error messages.
    pub what: &'a dyn Fn() -> String,
    /// The addend is in the field (ELF `REL`), not in `addend`.
    pub implicit: bool,
}

/// A relocation left for the loader: it adds the load base or an
/// import's address to the field at `offset`, as `mode` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct LoadReloc {
    /// Image offset of the field.
    pub offset: u64,
    /// The mode number (`dynld::arch`) for the module's architecture.
    pub mode: u8,
    /// The import whose address is added; `None` adds the load base.
    pub import: Option<String>,
}

impl LoadReloc {
    /// Adds the load base to the field at `offset`.
    pub fn base(offset: u64, mode: u8) -> LoadReloc {
        LoadReloc {
            offset,
            mode,
            import: None,
        }
    }

    /// Adds the address of import `name` to the field at `offset`.
    pub fn import(offset: u64, mode: u8, name: &str) -> LoadReloc {
        LoadReloc {
            offset,
            mode,
            import: Some(name.to_owned()),
        }
    }
}

/// Bytes a section, a stub or the GOT occupies, and where it is.
pub(crate) struct Image {
    pub text: Vec<u8>,
    pub data: Vec<u8>,
    pub dataoff: u64,
    /// GOT slot of each target.
    pub got: BTreeMap<Target, u64>,
    /// Load-time relocations, in the order they were made.
    pub relocs: Vec<LoadReloc>,
    /// Values of PC-relative high parts (`S + A - P`) by their place, for
    /// the low parts that name them (RISC-V `%pcrel_lo`).
    pub pcrel_hi: HashMap<u64, i128>,
    /// Veneers by the image offset they jump to (`S + A` of the calls
    /// using them, with the addend as [`Machine::call_addend`] gives it).
    pub veneers: BTreeMap<u64, Vec<u64>>,
    /// Copies of import stubs in veneer islands, by import.
    pub stub_copies: BTreeMap<String, Vec<u64>>,
}

impl Image {
    /// The stub for import `name` nearest to `p`: the one after the text
    /// (`main`) or a copy in an island.
    pub fn stub(&self, name: &str, main: u64, p: u64) -> u64 {
        self.stub_copies
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .chain([main])
            .min_by_key(|s| s.abs_diff(p))
            .unwrap_or(main)
    }

    /// The veneer jumping to `to` nearest to `p`.
    pub fn veneer(&self, to: u64, p: u64) -> Option<u64> {
        self.veneers
            .get(&to)?
            .iter()
            .copied()
            .min_by_key(|v| v.abs_diff(p))
    }
}

impl Image {
    /// The `n` bytes at image offset `at`, which must lie inside the text
    /// or inside the data.
    pub fn get(&self, at: u64, n: usize) -> Result<&[u8], LinkError> {
        let (part, at) = match at.checked_sub(self.dataoff) {
            Some(d) => (&self.data, d),
            None => (&self.text, at),
        };
        usize::try_from(at)
            .ok()
            .and_then(|a| part.get(a..a.checked_add(n)?))
            .ok_or_else(|| LinkError(format!("read outside the image at {at:#x}")))
    }

    /// The little-endian 32-bit word at `at` (an instruction).
    pub fn get32(&self, at: u64) -> Result<u32, LinkError> {
        let b = self.get(at, 4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Writes `bytes` at image offset `at`, which must lie inside the text
    /// or inside the data.
    pub fn put(&mut self, at: u64, bytes: &[u8]) -> Result<(), LinkError> {
        let (part, at) = match at.checked_sub(self.dataoff) {
            Some(d) => (&mut self.data, d),
            None => (&mut self.text, at),
        };
        usize::try_from(at)
            .ok()
            .and_then(|a| part.get_mut(a..a.checked_add(bytes.len())?))
            .ok_or_else(|| LinkError(format!("write outside the image at {at:#x}")))?
            .copy_from_slice(bytes);
        Ok(())
    }
}

fn sym_name(s: &object::Symbol<'_, '_>) -> String {
    String::from_utf8_lossy(s.name_bytes().unwrap_or(b"?")).into_owned()
}

fn sec_name(obj: &Obj<'_>, idx: SectionIndex) -> String {
    obj.file
        .section_by_index(idx)
        .ok()
        .and_then(|s| s.name().ok().map(str::to_owned))
        .unwrap_or_else(|| format!("#{}", idx.0))
}

/// Names the objects reference with a strong (not weak) undefined symbol.
fn strong_refs(objs: &[Obj<'_>]) -> HashSet<String> {
    objs.iter()
        .flat_map(|o| o.file.symbols())
        .filter(|s| s.is_undefined() && is_global(s) && !s.is_weak())
        .map(|s| sym_name(&s))
        .collect()
}

/// A symbol's offset in its section, checked to lie within it (or at its end).
fn in_section(
    o: &Obj<'_>,
    idx: SectionIndex,
    s: &object::Symbol<'_, '_>,
) -> Result<u64, LinkError> {
    let size = o
        .file
        .section_by_index(idx)
        .map_err(|e| LinkError(format!("{}: {e}", o.name)))?
        .size();
    if s.address() > size {
        fail!(
            "{}: symbol {} lies outside its section {}",
            o.name,
            sym_name(s),
            sec_name(o, idx)
        );
    }
    Ok(s.address())
}

/// The ELF symbol type (`STT_*`).
fn sym_type(s: &object::Symbol<'_, '_>) -> u8 {
    match s.flags() {
        object::SymbolFlags::Elf { st_info, .. } => st_info & 0xf,
        _ => 0,
    }
}

fn is_global(s: &object::Symbol<'_, '_>) -> bool {
    !s.is_local() && s.name_bytes().is_ok_and(|n| !n.is_empty())
}

fn is_default_visibility(s: &object::Symbol<'_, '_>) -> bool {
    match s.flags() {
        object::SymbolFlags::Elf { st_other, .. } => st_other & 3 == object::elf::STV_DEFAULT,
        _ => true,
    }
}

/// Classifies an allocated section; `None` for sections that take no space
/// in the module (not allocated, or metadata the linker reads itself).
fn part_of(obj: &Obj<'_>, s: &object::Section<'_, '_>) -> Result<Option<Part>, LinkError> {
    let name = s.name().unwrap_or("");
    let flags = match s.flags() {
        object::SectionFlags::Elf { sh_flags } => sh_flags,
        _ => 0,
    };
    if flags & u64::from(object::elf::SHF_ALLOC) == 0 || name == sigsec::SECTION {
        return Ok(None);
    }
    if is_init_array(name)
        || is_fini_array(name)
        || name == ".eh_frame"
        || name.starts_with(".ARM.exidx")
        || name.starts_with(".ARM.extab")
    {
        // Constructors become the init function; destructors are dropped;
        // nothing would register unwind tables (.eh_frame, ARM's exception
        // index and table), so they are dropped too.
        return Ok(None);
    }
    if name == ".ctors" || name.starts_with(".ctors.") || name == ".preinit_array" {
        fail!(
            "{}: section {name}: constructors in {name} are not supported (use .init_array, as current compilers do)",
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

fn is_init_array(name: &str) -> bool {
    name == ".init_array" || name.starts_with(".init_array.")
}

fn is_fini_array(name: &str) -> bool {
    name == ".fini_array" || name.starts_with(".fini_array.") || name == ".dtors"
}

/// One input file: its name (for messages) and contents.
pub struct Input {
    /// Shown in messages.
    pub name: String,
    /// The file's bytes: an ELF relocatable object or an archive.
    pub bytes: Vec<u8>,
}

impl Input {
    /// Reads a file.
    pub fn read(path: &std::path::Path) -> Result<Input, LinkError> {
        let bytes =
            std::fs::read(path).map_err(|e| LinkError(format!("{}: {e}", path.display())))?;
        Ok(Input {
            name: path.display().to_string(),
            bytes,
        })
    }
}

/// Expands archives: objects are included; archive members become candidates.
fn expand(inputs: Vec<Input>) -> Result<Vec<(String, Vec<u8>, bool)>, LinkError> {
    let mut out = Vec::new();
    for Input { name: p, bytes } in inputs {
        if let Ok(ar) = ArchiveFile::parse(&*bytes) {
            for m in ar.members() {
                let m = m.map_err(|e| LinkError(format!("{p}: {e}")))?;
                let name = String::from_utf8_lossy(m.name()).into_owned();
                let data = m
                    .data(&*bytes)
                    .map_err(|e| LinkError(format!("{p}({name}): {e}")))?;
                // Members may sit at unaligned offsets; the ELF reader wants
                // an aligned copy. Members that are not objects (an rlib's
                // metadata, a symbol index) are skipped.
                let data = data.to_vec();
                if object::File::parse(&*data).is_ok() {
                    out.push((format!("{p}({name})"), data, false));
                }
            }
        } else {
            out.push((p, bytes, true));
        }
    }
    Ok(out)
}

/// The largest module the linker writes.
pub const MAX_MODULE: u64 = 256 << 20;

/// `v` rounded up to a multiple of `a`, within [`MAX_MODULE`].
fn round(v: u64, a: u64) -> Result<u64, LinkError> {
    v.checked_next_multiple_of(a.max(1))
        .filter(|&r| r <= MAX_MODULE)
        .ok_or_else(|| LinkError(format!("module too large (over {MAX_MODULE} bytes)")))
}

/// `a + b`, within [`MAX_MODULE`].
fn grow(a: u64, b: u64) -> Result<u64, LinkError> {
    a.checked_add(b)
        .filter(|&r| r <= MAX_MODULE)
        .ok_or_else(|| LinkError(format!("module too large (over {MAX_MODULE} bytes)")))
}

/// Adds an object's definitions to the global table, dropping sections of
/// COMDAT groups already seen.
fn include<'d>(
    mut obj: Obj<'d>,
    objs: &mut Vec<Obj<'d>>,
    globals: &mut HashMap<String, Def>,
    comdats: &mut HashSet<Vec<u8>>,
) -> Result<(), LinkError> {
    for c in obj.file.comdats() {
        let key = c.name_bytes().unwrap_or(b"").to_vec();
        if !comdats.insert(key) {
            obj.discarded.extend(c.sections());
        }
    }
    let oi = objs.len();
    for s in obj.file.symbols() {
        if sym_type(&s) == object::elf::STT_GNU_IFUNC && !s.is_undefined() {
            fail!(
                "{}: {} is an indirect function (ifunc): modules cannot express it",
                obj.name,
                sym_name(&s)
            );
        }
        if s.name() == Ok("__gnu_lto_slim") {
            fail!(
                "{}: a slim LTO object holds no code: compile without -flto (or with -ffat-lto-objects)",
                obj.name
            );
        }
        if !is_global(&s) || s.is_undefined() {
            continue;
        }
        let name = sym_name(&s);
        let new = match s.section() {
            SymbolSection::Common => Def::Common {
                size: s.size(),
                align: s.address().max(1),
            },
            SymbolSection::Section(idx) if obj.discarded.contains(&idx) => continue,
            SymbolSection::Section(_) | SymbolSection::Absolute => Def::Sym {
                obj: oi,
                sym: s.index(),
                weak: s.is_weak(),
            },
            _ => continue,
        };
        match (globals.get(&name).copied(), new) {
            (None, _) => {
                globals.insert(name, new);
            }
            (Some(Def::Sym { weak: true, .. }), Def::Sym { weak: false, .. })
            | (Some(Def::Sym { weak: true, .. }), Def::Common { .. })
            | (Some(Def::Common { .. }), Def::Sym { weak: false, .. }) => {
                globals.insert(name, new);
            }
            (Some(Def::Common { size: a, align: x }), Def::Common { size: b, align: y }) => {
                // The largest size and the strictest alignment, as ld does.
                globals.insert(
                    name,
                    Def::Common {
                        size: a.max(b),
                        align: x.max(y),
                    },
                );
            }
            (
                Some(Def::Sym {
                    weak: false,
                    obj: o,
                    ..
                }),
                Def::Sym { weak: false, .. },
            ) => {
                let first = objs.get(o).map_or(&obj.name, |x| &x.name);
                fail!(
                    "symbol {name} defined twice: in {first} and in {}",
                    obj.name
                )
            }
            _ => {}
        }
    }
    objs.push(obj);
    Ok(())
}

/// The linked module.
pub struct Linked {
    /// The module file's bytes.
    pub bytes: Vec<u8>,
    /// Warnings worth showing.
    pub warnings: Vec<String>,
    /// Where each input section and synthesised area went, in image order.
    pub map: Vec<MapEntry>,
}

/// One line of the link map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    /// Image offset.
    pub offset: u64,
    /// Bytes.
    pub size: u64,
    /// The input (`file` or `archive(member)`), or `*` for what the linker
    /// made itself.
    pub object: String,
    /// The input section's name, or for `*`: `stub NAME`, `abs-stub VALUE`,
    /// `got`, `init`, `common NAME`.
    pub section: String,
}

/// Links the files `opts.inputs` into a module.
pub fn link(opts: &Options) -> Result<Linked, LinkError> {
    let inputs = opts
        .inputs
        .iter()
        .map(|p| Input::read(p))
        .collect::<Result<Vec<_>, _>>()?;
    link_inputs(inputs, opts)
}

/// Links inputs already in memory (`opts.inputs` is not read).
pub fn link_inputs(inputs: Vec<Input>, opts: &Options) -> Result<Linked, LinkError> {
    let inputs = expand(inputs)?;
    if inputs.is_empty() {
        fail!("no input objects");
    }
    let mut parsed = Vec::new();
    for (name, bytes, _) in &inputs {
        let file =
            object::File::parse(&bytes[..]).map_err(|e| LinkError(format!("{name}: {e}")))?;
        if file.kind() != object::ObjectKind::Relocatable {
            fail!("{name}: not a relocatable object");
        }
        parsed.push(Some(Obj {
            name: name.clone(),
            file,
            discarded: HashSet::new(),
        }));
    }
    let first = inputs.iter().position(|i| i.2).unwrap_or(0);
    let (arch, machine, is64) = match parsed[first]
        .as_ref()
        .map(|o| (o.file.architecture(), o.file.is_64()))
    {
        Some((object::Architecture::X86_64, true)) => {
            (Arch::Amd64, object::Architecture::X86_64, true)
        }
        Some((object::Architecture::Aarch64, true)) => {
            (Arch::Arm64, object::Architecture::Aarch64, true)
        }
        Some((object::Architecture::Riscv64, true)) => {
            (Arch::Riscv64, object::Architecture::Riscv64, true)
        }
        Some((object::Architecture::Arm, false)) => (Arch::Arm, object::Architecture::Arm, false),
        Some((object::Architecture::Riscv32, false)) => {
            (Arch::Riscv32, object::Architecture::Riscv32, false)
        }
        Some((a, _)) => fail!(
            "{}: architecture {a:?} is not supported yet",
            inputs[first].0
        ),
        None => fail!("no input objects"),
    };
    // Every object must be for that machine: an object of another one is an
    // error, an archive member of another one is skipped, as ld does.
    let mut warnings = Vec::new();
    for (slot, input) in parsed.iter_mut().zip(&inputs) {
        let same = slot
            .as_ref()
            .is_some_and(|o| o.file.architecture() == machine && o.file.is_64() == is64);
        if !same {
            if input.2 {
                fail!(
                    "{}: not an object for {arch} (the first object's machine)",
                    input.0
                );
            }
            warnings.push(format!("{}: skipped: not an object for {arch}", input.0));
            *slot = None;
        }
    }

    // Symbol resolution, pulling archive members while they define
    // something still undefined.
    let mut objs: Vec<Obj<'_>> = Vec::new();
    let mut globals: HashMap<String, Def> = HashMap::new();
    let mut comdats: HashSet<Vec<u8>> = HashSet::new();
    for (i, input) in inputs.iter().enumerate() {
        if input.2 {
            if let Some(o) = parsed[i].take() {
                include(o, &mut objs, &mut globals, &mut comdats)?;
            }
        }
    }
    loop {
        // Wanted: names with a strong reference (a weak reference pulls
        // nothing, as in ld) or named as exports (as `ld -u` makes them)
        // that nothing defines yet, or only as a common symbol.
        let wanted: HashSet<String> = strong_refs(&objs)
            .into_iter()
            .chain(opts.exports.iter().flatten().cloned())
            .collect();
        let mut pulled = false;
        for slot in parsed.iter_mut() {
            // Checked against the definitions so far, so the first member
            // to define a name is the one pulled.
            let defines = slot.as_ref().is_some_and(|o| {
                o.file.symbols().any(|s| {
                    is_global(&s)
                        && !s.is_undefined()
                        && !matches!(s.section(), SymbolSection::Common)
                        && wanted.contains(&sym_name(&s))
                        && matches!(globals.get(&sym_name(&s)), None | Some(Def::Common { .. }))
                })
            });
            if let Some(o) = slot.take_if(|_| defines) {
                include(o, &mut objs, &mut globals, &mut comdats)?;
                pulled = true;
            }
        }
        if !pulled {
            break;
        }
    }
    let strong = strong_refs(&objs);

    // Signatures stated in the sources.
    let mut sigs = SigTable::default();
    for o in &objs {
        for s in o.file.sections() {
            if s.name() == Ok(sigsec::SECTION) {
                let data = s
                    .data()
                    .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
                sigs.add(&o.name, data)?;
            }
        }
    }

    // Exports.
    let mut exports: BTreeMap<String, (usize, SymbolIndex)> = BTreeMap::new();
    let mut common_exports: BTreeSet<String> = BTreeSet::new();
    for (name, def) in &globals {
        let wanted = match &opts.exports {
            Some(set) => set.contains(name),
            None => match def {
                Def::Sym { obj, sym, .. } => objs[*obj]
                    .file
                    .symbol_by_index(*sym)
                    .is_ok_and(|s| is_default_visibility(&s)),
                Def::Common { .. } => true,
            },
        };
        if wanted {
            match def {
                Def::Sym { obj, sym, .. } => {
                    exports.insert(name.clone(), (*obj, *sym));
                }
                Def::Common { .. } => {
                    common_exports.insert(name.clone());
                }
            }
        }
    }
    if let Some(set) = &opts.exports {
        for n in set {
            if !globals.contains_key(n) {
                fail!("exported symbol {n} is not defined");
            }
        }
    }

    // Resolves a symbol reference in object `oi`.
    let resolve = |oi: usize, si: SymbolIndex| -> Result<Resolved, LinkError> {
        let o = &objs[oi];
        let s = o
            .file
            .symbol_by_index(si)
            .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
        if is_global(&s) {
            let name = sym_name(&s);
            return Ok(match globals.get(&name) {
                Some(Def::Sym { obj, sym, .. }) => {
                    let d = objs[*obj]
                        .file
                        .symbol_by_index(*sym)
                        .map_err(|e| LinkError(format!("{}: {e}", objs[*obj].name)))?;
                    match d.section() {
                        SymbolSection::Section(idx) => {
                            Resolved::In(*obj, idx.0, in_section(&objs[*obj], idx, &d)?)
                        }
                        _ => Resolved::Abs(d.address()),
                    }
                }
                Some(Def::Common { .. }) => Resolved::Common(name),
                None if !is_default_visibility(&s) => fail!(
                    "{}: hidden symbol {name} is not defined in the module",
                    o.name
                ),
                // A weak reference nothing defines is 0, as in a static
                // link; it does not become an import.
                None if !strong.contains(&name) => Resolved::Abs(0),
                None => Resolved::Import(name),
            });
        }
        Ok(match s.section() {
            SymbolSection::Section(idx) => Resolved::In(oi, idx.0, in_section(o, idx, &s)?),
            SymbolSection::Absolute => Resolved::Abs(s.address()),
            _ => fail!("{}: local symbol {} has no section", o.name, sym_name(&s)),
        })
    };

    // Section GC from the exports (and constructors).
    let mut keep: HashSet<(usize, usize)> = HashSet::new();
    let mut work: Vec<(usize, usize)> = Vec::new();
    for (o, si) in exports.values() {
        if let Resolved::In(oi, idx, _) = resolve(*o, *si)? {
            work.push((oi, idx));
        }
    }
    for (oi, o) in objs.iter().enumerate() {
        for s in o.file.sections() {
            let name = s.name().unwrap_or("");
            let live = is_init_array(name) || !opts.gc && part_of(o, &s)?.is_some();
            if live && !o.discarded.contains(&s.index()) {
                work.push((oi, s.index().0));
            }
        }
    }
    let mut commons_used: BTreeSet<String> = common_exports.clone();
    let mut imports_used: BTreeSet<String> = BTreeSet::new();
    while let Some((oi, idx)) = work.pop() {
        if objs[oi].discarded.contains(&SectionIndex(idx)) {
            fail!(
                "{}: reference to section {} of a discarded COMDAT group",
                objs[oi].name,
                sec_name(&objs[oi], SectionIndex(idx))
            );
        }
        if !keep.insert((oi, idx)) {
            continue;
        }
        let sec = objs[oi]
            .file
            .section_by_index(SectionIndex(idx))
            .map_err(|e| LinkError(format!("{}: {e}", objs[oi].name)))?;
        for (_, r) in sec.relocations() {
            if let RelocationTarget::Symbol(si) = r.target() {
                match resolve(oi, si)? {
                    Resolved::In(o2, i2, _) => work.push((o2, i2)),
                    Resolved::Common(n) => {
                        commons_used.insert(n);
                    }
                    Resolved::Import(n) => {
                        imports_used.insert(n);
                    }
                    Resolved::Abs(_) => {}
                }
            }
        }
    }

    // Layout, first pass: sections within their parts, common symbols in
    // bss, and which stubs, GOT slots and constructors are needed.
    let backend: &dyn Machine = match arch {
        Arch::Amd64 => &x86_64::Backend,
        Arch::Arm64 => &aarch64::Backend,
        Arch::Riscv64 => &riscv::Backend { xlen: 64 },
        Arch::Riscv32 => &riscv::Backend { xlen: 32 },
        Arch::Arm => &arm::Backend,
        Arch::I386 => fail!("the linker does not support {arch} (i386) modules"),
    };
    let ws = arch.word_size() as u64;
    let mut place: HashMap<(usize, usize), (Part, u64)> = HashMap::new();
    let mut sizes = [0u64; 3];
    let mut align_of = [1u64; 3];
    let mut kept: Vec<(usize, usize)> = keep.iter().copied().collect();
    kept.sort();
    let mut init_sections = Vec::new();
    let mut stub_names: BTreeSet<String> = BTreeSet::new();
    // Calls to absolute addresses (weak functions nothing defines, at 0).
    let mut abs_stub_values: BTreeSet<u64> = BTreeSet::new();
    let mut got_keys: BTreeSet<Resolved> = BTreeSet::new();
    // Calls inside the module, by target and addend (for veneers).
    let mut far_calls: BTreeSet<(Resolved, i64)> = BTreeSet::new();
    for &(oi, idx) in &kept {
        let o = &objs[oi];
        let s = o
            .file
            .section_by_index(SectionIndex(idx))
            .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
        let name = s.name().unwrap_or("");
        if is_init_array(name) {
            init_sections.push((oi, idx, name.to_owned()));
            continue;
        }
        let Some(part) = part_of(o, &s)? else {
            continue;
        };
        let p = part as usize;
        let a = s.align().max(1);
        if !a.is_power_of_two() || a > 1 << 16 {
            fail!("{}: section {name}: alignment {a} not supported", o.name);
        }
        sizes[p] = round(sizes[p], a)?;
        place.insert((oi, idx), (part, sizes[p]));
        sizes[p] = grow(sizes[p], s.size())?;
        align_of[p] = align_of[p].max(a);
        for (off, r) in s.relocations() {
            let (RelocationFlags::Elf { r_type }, RelocationTarget::Symbol(si)) =
                (r.flags(), r.target())
            else {
                continue;
            };
            let res = resolve(oi, si)?;
            if let (Need::Stub, Resolved::In(..), Some(_)) =
                (backend.needs(r_type), &res, backend.branch_reach())
            {
                // A call inside the module: it may need a veneer if the
                // text outgrows the branch's reach.
                let field = usize::try_from(off)
                    .ok()
                    .and_then(|o| s.data().ok()?.get(o..o.checked_add(4)?));
                let a = if r.has_implicit_addend() {
                    field.map_or(0, |f| backend.call_addend(r_type, f))
                } else {
                    r.addend()
                };
                far_calls.insert((res.clone(), a));
            }
            match backend.needs(r_type) {
                Need::Got => {
                    got_keys.insert(res);
                }
                Need::Stub => match &res {
                    Resolved::Import(n) => {
                        stub_names.insert(n.clone());
                        got_keys.insert(res);
                    }
                    Resolved::Abs(v) => {
                        abs_stub_values.insert(*v);
                    }
                    _ => {}
                },
                Need::None => {}
            }
        }
    }
    // Text beyond a direct call's reach: lay the text out again with an
    // island before every stretch of half the reach, each island holding a
    // veneer for every call target inside the module and a copy of every
    // import's stub, so every call site has an island within reach.
    let veneers_len = backend.veneer_size() * far_calls.len() as u64;
    let island_len = veneers_len + backend.stub_size() * stub_names.len() as u64;
    let mut islands: Vec<u64> = Vec::new();
    match backend.branch_reach() {
        Some(reach) if island_len > 0 && sizes[0] >= reach / 2 => {
            let chunk = reach / 2;
            let mut off = 0u64;
            let mut last: Option<u64> = None;
            for key in &kept {
                let Some(&(Part::Text, _)) = place.get(key) else {
                    continue;
                };
                let s = objs[key.0]
                    .file
                    .section_by_index(SectionIndex(key.1))
                    .map_err(|e| LinkError(format!("{}: {e}", objs[key.0].name)))?;
                let start = round(off, s.align().max(1))?;
                if last.is_none_or(|l| start.saturating_add(s.size()) - l > chunk) {
                    off = round(off, 16)?;
                    islands.push(off);
                    last = Some(off);
                    off = grow(off, island_len)?;
                }
                off = round(off, s.align().max(1))?;
                place.insert(*key, (Part::Text, off));
                off = grow(off, s.size())?;
            }
            sizes[0] = off;
        }
        _ => {}
    }
    let mut common_at: HashMap<String, u64> = HashMap::new();
    for name in &commons_used {
        if let Some(Def::Common { size, align, .. }) = globals.get(name) {
            if !align.is_power_of_two() || *align > 1 << 16 {
                fail!("common symbol {name}: alignment {align} not supported");
            }
            sizes[2] = round(sizes[2], *align)?;
            common_at.insert(name.clone(), sizes[2]);
            sizes[2] = grow(sizes[2], *size)?;
            align_of[2] = align_of[2].max(*align);
        }
    }
    // Constructors, in priority order, then in input order.
    init_sections.sort_by_key(|(oi, _, name)| (init_priority(name), *oi));
    let mut init_targets: Vec<Resolved> = Vec::new();
    for (oi, idx, name) in &init_sections {
        let o = &objs[*oi];
        let s = o
            .file
            .section_by_index(SectionIndex(*idx))
            .map_err(|e| LinkError(e.to_string()))?;
        let mut entries = Vec::new();
        for (off, r) in s.relocations() {
            let RelocationTarget::Symbol(si) = r.target() else {
                continue;
            };
            // A static constructor is often its section's symbol plus an
            // offset.
            let at = match resolve(*oi, si)? {
                Resolved::In(a, b, v) => u64::try_from(r.addend())
                    .ok()
                    .and_then(|x| v.checked_add(x))
                    .map(|v| (a, b, v)),
                _ => None,
            };
            let size = |a: usize, b: usize| {
                objs[a]
                    .file
                    .section_by_index(SectionIndex(b))
                    .map_or(0, |s| s.size())
            };
            match at {
                Some((a, b, v)) if v < size(a, b) => entries.push((off, Resolved::In(a, b, v))),
                _ => fail!(
                    "{}: section {name}+{off:#x}: constructor is not a function defined in the module",
                    o.name
                ),
            }
        }
        entries.sort_by_key(|e| e.0);
        init_targets.extend(entries.into_iter().map(|e| e.1));
    }

    // Final layout: text sections, stubs, init function | page | data, GOT | bss.
    let stub_start = round(sizes[0], 16)?;
    let stubs: BTreeMap<String, u64> = stub_names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), stub_start + i as u64 * backend.stub_size()))
        .collect();
    let abs_start = stub_start + stubs.len() as u64 * backend.stub_size();
    let abs_stubs: BTreeMap<u64, u64> = abs_stub_values
        .iter()
        .enumerate()
        .map(|(i, v)| (*v, abs_start + i as u64 * backend.abs_stub_size()))
        .collect();
    let init_at = abs_start + abs_stubs.len() as u64 * backend.abs_stub_size();
    let text_end = if init_targets.is_empty() {
        init_at
    } else {
        init_at + backend.init_size(init_targets.len())
    };
    // Data starts on a page, and on its strictest alignment.
    let dataoff = round(
        text_end,
        backend.page_size().max(align_of[1]).max(align_of[2]),
    )?;
    let got_start = round(sizes[1], ws)?;
    let data_len = grow(got_start, ws * got_keys.len() as u64)?;
    let bss_start = round(data_len, align_of[2])?;
    let image_end = grow(grow(dataoff, bss_start)?, sizes[2])?;
    let addr = |r: &Resolved| -> Option<Target> {
        Some(match r {
            Resolved::In(oi, idx, off) => {
                let (part, at) = *place.get(&(*oi, *idx))?;
                Target::Local(
                    off + match part {
                        Part::Text => at,
                        Part::Data => dataoff + at,
                        Part::Bss => dataoff + bss_start + at,
                    },
                )
            }
            Resolved::Abs(v) => Target::Abs(*v),
            Resolved::Common(n) => Target::Local(dataoff + bss_start + common_at.get(n)?),
            Resolved::Import(n) => Target::Import(n.clone()),
        })
    };

    // Second pass: write the GOT, stubs, init function and sections.
    let mut img = Image {
        text: vec![0; text_end as usize],
        data: vec![0; data_len as usize],
        dataoff,
        got: BTreeMap::new(),
        relocs: Vec::new(),
        pcrel_hi: HashMap::new(),
        veneers: BTreeMap::new(),
        stub_copies: BTreeMap::new(),
    };
    for (i, k) in got_keys.iter().enumerate() {
        let slot = dataoff + got_start + ws * i as u64;
        let t =
            addr(k).ok_or_else(|| LinkError(format!("GOT entry for a dropped symbol: {k:?}")))?;
        backend.write_word(&mut img, slot, &t)?;
        img.got.insert(t, slot);
    }
    for (n, at) in &stubs {
        let slot = img.got[&Target::Import(n.clone())];
        backend.write_stub(&mut img, *at, slot)?;
    }
    for (v, at) in &abs_stubs {
        backend.write_abs_stub(&mut img, *at, *v)?;
    }
    for island in &islands {
        for (i, (res, a)) in far_calls.iter().enumerate() {
            let at = island + i as u64 * backend.veneer_size();
            let Some(Target::Local(v)) = addr(res) else {
                fail!("call to a dropped section");
            };
            let to = v
                .checked_add_signed(*a)
                .ok_or_else(|| LinkError("call target outside the module".into()))?;
            backend.write_veneer(&mut img, at, to)?;
            img.veneers.entry(to).or_default().push(at);
        }
        for (j, n) in stub_names.iter().enumerate() {
            let at = island + veneers_len + j as u64 * backend.stub_size();
            let slot = img.got[&Target::Import(n.clone())];
            backend.write_stub(&mut img, at, slot)?;
            img.stub_copies.entry(n.clone()).or_default().push(at);
        }
    }
    if !init_targets.is_empty() {
        let targets: Vec<u64> = init_targets
            .iter()
            .map(|r| match addr(r) {
                Some(Target::Local(v)) => Ok(v),
                _ => Err(LinkError("constructor in a dropped section".into())),
            })
            .collect::<Result<_, _>>()?;
        backend.write_init(&mut img, init_at, &targets)?;
    }
    for &(oi, idx) in &kept {
        let Some(&(part, _)) = place.get(&(oi, idx)) else {
            continue;
        };
        let o = &objs[oi];
        let s = o
            .file
            .section_by_index(SectionIndex(idx))
            .map_err(|e| LinkError(e.to_string()))?;
        let Some(Target::Local(base)) = addr(&Resolved::In(oi, idx, 0)) else {
            continue;
        };
        if part != Part::Bss {
            let data = s
                .data()
                .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
            img.put(base, data)?;
        }
        let sname = s.name().unwrap_or("?").to_owned();
        // No two relocations may patch the same bytes: the result would
        // depend on their order, and the loader refuses overlapping fields.
        let mut fields: Vec<(u64, u64, u32)> = s
            .relocations()
            .filter_map(|(off, r)| match r.flags() {
                RelocationFlags::Elf { r_type } => Some((off, backend.width(r_type), r_type)),
                _ => None,
            })
            .filter(|f| f.1 > 0)
            .collect();
        fields.sort_unstable();
        for w in fields.windows(2) {
            let same = w[0].0 == w[1].0 && w[0].1 == w[1].1;
            if w[0].0.saturating_add(w[0].1) > w[1].0
                && !(same && backend.may_share(w[0].2, w[1].2))
            {
                fail!(
                    "{}: section {sname}+{:#x}: relocation {} overlaps relocation {} at +{:#x}",
                    o.name,
                    w[1].0,
                    backend.type_name(w[1].2),
                    backend.type_name(w[0].2),
                    w[0].0
                );
            }
        }
        for (i, f) in fields.iter().enumerate() {
            let partner = |j: Option<usize>| {
                j.and_then(|j| fields.get(j))
                    .is_some_and(|g| g.0 == f.0 && g.1 == f.1 && backend.may_share(f.2, g.2))
            };
            if backend.must_pair(f.2) && !partner(i.checked_sub(1)) && !partner(Some(i + 1)) {
                fail!(
                    "{}: section {sname}+{:#x}: relocation {} has no paired relocation at the same place",
                    o.name,
                    f.0,
                    backend.type_name(f.2)
                );
            }
        }
        // Some types must be applied before others (the high parts that
        // low parts refer to); otherwise in offset order.
        let mut relocs: Vec<_> = s.relocations().collect();
        relocs.sort_by_key(|(off, r)| match r.flags() {
            RelocationFlags::Elf { r_type } => (backend.pass(r_type), *off),
            _ => (0, *off),
        });
        for (off, r) in relocs {
            let RelocationFlags::Elf { r_type } = r.flags() else {
                fail!(
                    "{}: section {sname}+{off:#x}: unexpected relocation kind",
                    o.name
                )
            };
            let (target, tname) = match r.target() {
                RelocationTarget::Symbol(si) => {
                    let name = o
                        .file
                        .symbol_by_index(si)
                        .map(|s| sym_name(&s))
                        .unwrap_or_default();
                    let t = addr(&resolve(oi, si)?).ok_or_else(|| {
                        LinkError(format!(
                            "{}: section {sname}+{off:#x}: relocation against {name}, whose section was dropped",
                            o.name
                        ))
                    })?;
                    (t, name)
                }
                RelocationTarget::Absolute => (Target::Abs(0), String::from("*ABS*")),
                _ => fail!(
                    "{}: section {sname}+{off:#x}: unsupported relocation target",
                    o.name
                ),
            };
            if r.has_implicit_addend() && !backend.implicit_addends() {
                fail!(
                    "{}: section {sname}+{off:#x}: relocations with implicit addends are not supported for {arch}",
                    o.name
                );
            }
            let what = || {
                format!(
                    "{}: section {sname}+{off:#x}: relocation {} against {tname}",
                    o.name,
                    backend.type_name(r_type)
                )
            };
            if part == Part::Bss {
                fail!("{}: relocation in a bss section", what());
            }
            let width = backend.width(r_type);
            if off.checked_add(width).is_none_or(|end| end > s.size()) {
                fail!("{}: field outside its section", what());
            }
            backend.apply(
                &mut img,
                &Reloc {
                    r_type,
                    offset: base + off,
                    addend: r.addend(),
                    target,
                    what: &what,
                    implicit: r.has_implicit_addend(),
                },
                &stubs,
                &abs_stubs,
            )?;
        }
    }

    // The module: exports and imports with the signatures stated in the sources.
    let too_big = || LinkError("module too large".into());
    let mut b = ModuleBuilder::new(arch);
    b.text(&img.text)
        .data(&img.data)
        .bss(u32::try_from(image_end - dataoff - data_len).map_err(|_| too_big())?)
        .data_offset(u32::try_from(dataoff).map_err(|_| too_big())?)
        .align(
            align_of
                .iter()
                .copied()
                .max()
                .unwrap_or(16)
                .max(backend.base_align())
                .max(
                    img.relocs
                        .iter()
                        .filter_map(|r| dynld::arch::mode(arch, r.mode))
                        .map(|m| u64::from(m.base_align))
                        .max()
                        .unwrap_or(1),
                ) as u32,
        );
    if !init_targets.is_empty() {
        b.entry(u32::try_from(backend.code_address(init_at)).map_err(|_| too_big())?);
    }
    b.text_file_align(match opts.text_align {
        TextAlign::Auto if arch.word_size() == 8 && img.text.len() >= TEXT_ALIGN_AUTO_MIN => 4096,
        TextAlign::Auto => 1,
        TextAlign::Bytes(n) => n,
    });
    b.index(match opts.index {
        IndexMode::Auto => exports.len() >= INDEX_AUTO_MIN,
        IndexMode::Always => true,
        IndexMode::Never => false,
    });
    // The loader's rule: an export lies in the text, or in data and bss.
    let inside = |v: u64| v < text_end || (v >= dataoff && v < image_end);
    for (name, (o, si)) in &exports {
        let t = addr(&resolve(*o, *si)?);
        if matches!(t, Some(Target::Abs(_))) && opts.exports.is_some() {
            fail!(
                "{}: cannot export {name}: it is an absolute symbol, not part of the module",
                objs[*o].name
            );
        }
        if let Some(Target::Local(v)) = t {
            if !inside(v) {
                fail!(
                    "{}: cannot export {name}: it lies at the end of its section, outside the module",
                    objs[*o].name
                );
            }
            b.export(
                name,
                sigs.get(name),
                u32::try_from(v).map_err(|_| too_big())?,
            );
        }
    }
    for name in &common_exports {
        if let Some(Target::Local(v)) = addr(&Resolved::Common(name.clone())) {
            if !inside(v) {
                fail!("cannot export {name}: an empty common symbol at the end of the module");
            }
            b.export(
                name,
                sigs.get(name),
                u32::try_from(v).map_err(|_| too_big())?,
            );
        }
    }
    let mut import_index: HashMap<String, u32> = HashMap::new();
    for r in &img.relocs {
        let idx = r.import.as_ref().map(|n| {
            *import_index
                .entry(n.clone())
                .or_insert_with(|| b.import(n, sigs.get(n)))
        });
        if let Some(reach) = dynld::arch::mode(arch, r.mode).and_then(|m| m.pc_reach) {
            warnings.push(format!(
                "{} is reached with {}: the module loads only within {} GiB of it (compile with -fPIC to avoid this)",
                r.import.as_deref().unwrap_or("?"),
                reach.how,
                reach.bytes >> 30
            ));
        }
        b.reloc(u32::try_from(r.offset).map_err(|_| too_big())?, r.mode, idx);
    }
    b.import_hashes(match opts.import_hashes {
        IndexMode::Auto => import_index.len() >= IMPORT_HASHES_AUTO_MIN,
        IndexMode::Always => true,
        IndexMode::Never => false,
    });
    if img
        .relocs
        .iter()
        .any(|r| dynld::arch::mode(arch, r.mode).is_some_and(|m| m.low2g))
    {
        b.flags(dynld::format::FLAG_LOW2G);
    }
    let bytes = b
        .build()
        .map_err(|e| LinkError(format!("writing the module: {e}")))?;
    let mut map = Vec::new();
    for &(oi, idx) in &kept {
        if let Some(Target::Local(at)) = addr(&Resolved::In(oi, idx, 0)) {
            let o = &objs[oi];
            let size = o
                .file
                .section_by_index(SectionIndex(idx))
                .map_or(0, |s| s.size());
            map.push(MapEntry {
                offset: at,
                size,
                object: o.name.clone(),
                section: sec_name(o, SectionIndex(idx)),
            });
        }
    }
    let synth = |offset: u64, size: u64, section: String| MapEntry {
        offset,
        size,
        object: "*".into(),
        section,
    };
    for (n, at) in &stubs {
        map.push(synth(*at, backend.stub_size(), format!("stub {n}")));
    }
    for (v, at) in &abs_stubs {
        map.push(synth(
            *at,
            backend.abs_stub_size(),
            format!("abs-stub {v:#x}"),
        ));
    }
    for island in &islands {
        for (i, (_, a)) in far_calls.iter().enumerate() {
            map.push(synth(
                island + i as u64 * backend.veneer_size(),
                backend.veneer_size(),
                format!("veneer {a:+}"),
            ));
        }
        for (j, n) in stub_names.iter().enumerate() {
            map.push(synth(
                island + veneers_len + j as u64 * backend.stub_size(),
                backend.stub_size(),
                format!("stub {n}"),
            ));
        }
    }
    if !init_targets.is_empty() {
        map.push(synth(init_at, text_end - init_at, "init".into()));
    }
    if !got_keys.is_empty() {
        map.push(synth(
            dataoff + got_start,
            data_len - got_start,
            "got".into(),
        ));
    }
    for (n, at) in &common_at {
        if let Some(Def::Common { size, .. }) = globals.get(n) {
            map.push(synth(
                dataoff + bss_start + at,
                *size,
                format!("common {n}"),
            ));
        }
    }
    map.sort_by(|a, b| (a.offset, &a.object, &a.section).cmp(&(b.offset, &b.object, &b.section)));
    Ok(Linked {
        bytes,
        warnings,
        map,
    })
}

/// Sort key of constructor sections: `.init_array.N` by N, plain last.
fn init_priority(name: &str) -> (u32, u32) {
    match name
        .rsplit_once('.')
        .and_then(|(_, n)| n.parse::<u32>().ok())
    {
        Some(p) => (0, p),
        None => (1, 0),
    }
}

/// A resolved symbol reference.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Resolved {
    In(usize, usize, u64),
    Abs(u64),
    Common(String),
    Import(String),
}

/// The per-architecture half of the linker: how each ELF relocation type
/// is resolved, and the code the linker synthesises (stubs, init function).
pub(crate) trait Machine {
    /// What `r_type` needs beyond the field itself.
    fn needs(&self, r_type: u32) -> Need;
    /// Bytes a relocation type patches (0: none).
    fn width(&self, r_type: u32) -> u64;
    /// Whether two relocations of these types may patch the same field
    /// (they then combine, as RISC-V's paired ADD/SUB do).
    fn may_share(&self, _a: u32, _b: u32) -> bool {
        false
    }
    /// Whether a relocation of this type is only meaningful with a partner
    /// sharing its field (see [`may_share`](Machine::may_share)).
    fn must_pair(&self, _r_type: u32) -> bool {
        false
    }
    /// Relocations of a section are applied in order of pass, then offset.
    fn pass(&self, _r_type: u32) -> u8 {
        0
    }
    /// How far a direct call reaches (either way), if veneers may be
    /// needed for calls inside the module.
    fn branch_reach(&self) -> Option<u64> {
        None
    }
    /// The addend of a call, from the field (`REL` objects), such that
    /// `S + A` is the address called.
    fn call_addend(&self, _r_type: u32, _field: &[u8]) -> i64 {
        0
    }
    /// Bytes in a veneer.
    fn veneer_size(&self) -> u64 {
        0
    }
    /// Writes a veneer at `at` jumping to image offset `to`.
    fn write_veneer(&self, _img: &mut Image, _at: u64, _to: u64) -> Result<(), LinkError> {
        Err(LinkError("no veneers on this machine".into()))
    }
    /// Whether objects for this machine carry addends in the patched field
    /// (ELF `REL`), which the backend reads itself.
    fn implicit_addends(&self) -> bool {
        false
    }
    /// The address to call for code at image offset `v` (Thumb sets bit 0).
    fn code_address(&self, v: u64) -> u64 {
        v
    }
    /// Page size: data starts on a page.
    fn page_size(&self) -> u64;
    /// Alignment the module asks of its load base for what the linker
    /// resolved itself (each load-time mode adds its own, from
    /// `dynld::arch::Mode::base_align`).
    fn base_align(&self) -> u64 {
        16
    }
    /// Bytes in a stub that jumps through an import's GOT slot.
    fn stub_size(&self) -> u64;
    /// Writes a stub at `at` jumping through the GOT slot at `slot`.
    fn write_stub(&self, img: &mut Image, at: u64, slot: u64) -> Result<(), LinkError>;
    /// Bytes in a stub that jumps to an absolute address.
    fn abs_stub_size(&self) -> u64;
    /// Writes a stub at `at` jumping to the absolute address `v`.
    fn write_abs_stub(&self, img: &mut Image, at: u64, v: u64) -> Result<(), LinkError>;
    /// Bytes in an init function calling `n` constructors.
    fn init_size(&self, n: usize) -> u64;
    /// Writes the init function at `at`, calling `targets` in order.
    fn write_init(&self, img: &mut Image, at: u64, targets: &[u64]) -> Result<(), LinkError>;
    /// Writes an address-sized word holding `t` (a GOT slot).
    fn write_word(&self, img: &mut Image, at: u64, t: &Target) -> Result<(), LinkError>;
    /// The relocation type's name, for messages.
    fn type_name(&self, r_type: u32) -> String;
    /// Resolves one relocation.
    fn apply(
        &self,
        img: &mut Image,
        r: &Reloc<'_>,
        stubs: &BTreeMap<String, u64>,
        abs_stubs: &BTreeMap<u64, u64>,
    ) -> Result<(), LinkError>;
}

/// What a relocation type needs beyond the field itself.
pub(crate) enum Need {
    None,
    Got,
    Stub,
}

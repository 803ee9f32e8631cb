//! The module file: the image, its exports and imports with the signatures
//! stated in the sources, and its load-time relocations, written through
//! `dynld::ModuleBuilder`.

use super::image::{Image, Target};
use super::layout::Layout;
use super::machine::Machine;
use super::obj::{is_global, sym_type, Obj};
use super::resolve::{Def, Exports, Resolved, Symbols};
use super::{fail, IndexMode, LinkError, Options, TextAlign};
use super::{IMPORT_HASHES_AUTO_MIN, INDEX_AUTO_MIN, TEXT_ALIGN_AUTO_MIN};
use crate::sigsec::{self, SigTable};
use dynld::{Arch, Limits, ModuleBuilder};
use object::{Object, ObjectSection, ObjectSymbol, SymbolSection};
use std::collections::{HashMap, HashSet};

/// The signatures stated in the objects' signature sections, and beside
/// them those their debug information gives.
pub(super) fn signatures(objs: &[Obj<'_>]) -> Result<SigTable, LinkError> {
    let mut sigs = SigTable::default();
    for o in objs {
        for s in o.file.sections() {
            if s.name() == Ok(sigsec::SECTION) {
                let data = s
                    .data()
                    .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
                sigs.add(&o.name, data)?;
            }
        }
    }
    let mut debug = Vec::new();
    for o in objs {
        let got =
            crate::dwarfsig::read(&o.file).map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
        debug.extend(got.into_iter().map(|d| (d, o.name.clone())));
    }
    sigs.add_debug(debug);
    Ok(sigs)
}

/// What the module needs beyond its image.
pub(super) struct Module<'a, 'd> {
    pub arch: Arch,
    /// The backend.
    pub m: &'a dyn Machine,
    pub syms: &'a Symbols<'d>,
    pub exports: &'a Exports,
    /// The signatures stated in the sources, for exports and imports.
    pub sigs: &'a SigTable,
    /// The module's metadata, if its sources state some.
    pub meta: Option<&'a dynld::meta::MetaSpec>,
    pub lay: &'a Layout,
    /// The unwind table (`--unwind`): its place and bytes.
    pub unwind: Option<&'a (u32, Vec<u8>)>,
    /// The debug file's path and CRC-32 (`--debug`).
    pub debuglink: Option<(&'a str, u32)>,
}

/// The module file.
pub(super) struct Emitted {
    /// The module file's bytes.
    pub bytes: Vec<u8>,
    /// About imports the module reaches PC-relatively.
    pub warnings: Vec<String>,
}

fn too_big() -> LinkError {
    LinkError("module too large".into())
}

/// A `u32` field of the module.
fn field(v: u64) -> Result<u32, LinkError> {
    u32::try_from(v).map_err(|_| too_big())
}

/// Writes the module for image `img`.
pub(super) fn emit(img: &Image, md: &Module<'_, '_>, opts: &Options) -> Result<Emitted, LinkError> {
    let Module {
        arch,
        m,
        exports,
        lay,
        ..
    } = *md;
    let mut b = ModuleBuilder::new(arch);
    // The base alignment: the parts', the backend's and the modes'.
    let mode_align = img
        .relocs
        .iter()
        .filter_map(|r| dynld::arch::mode(arch, r.mode))
        .map(|mode| u64::from(mode.base_align))
        .max()
        .unwrap_or(1);
    let align = lay
        .align
        .iter()
        .copied()
        .max()
        .unwrap_or(16)
        .max(m.base_align())
        .max(mode_align);
    b.text(&img.text)
        .data(&img.data)
        .bss(field(lay.image_end - lay.dataoff - lay.data_len)?)
        .data_offset(field(lay.dataoff)?)
        .align(align as u32);
    let code = |r: &Resolved, what: &str| match lay.addr(r) {
        Some(Target::Local(v)) => field(m.code_address(v)),
        _ => fail!("{what} in a dropped section"),
    };
    for r in &lay.init {
        b.init(code(r, "constructor")?);
    }
    for r in &lay.fini {
        b.fini(code(r, "destructor")?);
    }
    b.text_file_align(match opts.text_align {
        TextAlign::Auto if arch.word_size() == 8 && img.text.len() >= TEXT_ALIGN_AUTO_MIN => 4096,
        TextAlign::Auto => 1,
        TextAlign::Bytes(n) => n,
    });
    b.index(match opts.index {
        IndexMode::Auto => exports.syms.len() >= INDEX_AUTO_MIN,
        IndexMode::Always => true,
        IndexMode::Never => false,
    });
    let exported = export(&mut b, md, opts)?;
    if let Some(spec) = md.meta {
        b.metadata(spec.clone());
    }
    if let Some((at, bytes)) = md.unwind {
        b.unwind(*at, bytes);
    }
    if let Some((path, crc)) = md.debuglink {
        b.debuglink(path, crc);
    }
    let table = match opts.strip_symbols {
        false => symbols(&mut b, md)?,
        true => SymbolsAdded::default(),
    };
    let (imports, mut warnings) = relocations(&mut b, img, md)?;
    // What the debug information said against the sources, or could not
    // say, of what the module exports and imports.
    let import_names: std::collections::BTreeSet<&str> = img
        .relocs
        .iter()
        .filter_map(|r| r.import.as_deref())
        .collect();
    let named = md
        .exports
        .syms
        .keys()
        .chain(&md.exports.commons)
        .map(String::as_str);
    for name in named.chain(import_names) {
        warnings.extend(md.sigs.notes(name).iter().cloned());
    }
    check_counts(img, md, exported, imports, &table)?;
    if exported == 0 {
        // A module may work by its constructors alone (registering itself
        // with the host); otherwise nothing in it can be reached.
        let what = "the module exports nothing: name exports with --export, or state them with DYNLD_EXPORT / export_sig!";
        if lay.init.is_empty() && lay.fini.is_empty() {
            fail!("{what}");
        }
        warnings.insert(
            0,
            format!("{what} (it has constructors or destructors, which may be all it needs)"),
        );
    }
    b.import_hashes(match opts.import_hashes {
        IndexMode::Auto => imports >= IMPORT_HASHES_AUTO_MIN,
        IndexMode::Always => true,
        IndexMode::Never => false,
    });
    if img
        .relocs
        .iter()
        .any(|r| dynld::arch::mode(arch, r.mode).is_some_and(|mode| mode.low2g))
    {
        b.flags(dynld::format::FLAG_LOW2G);
    }
    let bytes = b
        .build()
        .map_err(|e| LinkError(format!("writing the module: {e}")))?;
    // What the checks above missed, the reader would refuse: better said
    // now than when the module is loaded.
    if let Err(e) = dynld::ModuleView::parse(&bytes, &Limits::DEFAULT) {
        fail!("the module written would be refused by dynld's loader with its default limits: {e}");
    }
    Ok(Emitted { bytes, warnings })
}

/// The longest name the loader takes by default.
const MAX_NAME: usize = dynld::MAX_NAME as usize;

/// `name`, shortened for a message if long.
fn abbreviated(name: &str) -> String {
    match name.char_indices().nth(32) {
        Some((at, _)) => format!("{}...", &name[..at]),
        None => name.to_owned(),
    }
}

/// Refuses export or import (`what`) `name` of `origin` if it is longer
/// than the loader takes by default ([`dynld::MAX_NAME`]).
fn check_name(origin: &str, what: &str, name: &str) -> Result<(), LinkError> {
    if name.len() > MAX_NAME {
        fail!(
            "{origin}: {what} {} ({} bytes): the name is longer than {MAX_NAME} bytes, the most dynld's loader takes by default (dynld::MAX_NAME)",
            abbreviated(name),
            name.len()
        );
    }
    Ok(())
}

/// The first object referring to `name` without defining it.
fn referrer(syms: &Symbols<'_>, name: &str) -> String {
    syms.objs
        .iter()
        .find(|o| {
            o.file
                .symbols()
                .any(|s| s.is_undefined() && s.name_bytes() == Ok(name.as_bytes()))
        })
        .map_or_else(|| "?".to_owned(), |o| o.name.clone())
}

/// Refuses a module with more exports, imports, relocations, constructors
/// or destructors, or a larger string table, than the loader takes by
/// default ([`Limits::DEFAULT`]), naming which.
fn check_counts(
    img: &Image,
    md: &Module<'_, '_>,
    exports: usize,
    imports: usize,
    table: &SymbolsAdded,
) -> Result<(), LinkError> {
    let lim = Limits::DEFAULT;
    let import_relocs = img.relocs.iter().filter(|r| r.import.is_some()).count();
    let described = |n: &str| md.sigs.desc(n).map_or(0, str::len);
    let export_names = md.exports.syms.keys().chain(&md.exports.commons);
    let import_names: std::collections::BTreeSet<&str> = img
        .relocs
        .iter()
        .filter_map(|r| r.import.as_deref())
        .collect();
    let strings: usize = export_names
        .map(|n| n.len() + described(n))
        .chain(import_names.iter().map(|n| n.len() + described(n)))
        .sum::<usize>()
        + table.name_bytes
        + md.meta.map_or(0, meta_string_bytes);
    let counts: [(&str, usize, u32, &str); 8] = [
        ("exports", exports, lim.max_exports, "max_exports"),
        ("imports", imports, lim.max_imports, "max_imports"),
        (
            "base relocations",
            img.relocs.len() - import_relocs,
            lim.max_relocs,
            "max_relocs",
        ),
        (
            "import relocations",
            import_relocs,
            lim.max_relocs,
            "max_relocs",
        ),
        (
            "constructors",
            md.lay.init.len(),
            lim.max_relocs,
            "max_relocs",
        ),
        (
            "destructors",
            md.lay.fini.len(),
            lim.max_relocs,
            "max_relocs",
        ),
        (
            "entries in the symbols table (--strip-symbols leaves it out)",
            table.count,
            lim.max_relocs,
            "max_relocs",
        ),
        (
            "bytes of names and type descriptions",
            strings,
            lim.max_strings,
            "max_strings",
        ),
    ];
    for (what, n, max, field) in counts {
        if n > max as usize {
            fail!(
                "the module has {n} {what}: more than dynld's loader takes by default (at most {max}, dynld::Limits::DEFAULT.{field})"
            );
        }
    }
    Ok(())
}

/// Bytes the metadata adds to the string table.
fn meta_string_bytes(m: &dynld::meta::MetaSpec) -> usize {
    m.name.len()
        + m.class.len()
        + m.abis.iter().map(|a| a.0.len()).sum::<usize>()
        + m.dependencies.iter().map(|d| d.0.len()).sum::<usize>()
}

/// Adds the exports, which the loader's rule puts in the text, or in data
/// and bss; how many.
fn export(b: &mut ModuleBuilder, md: &Module<'_, '_>, opts: &Options) -> Result<usize, LinkError> {
    let mut n = 0;
    let (lay, objs) = (md.lay, &md.syms.objs);
    let inside = |v: u64| v < lay.text_end || (v >= lay.dataoff && v < lay.image_end);
    for (name, (o, si)) in &md.exports.syms {
        check_name(&objs[*o].name, "export", name)?;
        let t = lay.addr(&md.syms.resolve(*o, *si)?);
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
            b.export(name, md.sigs.get(name), field(v)?);
            describe(b, md.sigs, name, true);
            n += 1;
        }
    }
    for name in &md.exports.commons {
        check_name("common symbol", "export", name)?;
        if let Some(Target::Local(v)) = lay.addr(&Resolved::Common(name.clone())) {
            if !inside(v) {
                fail!("cannot export {name}: an empty common symbol at the end of the module");
            }
            b.export(name, md.sigs.get(name), field(v)?);
            describe(b, md.sigs, name, true);
            n += 1;
        }
    }
    Ok(n)
}

/// What [`symbols`] added to the module.
#[derive(Default)]
struct SymbolsAdded {
    /// Entries.
    count: usize,
    /// Bytes of names the string table gains (those of no export, each
    /// name once).
    name_bytes: usize,
}

/// Adds the symbols table: every function (`STT_FUNC`) and data object
/// (`STT_OBJECT`) with a name and a size in a section the module keeps,
/// local (`static`) ones of every object as well as the global
/// definitions the link chose, and the common symbols. Two objects' local
/// symbols of one name are both listed. A name longer than the loader
/// takes is left out, as is a symbol that does not lie inside the text or
/// inside data and bss.
fn symbols(b: &mut ModuleBuilder, md: &Module<'_, '_>) -> Result<SymbolsAdded, LinkError> {
    let (lay, syms) = (md.lay, md.syms);
    let inside = |v: u64, size: u64| {
        let end = v.saturating_add(size);
        end <= lay.text_end || (v >= lay.dataoff && end <= lay.image_end)
    };
    let mut added = SymbolsAdded::default();
    let mut names: HashSet<&str> = HashSet::new();
    let mut add = |b: &mut ModuleBuilder, name, v, size, exported| -> Result<(), LinkError> {
        b.symbol(name, field(v)?, field(size)?, exported);
        added.count += 1;
        if !exported && !md.exports.syms.contains_key(name) && names.insert(name) {
            added.name_bytes += name.len();
        }
        Ok(())
    };
    for (oi, o) in syms.objs.iter().enumerate() {
        for s in o.file.symbols() {
            let kind = sym_type(&s);
            if !matches!(kind, object::elf::STT_FUNC | object::elf::STT_OBJECT) || s.size() == 0 {
                continue;
            }
            let SymbolSection::Section(idx) = s.section() else {
                continue;
            };
            let Ok(name) = s.name() else { continue };
            if name.is_empty() || name.len() > MAX_NAME || o.discarded.contains(&idx) {
                continue;
            }
            // Of a global name, only the definition the link chose (not a
            // weak one overridden).
            let exported = if is_global(&s) {
                match syms.globals.get(name) {
                    Some(Def::Sym { obj, sym, .. }) if *obj == oi && *sym == s.index() => {}
                    _ => continue,
                }
                md.exports.syms.get(name) == Some(&(oi, s.index()))
            } else {
                false
            };
            // A dropped section has no place.
            let Some(Target::Local(mut v)) = lay.addr(&Resolved::In(oi, idx.0, s.address())) else {
                continue;
            };
            if md.arch == Arch::Arm && kind == object::elf::STT_FUNC {
                v &= !1; // the Thumb bit: the table gives the first byte
            }
            if inside(v, s.size()) {
                add(b, name, v, s.size(), exported)?;
            }
        }
    }
    for (name, &(off, size)) in &lay.commons {
        let v = lay.dataoff + lay.bss_start + off;
        if size != 0 && name.len() <= MAX_NAME && inside(v, size) {
            add(b, name, v, size, md.exports.commons.contains(name))?;
        }
    }
    Ok(added)
}

/// Records the type description stated for `name`, if any: loaders show
/// it when the other side of a binding has another type.
fn describe(b: &mut ModuleBuilder, sigs: &SigTable, name: &str, export: bool) {
    match sigs.desc(name) {
        Some(d) if export => b.describe_export(name, d),
        Some(d) => b.describe_import(name, d),
        None => b,
    };
}

/// Adds the load-time relocations and the imports they name, in order of
/// first use; the count of imports, and a warning for each relocation
/// that ties the module to its import's neighbourhood.
fn relocations(
    b: &mut ModuleBuilder,
    img: &Image,
    md: &Module<'_, '_>,
) -> Result<(usize, Vec<String>), LinkError> {
    let (arch, sigs) = (md.arch, md.sigs);
    let mut warnings = Vec::new();
    let mut import_index: HashMap<String, u32> = HashMap::new();
    for r in &img.relocs {
        let idx = match &r.import {
            Some(n) => Some(match import_index.get(n) {
                Some(&i) => i,
                None => {
                    if n.len() > MAX_NAME {
                        check_name(&referrer(md.syms, n), "import", n)?;
                    }
                    describe(b, sigs, n, false);
                    let i = b.import(n, sigs.get(n));
                    import_index.insert(n.clone(), i);
                    i
                }
            }),
            None => None,
        };
        if let Some(reach) = dynld::arch::mode(arch, r.mode).and_then(|mode| mode.pc_reach) {
            warnings.push(format!(
                "{} is reached with {}: the module loads only within {} GiB of it (compile with -fPIC to avoid this)",
                r.import.as_deref().unwrap_or("?"),
                reach.how,
                reach.bytes >> 30
            ));
        }
        b.reloc(field(r.offset)?, r.mode, idx);
    }
    Ok((import_index.len(), warnings))
}

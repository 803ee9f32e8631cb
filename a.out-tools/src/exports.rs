//! `aout exports`: a host's export table as Rust or C source (Plan 9's `-x`).
//!
//! Input: a list, one symbol a line, `NAME` or `NAME DESC` where DESC is a
//! type description (see `dynld(3)`); blank lines and `#` comments are
//! skipped. Or the host's own ELF objects, archives or executable
//! ([`from_elf`]): every external function and data object they define,
//! with the signature their sources state or, failing that, the one their
//! debug information gives.
//! Output: the table sorted by name, each entry with the signature of DESC
//! (0 when there is none), every name checked unique and every description
//! checked well-formed. The comments beside the entries give each
//! description re-rendered from its tokens, not as written.

use crate::desc::canonical;
use crate::link::Input;
use crate::{dwarfsig, sigsec};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind, SymbolScope};
use std::collections::BTreeMap;

/// The symbols of a host's own files, as [`parse`] gives them from a list.
pub struct FromElf {
    /// name -> (signature, canonical description).
    pub syms: BTreeMap<String, (u32, String)>,
    /// What to tell the user: a stated signature the debug information
    /// contradicts, a type with no description, names left out.
    pub warnings: Vec<String>,
}

/// Whether `bytes` are an ELF file or an archive, rather than a list.
pub fn is_binary(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x7fELF") || bytes.starts_with(b"!<arch>\n")
}

/// Every function and data object the files define with external linkage
/// and default or protected visibility (Plan 9's `2l -x`), from the symbol
/// table (an executable's dynamic one if it has no other). Names that
/// start with `_`, reserved to the implementation in C (the C library's
/// start-up code, Rust's mangled names), are left out unless `all`; the
/// count left out is a warning. Each entry's signature is the one the
/// sources state (`DYNLD_EXPORT`, `export_sig!`), else the debug
/// information's (see [`dwarfsig`]), else 0.
pub fn from_elf(inputs: Vec<Input>, all: bool) -> Result<FromElf, String> {
    let files = crate::link::inputs::expand(inputs).map_err(|e| e.0)?;
    let mut stated = sigsec::SigTable::default();
    let mut debug = Vec::new();
    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    let mut left_out = 0usize;
    for f in &files {
        let file = object::File::parse(&*f.bytes).map_err(|e| format!("{}: {e}", f.name))?;
        if file.format() != object::BinaryFormat::Elf {
            return Err(format!("{}: not an ELF file", f.name));
        }
        for s in file.sections() {
            if s.name() == Ok(sigsec::SECTION) {
                let data = s.data().map_err(|e| format!("{}: {e}", f.name))?;
                stated.add(&f.name, data).map_err(|e| e.0)?;
            }
        }
        for d in dwarfsig::read(&file).map_err(|e| format!("{}: {e}", f.name))? {
            if d.definition {
                debug.push((d, f.name.clone()));
            }
        }
        let mut syms: Vec<_> = file.symbols().collect();
        if syms.is_empty() {
            syms = file.dynamic_symbols().collect();
        }
        for s in syms {
            let wanted = s.is_definition()
                && matches!(s.kind(), SymbolKind::Text | SymbolKind::Data)
                && matches!(s.scope(), SymbolScope::Dynamic)
                && s.section_index().is_some();
            if !wanted {
                continue;
            }
            let Ok(name) = s.name() else { continue };
            if name.is_empty() || name.contains('@') {
                continue;
            }
            if !all && name.starts_with('_') {
                left_out += 1;
                continue;
            }
            defined
                .entry(name.to_owned())
                .or_insert_with(|| f.name.clone());
        }
    }
    let mut out = FromElf {
        syms: BTreeMap::new(),
        warnings: Vec::new(),
    };
    // As `aout link` takes them: stated, else the definition's debug
    // information, with the same notes.
    stated.add_debug(debug);
    let mut undescribed = Vec::new();
    for (name, origin) in &defined {
        let notes = stated.notes(name);
        out.warnings.extend(notes.iter().cloned());
        let entry = match stated.desc(name) {
            Some(d) => (stated.get(name), canonical(d)?),
            None => {
                if notes.is_empty() {
                    undescribed.push(format!("{name} ({origin})"));
                }
                (0, String::new())
            }
        };
        out.syms.insert(name.clone(), entry);
    }
    if !undescribed.is_empty() {
        out.warnings.push(format!(
            "{} symbols have neither a stated signature nor debug information (compile with -g), left unchecked: {}",
            undescribed.len(),
            undescribed.join(", ")
        ));
    }
    if left_out > 0 {
        out.warnings.push(format!(
            "{left_out} names starting with `_` left out (reserved to the implementation); --all keeps them"
        ));
    }
    Ok(out)
}

/// The output language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Lang {
    /// A `static EXPORTS: [dynld::Dynsym; N]` and a verified `ExportTable`.
    Rust,
    /// A nil-terminated `Dynsym _exporttab[]` over `dynld.h`'s `Dynsym`,
    /// with `_exportdesc[]` beside it.
    C,
}

/// Parses the symbol list: name -> (signature, description in the
/// canonical spelling the generated comments use).
pub fn parse(text: &str) -> Result<BTreeMap<String, (u32, String)>, String> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, desc) = match line.split_once(char::is_whitespace) {
            Some((n, d)) => (n, d.trim()),
            None => (line, ""),
        };
        let (sig, desc) = if desc.is_empty() {
            (0, String::new())
        } else {
            let sig = dynld::sig::hash(desc).map_err(|e| format!("line {}: {name}: {e}", i + 1))?;
            let desc = canonical(desc).map_err(|e| format!("line {}: {name}: {e}", i + 1))?;
            (sig, desc)
        };
        if out.insert(name.to_owned(), (sig, desc)).is_some() {
            return Err(format!("line {}: {name} listed twice", i + 1));
        }
    }
    Ok(out)
}

fn c_ident(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// Renders the table.
pub fn render(syms: &BTreeMap<String, (u32, String)>, lang: Lang) -> Result<String, String> {
    let mut s = String::new();
    match lang {
        Lang::Rust => {
            s += "// Generated by `aout exports`: the host's export table, sorted by name.\n";
            s += "#[allow(dead_code, non_upper_case_globals)]\nunsafe extern \"C\" {\n";
            for (i, name) in syms.keys().enumerate() {
                s += &format!("    #[link_name = {name:?}]\n    fn dynld_export_{i}();\n");
            }
            s += "}\n\n";
            s += &format!(
                "/// The exports, sorted by name.\npub static EXPORTS: [dynld::Dynsym<'static>; {}] = [\n",
                syms.len()
            );
            for (i, (name, (sig, desc))) in syms.iter().enumerate() {
                let note = if desc.is_empty() {
                    String::new()
                } else {
                    format!(" // {desc}")
                };
                s += &format!(
                    "    dynld::Dynsym::new({name:?}, {sig:#010x}, dynld_export_{i} as *const ()),{note}\n"
                );
            }
            s += "];\n\n";
            // The hash index over the names (see dynld::index), computed
            // here so the host pays nothing for it at run time.
            let names: Vec<&String> = syms.keys().collect();
            let slots = dynld::index::build_vec(names.len(), |i| names[i].as_bytes())
                .map_err(|e| format!("building the hash index: {}", e.at(dynld::Table::Host)))?;
            s += &format!(
                "/// A hash index over the names (see `dynld::index`).\npub static EXPORT_INDEX: [u64; {}] = [\n",
                slots.len()
            );
            for chunk in slots.chunks(4) {
                let row: Vec<String> = chunk.iter().map(|v| format!("{v:#018x}")).collect();
                s += &format!("    {},\n", row.join(", "));
            }
            s += "];\n\n";
            // The descriptions (canonical, re-rendered from their tokens),
            // which the loader shows when a module expects another type.
            s += &format!(
                "/// The type descriptions, in table order (\"\" for none).\npub static EXPORT_DESCS: [&str; {}] = [\n",
                syms.len()
            );
            for (_, desc) in syms.values() {
                s += &format!("    {desc:?},\n");
            }
            s += "];\n\n/// The table with its index and descriptions, verified sorted and in\n/// range when compiled.\n";
            s += "pub static EXPORT_TABLE: dynld::ExportTable<'static> = dynld::ExportTable::new_const(&EXPORTS)\n    .with_index_const(&EXPORT_INDEX)\n    .with_descs_const(&EXPORT_DESCS);\n";
        }
        Lang::C => {
            s += "/* Generated by `aout exports`: the host's export table, sorted by name. */\n";
            s += "#include \"dynld.h\"\n\n";
            // Each symbol under a name of its own, bound by its assembler
            // name: declaring `abort` or `printf` as anything but what
            // the C library says clashes with the compiler's built-ins.
            s += "/* The symbols, declared by their assembler names. */\n";
            for (i, name) in syms.keys().enumerate() {
                if !c_ident(name) {
                    return Err(format!("{name} is not a C identifier"));
                }
                s += &format!("extern char dynld_export_{i}[] __asm__(\"{name}\");\n");
            }
            s += "\nDynsym _exporttab[] = {\n";
            for (i, (name, (sig, desc))) in syms.iter().enumerate() {
                let note = if desc.is_empty() {
                    String::new()
                } else {
                    format!("\t/* {desc} */")
                };
                s +=
                    &format!("\t{{{sig:#010x}, (uintptr_t)dynld_export_{i}, \"{name}\"}},{note}\n");
            }
            s += "\t{0, 0, 0},\n};\n\n";
            s += "/* The type descriptions, in table order (\"\" for none): give them to\n * dynld_describe(_exporttab, _exportdesc) and mismatch messages show them. */\n";
            s += "const char *const _exportdesc[] = {\n";
            for (_, desc) in syms.values() {
                s += &format!("\t\"{desc}\",\n");
            }
            s += "\t0,\n};\n";
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_cannot_inject_code() {
        let evil = "zz fn(struct a { int }, struct a { */ {0, (void *)system, \"zz_injected\"}, /* }) int\n";
        assert!(parse(evil).is_err());
        let evil = "zz fn(struct a { int }, struct a { int }) int // \"\n";
        assert!(parse(evil).is_err());
    }

    #[test]
    fn descriptions_are_rendered_canonically() {
        let syms = parse(
            "host_log  fn( *char ,\t... )int\nhost_node\tstruct node{int,*struct node{}}\nhost_v [ 10 ]\tvlong\nhost_e enum  e\nhost_f fn()*fn(void)int\n",
        )
        .unwrap();
        let c = render(&syms, Lang::C).unwrap();
        let rust = render(&syms, Lang::Rust).unwrap();
        for want in [
            "fn(*char, ...) int",
            "struct node { int, *struct node {} }",
            "[10]vlong",
            "enum e",
            "fn() *fn(void) int",
        ] {
            assert!(c.contains(&format!("\t/* {want} */\n")), "{want}: {c}");
            assert!(rust.contains(&format!(" // {want}\n")), "{want}: {rust}");
        }
    }
}

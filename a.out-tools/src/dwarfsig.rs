//! Signatures from debug information: the type of each function and
//! variable an object defines or declares, read from its DWARF and written
//! as a type description (see `dynld(3)`), so that code with no signature
//! statements is checked too.
//!
//! The walk follows the rules of Plan 9's `signof`: typedefs are seen
//! through, qualifiers (`const`, `volatile`, `restrict`, `_Atomic`) are
//! ignored, and the struct a description meets a second time is a
//! reference to the first. Scalars map by kind and size, as Rust's types
//! do in `dynld::sig::Signof`: a 4-byte signed integer is `int`, or
//! `long` when its name says long (C's `long` on a 32-bit target, Rust's
//! `isize` there); any 8-byte integer is `vlong` (C's `long` on an LP64
//! target, `long long`, Rust's `i64`). `char` follows its encoding
//! (signed on x86-64, unsigned on Arm and RISC-V); `_Bool` and Rust's
//! `bool` are `uchar`; Rust's `char` is `uint`.
//!
//! What the grammar has no word for (bit-fields, `long double` wider than
//! a `double`, complex and vector types, 128-bit integers, Rust enums with
//! data, pointers to members) leaves the symbol undescribed, with the
//! reason, and its signature 0: the caller says so in a warning.

use gimli::{AttributeValue, EndianSlice, RunTimeEndian, UnitOffset};
use object::{Object, ObjectSection, ObjectSymbol, RelocationKind, RelocationTarget};
use std::collections::HashMap;

/// What the debug information says of one name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DebugSig {
    /// The symbol's name (its linkage name where the compiler gives one).
    pub name: String,
    /// Defined in this object (false: only declared, as an import).
    pub definition: bool,
    /// The type description, or why the type has none.
    pub desc: Result<String, String>,
}

impl DebugSig {
    /// The signature of the description (0 if there is none).
    pub fn sig(&self) -> u32 {
        self.desc
            .as_ref()
            .ok()
            .and_then(|d| dynld::sig::hash(d).ok())
            .unwrap_or(0)
    }
}

type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// The functions and variables of `file`'s debug information with external
/// linkage, in the order met: definitions and declarations. An object with
/// no debug information gives none.
pub fn read(file: &object::File<'_>) -> Result<Vec<DebugSig>, String> {
    if file.section_by_name(".debug_info").is_none() {
        return Ok(Vec::new());
    }
    let endian = if file.is_little_endian() {
        RunTimeEndian::Little
    } else {
        RunTimeEndian::Big
    };
    let owned = gimli::DwarfSections::load(|id| section(file, id.name()))?;
    let dwarf = owned.borrow(|s| EndianSlice::new(s, endian));
    let mut out = Vec::new();
    let mut units = dwarf.units();
    while let Some(header) = units.next().map_err(dw)? {
        let unit = dwarf.unit(header).map_err(dw)?;
        Walker {
            dwarf: &dwarf,
            unit: &unit,
        }
        .unit(&mut out)?;
    }
    Ok(out)
}

fn dw(e: gimli::Error) -> String {
    format!("debug information: {e}")
}

/// A debug section's bytes, decompressed and, in a relocatable object,
/// with its absolute relocations applied (string offsets in `.debug_info`
/// are relocations there, and hold 0 until applied on RELA targets).
fn section(file: &object::File<'_>, name: &str) -> Result<Vec<u8>, String> {
    let Some(s) = file.section_by_name(name) else {
        return Ok(Vec::new());
    };
    let mut data = s
        .uncompressed_data()
        .map_err(|e| format!("{name}: {e}"))?
        .into_owned();
    if file.kind() != object::ObjectKind::Relocatable {
        return Ok(data);
    }
    let little = file.is_little_endian();
    for (offset, r) in s.relocations() {
        if r.kind() != RelocationKind::Absolute {
            continue;
        }
        let base = match r.target() {
            RelocationTarget::Symbol(i) => file.symbol_by_index(i).map_or(0, |s| s.address()),
            _ => 0,
        };
        let width = usize::from(r.size() / 8);
        let Some(at) = usize::try_from(offset)
            .ok()
            .filter(|_| width == 4 || width == 8)
            .and_then(|o| Some(o..o.checked_add(width)?))
            .filter(|range| range.end <= data.len())
        else {
            return Err(format!(
                "{name}: relocation at {offset:#x} outside the section"
            ));
        };
        let field = &mut data[at];
        let old = field.iter().enumerate().fold(0u64, |v, (k, &b)| {
            let shift = if little { k } else { width - 1 - k } * 8;
            v | u64::from(b) << shift
        });
        let addend = if r.has_implicit_addend() {
            old
        } else {
            r.addend() as u64
        };
        let v = base.wrapping_add(addend);
        for (k, b) in field.iter_mut().enumerate() {
            let shift = if little { k } else { width - 1 - k } * 8;
            *b = (v >> shift) as u8;
        }
    }
    Ok(data)
}

struct Walker<'d, 'a> {
    dwarf: &'d gimli::Dwarf<R<'a>>,
    unit: &'d gimli::Unit<R<'a>>,
}

/// The structs and unions met in one description: their tags, by entry;
/// and how deep and how far the walk has gone.
#[derive(Default)]
struct Seen {
    tags: HashMap<UnitOffset, String>,
    depth: usize,
    /// Types visited: a type graph built to branch at every level (a
    /// function whose parameters are pointers to the next such function)
    /// would otherwise take time exponential in its depth.
    steps: usize,
}

/// Most types one description visits.
const MAX_STEPS: usize = 20_000;

type Die<'d, 'a> = gimli::DebuggingInformationEntry<'d, 'd, R<'a>>;

impl<'a> Walker<'_, 'a> {
    /// Every function and variable at file scope (or in a namespace, as
    /// rustc writes them), not those inside functions.
    fn unit(&self, out: &mut Vec<DebugSig>) -> Result<(), String> {
        let c_unit = matches!(
            self.unit
                .entries()
                .next_dfs()
                .ok()
                .flatten()
                .and_then(|(_, e)| e.attr_value(gimli::DW_AT_language).ok().flatten()),
            Some(AttributeValue::Language(
                gimli::DW_LANG_C
                    | gimli::DW_LANG_C89
                    | gimli::DW_LANG_C99
                    | gimli::DW_LANG_C11
                    | gimli::DW_LANG_C17
            ))
        );
        let mut cursor = self.unit.entries();
        let mut depth = 0isize;
        // Depth of the innermost function being skipped, if any.
        let mut inside_fn: Option<isize> = None;
        while let Some((delta, e)) = cursor.next_dfs().map_err(dw)? {
            depth += delta;
            if inside_fn.is_some_and(|d| depth <= d) {
                inside_fn = None;
            }
            if inside_fn.is_some() {
                continue;
            }
            let tag = e.tag();
            if tag == gimli::DW_TAG_subprogram {
                inside_fn = Some(depth);
            }
            if tag != gimli::DW_TAG_subprogram && tag != gimli::DW_TAG_variable {
                continue;
            }
            if let Some(s) = self.symbol(e, c_unit)? {
                out.push(s);
            }
        }
        Ok(())
    }

    fn flag(e: &Die<'_, 'a>, at: gimli::DwAt) -> bool {
        matches!(e.attr_value(at), Ok(Some(AttributeValue::Flag(true))))
    }

    fn string(&self, e: &Die<'_, 'a>, at: gimli::DwAt) -> Result<Option<String>, String> {
        match e.attr_value(at).map_err(dw)? {
            Some(v) => {
                let s = self.dwarf.attr_string(self.unit, v).map_err(dw)?;
                Ok(Some(String::from_utf8_lossy(s.slice()).into_owned()))
            }
            None => Ok(None),
        }
    }

    fn unit_ref(e: &Die<'_, 'a>, at: gimli::DwAt) -> Result<Option<UnitOffset>, String> {
        match e.attr_value(at).map_err(dw)? {
            Some(AttributeValue::UnitRef(o)) => Ok(Some(o)),
            None => Ok(None),
            Some(_) => Err("a reference into another unit".into()),
        }
    }

    /// One function or variable: `None` if it has no linkage (static, or
    /// local to a function) or no name of its own.
    fn symbol(&self, e: &Die<'_, 'a>, c_unit: bool) -> Result<Option<DebugSig>, String> {
        if e.attr_value(gimli::DW_AT_abstract_origin)
            .map_err(dw)?
            .is_some()
        {
            // A concrete instance: its origin is recorded in its own right.
            return Ok(None);
        }
        let definition = !Self::flag(e, gimli::DW_AT_declaration);
        // A definition completing an earlier declaration takes its name
        // and type from it.
        let spec = match Self::unit_ref(e, gimli::DW_AT_specification) {
            Ok(Some(o)) => Some(self.unit.entry(o).map_err(dw)?),
            Ok(None) => None,
            Err(_) => return Ok(None),
        };
        let e = spec.as_ref().unwrap_or(e);
        // Declarations outside functions have linkage; definitions need it
        // stated (C `static` ones have none). Line tables alone (`-g1`,
        // `-gline-tables-only`, rustc's `-C debuginfo=1`) state it for no
        // definition and give no types: nothing is read from them.
        let external = Self::flag(e, gimli::DW_AT_external) || !definition;
        if !external {
            return Ok(None);
        }
        let name = match self.string(e, gimli::DW_AT_linkage_name)? {
            Some(n) => Some(n),
            None => match self.string(e, gimli::DW_AT_MIPS_linkage_name)? {
                Some(n) => Some(n),
                None => self.string(e, gimli::DW_AT_name)?,
            },
        };
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return Ok(None);
        };
        // gcc's own declarations of the functions it expands inline
        // (`__builtin_memcpy`, linkage name `memcpy`) carry no type.
        if Self::flag(e, gimli::DW_AT_artificial)
            || self
                .string(e, gimli::DW_AT_name)?
                .is_some_and(|n| n.starts_with("__builtin_"))
        {
            return Ok(None);
        }
        let mut seen = Seen::default();
        let desc = if e.tag() == gimli::DW_TAG_subprogram {
            self.function(e, c_unit, &mut seen)
        } else {
            self.typ(Self::unit_ref(e, gimli::DW_AT_type)?, c_unit, &mut seen)
        };
        let desc = desc.and_then(|d| match dynld::sig::hash(&d) {
            Ok(_) => Ok(d),
            Err(err) => Err(format!("{err} in {d:?}")),
        });
        Ok(Some(DebugSig {
            name,
            definition,
            desc,
        }))
    }

    /// `fn(params) result` for a subprogram or a subroutine type.
    fn function(&self, e: &Die<'_, 'a>, c_unit: bool, seen: &mut Seen) -> Result<String, String> {
        let mut params = Vec::new();
        let mut tree = self.unit.entries_tree(Some(e.offset())).map_err(dw)?;
        let root = tree.root().map_err(dw)?;
        let mut children = root.children();
        let mut dots = false;
        while let Some(child) = children.next().map_err(dw)? {
            let c = child.entry();
            match c.tag() {
                gimli::DW_TAG_formal_parameter => {
                    if dots {
                        return Err("a parameter after `...`".into());
                    }
                    params.push(self.typ(Self::unit_ref(c, gimli::DW_AT_type)?, c_unit, seen)?);
                }
                gimli::DW_TAG_unspecified_parameters => dots = true,
                _ => {}
            }
        }
        if dots {
            params.push("...".into());
        } else if params.is_empty() && (!c_unit || Self::flag(e, gimli::DW_AT_prototyped)) {
            // `int f(void)`; an unprototyped `int f()` has no parameters.
            params.push("void".into());
        }
        let result = self.typ(Self::unit_ref(e, gimli::DW_AT_type)?, c_unit, seen)?;
        Ok(format!("fn({}) {result}", params.join(", ")))
    }

    /// The description of the type at `at` (`void` for none).
    fn typ(&self, at: Option<UnitOffset>, c_unit: bool, seen: &mut Seen) -> Result<String, String> {
        let Some(at) = at else {
            return Ok("void".into());
        };
        seen.depth += 1;
        seen.steps += 1;
        if seen.depth > 4 * dynld::sig::MAX_DEPTH {
            seen.depth -= 1;
            return Err("type nested too deeply".into());
        }
        if seen.steps > MAX_STEPS {
            seen.depth -= 1;
            return Err(format!("type of more than {MAX_STEPS} parts"));
        }
        let r = self.typ_at(at, c_unit, seen);
        seen.depth -= 1;
        r
    }

    fn typ_at(&self, at: UnitOffset, c_unit: bool, seen: &mut Seen) -> Result<String, String> {
        let e = self.unit.entry(at).map_err(dw)?;
        let next = |s: &mut Seen| -> Result<String, String> {
            self.typ(Self::unit_ref(&e, gimli::DW_AT_type)?, c_unit, s)
        };
        let name = self.string(&e, gimli::DW_AT_name)?;
        match e.tag() {
            gimli::DW_TAG_typedef
            | gimli::DW_TAG_const_type
            | gimli::DW_TAG_volatile_type
            | gimli::DW_TAG_restrict_type
            | gimli::DW_TAG_atomic_type
            | gimli::DW_TAG_immutable_type
            | gimli::DW_TAG_packed_type
            | gimli::DW_TAG_shared_type => next(seen),
            gimli::DW_TAG_pointer_type
            | gimli::DW_TAG_reference_type
            | gimli::DW_TAG_rvalue_reference_type => Ok(format!("*{}", next(seen)?)),
            gimli::DW_TAG_base_type => base(&e, name.as_deref()),
            gimli::DW_TAG_unspecified_type if name.as_deref() == Some("void") => Ok("void".into()),
            gimli::DW_TAG_array_type => {
                if Self::flag(&e, gimli::DW_AT_GNU_vector) {
                    return Err(format!(
                        "vector type {} has no Plan 9 type",
                        name.as_deref().unwrap_or("(unnamed)")
                    ));
                }
                let mut dims = String::new();
                let mut tree = self.unit.entries_tree(Some(e.offset())).map_err(dw)?;
                let root = tree.root().map_err(dw)?;
                let mut children = root.children();
                while let Some(child) = children.next().map_err(dw)? {
                    let c = child.entry();
                    if c.tag() != gimli::DW_TAG_subrange_type {
                        continue;
                    }
                    let count = match c.attr_value(gimli::DW_AT_count).map_err(dw)? {
                        Some(v) => v.udata_value(),
                        None => c
                            .attr_value(gimli::DW_AT_upper_bound)
                            .map_err(dw)?
                            .and_then(|v| v.udata_value())
                            .and_then(|u| u.checked_add(1)),
                    };
                    match count {
                        Some(n) => dims += &format!("[{n}]"),
                        None => dims += "[]",
                    }
                }
                if dims.is_empty() {
                    dims += "[]";
                }
                Ok(format!("{dims}{}", next(seen)?))
            }
            gimli::DW_TAG_subroutine_type => self.function(&e, c_unit, seen),
            gimli::DW_TAG_enumeration_type => Ok(match name {
                Some(n) if ident(&n) => format!("enum {n}"),
                _ => "enum".into(),
            }),
            gimli::DW_TAG_structure_type | gimli::DW_TAG_class_type | gimli::DW_TAG_union_type => {
                let word = if e.tag() == gimli::DW_TAG_union_type {
                    "union"
                } else {
                    "struct"
                };
                if let Some(tag) = seen.tags.get(&at) {
                    return Ok(format!("{word} {tag}"));
                }
                // Tags do not enter the value: one the description
                // already gives another struct, or none, is replaced by
                // one of its own so that a second mention refers to this
                // struct and no other.
                let mut tag = name.filter(|n| ident(n)).unwrap_or_else(|| "anon".into());
                if seen.tags.values().any(|t| *t == tag) {
                    let mut k = 2;
                    while seen.tags.values().any(|t| *t == format!("{tag}_{k}")) {
                        k += 1;
                    }
                    tag = format!("{tag}_{k}");
                }
                if Self::flag(&e, gimli::DW_AT_declaration) {
                    // Incomplete here: the walk stops at it.
                    return Ok(format!("{word} {tag}"));
                }
                seen.tags.insert(at, tag.clone());
                let mut members = Vec::new();
                let mut tree = self.unit.entries_tree(Some(e.offset())).map_err(dw)?;
                let root = tree.root().map_err(dw)?;
                let mut children = root.children();
                while let Some(child) = children.next().map_err(dw)? {
                    let c = child.entry();
                    match c.tag() {
                        gimli::DW_TAG_member | gimli::DW_TAG_inheritance => {
                            if c.attr_value(gimli::DW_AT_bit_size).map_err(dw)?.is_some()
                                || c.attr_value(gimli::DW_AT_data_bit_offset)
                                    .map_err(dw)?
                                    .is_some()
                            {
                                return Err(format!(
                                    "{word} {tag} has a bit-field, which the description grammar cannot state"
                                ));
                            }
                            members.push(self.typ(
                                Self::unit_ref(c, gimli::DW_AT_type)?,
                                c_unit,
                                seen,
                            )?);
                        }
                        gimli::DW_TAG_variant_part => {
                            return Err(format!(
                                "{tag} is an enum with data, which has no Plan 9 type"
                            ))
                        }
                        _ => {}
                    }
                }
                if members.is_empty() {
                    Ok(format!("{word} {tag} {{}}"))
                } else {
                    Ok(format!("{word} {tag} {{ {} }}", members.join(", ")))
                }
            }
            t => Err(format!(
                "{} {} has no Plan 9 type",
                t.static_string().map_or_else(
                    || format!("{t}"),
                    |s| s.trim_start_matches("DW_TAG_").into()
                ),
                name.as_deref().unwrap_or("(unnamed)")
            )),
        }
    }
}

fn ident(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c == b'_' || c.is_ascii_alphabetic())
        && b.all(|c| c == b'_' || c.is_ascii_alphanumeric())
}

/// A base type by its encoding and size (and, for a 4-byte integer, by
/// whether its name says `long`).
fn base(e: &Die<'_, '_>, name: Option<&str>) -> Result<String, String> {
    let size = e
        .attr_value(gimli::DW_AT_byte_size)
        .ok()
        .flatten()
        .and_then(|v| v.udata_value());
    let enc = match e.attr_value(gimli::DW_AT_encoding).ok().flatten() {
        Some(AttributeValue::Encoding(enc)) => Some(enc),
        _ => None,
    };
    let shown = name.unwrap_or("(unnamed)");
    let long = name
        .is_some_and(|n| n.split_whitespace().any(|w| w == "long") || n == "isize" || n == "usize");
    let s = match (enc, size) {
        (_, Some(0)) => "void",
        (Some(gimli::DW_ATE_boolean), Some(1)) => "uchar",
        (Some(gimli::DW_ATE_signed | gimli::DW_ATE_signed_char), Some(1)) => "char",
        (Some(gimli::DW_ATE_unsigned | gimli::DW_ATE_unsigned_char), Some(1)) => "uchar",
        (Some(gimli::DW_ATE_signed), Some(2)) => "short",
        (Some(gimli::DW_ATE_unsigned), Some(2)) => "ushort",
        (Some(gimli::DW_ATE_signed), Some(4)) if long => "long",
        (Some(gimli::DW_ATE_signed), Some(4)) => "int",
        (Some(gimli::DW_ATE_unsigned), Some(4)) if long => "ulong",
        (Some(gimli::DW_ATE_unsigned), Some(4)) => "uint",
        (Some(gimli::DW_ATE_signed), Some(8)) => "vlong",
        (Some(gimli::DW_ATE_unsigned), Some(8)) => "uvlong",
        (Some(gimli::DW_ATE_UTF), Some(1)) => "uchar",
        (Some(gimli::DW_ATE_UTF), Some(2)) => "ushort",
        (Some(gimli::DW_ATE_UTF), Some(4)) => "uint",
        (Some(gimli::DW_ATE_float), Some(4)) => "float",
        (Some(gimli::DW_ATE_float), Some(8)) => "double",
        (Some(gimli::DW_ATE_float), Some(n)) => {
            return Err(format!(
                "{shown} ({n}-byte floating point) has no Plan 9 type"
            ))
        }
        (Some(gimli::DW_ATE_signed | gimli::DW_ATE_unsigned), Some(n)) => {
            return Err(format!("{shown} ({n}-byte integer) has no Plan 9 type"))
        }
        _ => return Err(format!("{shown} has no Plan 9 type")),
    };
    Ok(s.into())
}

/// [`read`] over the bytes of an ELF file.
pub fn read_bytes(bytes: &[u8]) -> Result<Vec<DebugSig>, String> {
    let file = object::File::parse(bytes).map_err(|e| format!("not an ELF file: {e}"))?;
    read(&file)
}

//! The sections' bytes copied into the image, and every ELF relocation in
//! them applied through the backend: resolved in place, or left for the
//! loader as a load-time relocation.

use super::image::{Image, Target};
use super::layout::Layout;
use super::machine::{Machine, Reloc};
use super::obj::{sym_name, Obj, Part};
use super::resolve::{Resolved, Symbols};
use super::{fail, LinkError};
use dynld::Arch;
use object::{Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget};

/// Copies every placed section into `img` and applies its relocations.
pub(super) fn relocate(
    mut img: Image,
    syms: &Symbols<'_>,
    lay: &Layout,
    m: &dyn Machine,
    arch: Arch,
) -> Result<Image, LinkError> {
    let link = Link { syms, lay, m, arch };
    for ((oi, idx), part, base) in lay.placed() {
        let o = &syms.objs[oi];
        let s = o.section(idx)?;
        if part != Part::Bss {
            let data = s
                .data()
                .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
            img.put(base, data)?;
        }
        let sec = Section {
            obj: o,
            oi,
            name: s.name().unwrap_or("?").to_owned(),
            size: s.size(),
            base,
            part,
            code: matches!(s.flags(), object::SectionFlags::Elf { sh_flags }
                if sh_flags & u64::from(object::elf::SHF_EXECINSTR) != 0),
        };
        check_fields(&sec, &s, m)?;
        // Some types must be applied before others (the high parts that
        // low parts refer to); otherwise in offset order.
        let mut relocs: Vec<_> = s.relocations().collect();
        relocs.sort_by_key(|(off, r)| match r.flags() {
            RelocationFlags::Elf { r_type } => (m.pass(r_type), *off),
            _ => (0, *off),
        });
        for (off, r) in relocs {
            apply_one(&mut img, &link, &sec, off, &r)?;
        }
    }
    Ok(img)
}

/// What relocating needs to know of the link.
struct Link<'a, 'd> {
    syms: &'a Symbols<'d>,
    lay: &'a Layout,
    m: &'a dyn Machine,
    arch: Arch,
}

/// A section being relocated.
struct Section<'a, 'd> {
    obj: &'a Obj<'d>,
    /// The object's index.
    oi: usize,
    name: String,
    size: u64,
    /// Image offset.
    base: u64,
    part: Part,
    /// Executable (`SHF_EXECINSTR`).
    code: bool,
}

/// No two relocations may patch the same bytes: the result would depend
/// on their order, and the loader refuses overlapping fields. Only types
/// the backend lets share a field may, and those that must have a partner
/// have one.
fn check_fields(
    sec: &Section<'_, '_>,
    s: &object::Section<'_, '_>,
    m: &dyn Machine,
) -> Result<(), LinkError> {
    let (oname, sname) = (&sec.obj.name, &sec.name);
    let mut fields: Vec<(u64, u64, u32)> = s
        .relocations()
        .filter_map(|(off, r)| match r.flags() {
            RelocationFlags::Elf { r_type } => Some((off, m.width(r_type), r_type)),
            _ => None,
        })
        .filter(|f| f.1 > 0)
        .collect();
    fields.sort_unstable();
    for w in fields.windows(2) {
        let same = w[0].0 == w[1].0 && w[0].1 == w[1].1;
        if w[0].0.saturating_add(w[0].1) > w[1].0 && !(same && m.may_share(w[0].2, w[1].2)) {
            fail!(
                "{oname}: section {sname}+{:#x}: relocation {} overlaps relocation {} at +{:#x}",
                w[1].0,
                m.type_name(w[1].2),
                m.type_name(w[0].2),
                w[0].0
            );
        }
    }
    for (i, f) in fields.iter().enumerate() {
        let partner = |j: Option<usize>| {
            j.and_then(|j| fields.get(j))
                .is_some_and(|g| g.0 == f.0 && g.1 == f.1 && m.may_share(f.2, g.2))
        };
        if m.must_pair(f.2) && !partner(i.checked_sub(1)) && !partner(Some(i + 1)) {
            fail!(
                "{oname}: section {sname}+{:#x}: relocation {} has no paired relocation at the same place",
                f.0,
                m.type_name(f.2)
            );
        }
    }
    Ok(())
}

/// Applies the relocation at `off` in `sec`.
fn apply_one(
    img: &mut Image,
    link: &Link<'_, '_>,
    sec: &Section<'_, '_>,
    off: u64,
    r: &object::Relocation,
) -> Result<(), LinkError> {
    let Link { syms, lay, m, arch } = *link;
    let (oname, sname) = (&sec.obj.name, &sec.name);
    let RelocationFlags::Elf { r_type } = r.flags() else {
        fail!("{oname}: section {sname}+{off:#x}: unexpected relocation kind")
    };
    let mut weak_undefined = false;
    let (target, tname) = match r.target() {
        RelocationTarget::Symbol(si) => {
            let sym = sec.obj.file.symbol_by_index(si).ok();
            let name = sym.as_ref().map(sym_name).unwrap_or_default();
            let res = syms.resolve(sec.oi, si)?;
            weak_undefined = matches!(res, Resolved::Abs(_))
                && sym
                    .as_ref()
                    .is_some_and(|s| s.is_undefined() && s.is_weak());
            let t = lay.addr(&res).ok_or_else(|| {
                LinkError(format!(
                    "{oname}: section {sname}+{off:#x}: relocation against {name}, whose section was dropped"
                ))
            })?;
            (t, name)
        }
        RelocationTarget::Absolute => (Target::Abs(0), String::from("*ABS*")),
        _ => fail!("{oname}: section {sname}+{off:#x}: unsupported relocation target"),
    };
    if r.has_implicit_addend() && !m.implicit_addends() {
        fail!(
            "{oname}: section {sname}+{off:#x}: relocations with implicit addends are not supported for {arch}"
        );
    }
    let what = || {
        format!(
            "{oname}: section {sname}+{off:#x}: relocation {} against {tname}",
            m.type_name(r_type)
        )
    };
    if sec.part == Part::Bss {
        fail!("{}: relocation in a bss section", what());
    }
    let width = m.width(r_type);
    if off.checked_add(width).is_none_or(|end| end > sec.size) {
        fail!("{}: field outside its section", what());
    }
    m.apply(
        img,
        &Reloc {
            r_type,
            offset: sec.base + off,
            addend: r.addend(),
            target,
            what: &what,
            implicit: r.has_implicit_addend(),
            in_code: sec.code,
            in_section: off,
            name: &tname,
            weak_undefined,
        },
        &lay.stubs,
        &lay.abs_stubs,
    )
}

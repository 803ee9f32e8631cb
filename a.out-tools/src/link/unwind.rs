//! The module's unwind table (`--unwind`): the objects' `.eh_frame`
//! sections, joined and resolved as if they lay at an image offset past
//! the image's end, for the file a debugger is given (dynld's `gdb`
//! feature places them there, beside the module's text). The loader never
//! reads them; nothing in the image refers to them.
//!
//! Each input section is split into its records: a CIE is kept if every
//! relocation in it resolves (a personality routine's pointer does not,
//! and code that throws is refused elsewhere anyway); an FDE is kept if its
//! CIE was and its function's section is in the module (not dropped by
//! `--gc`). The CIE pointers are recomputed for the new order, and the
//! PC-relative fields filled in for the new place.

use super::image::Target;
use super::layout::Layout;
use super::resolve::Symbols;
use super::LinkError;
use dynld::Arch;
use object::{Object, ObjectSection, RelocationFlags, RelocationTarget};
use std::collections::{BTreeMap, HashMap};

/// A relocation type of `.eh_frame` this linker resolves: the bytes of
/// the PC-relative field it fills.
fn pcrel_width(arch: Arch, r_type: u32) -> Option<usize> {
    use object::elf::*;
    match (arch, r_type) {
        (Arch::Amd64, R_X86_64_PC32) | (Arch::Arm64, R_AARCH64_PREL32) => Some(4),
        (Arch::Amd64, R_X86_64_PC64) | (Arch::Arm64, R_AARCH64_PREL64) => Some(8),
        _ => None,
    }
}

/// Relocation `r`'s addend, at `off` in `data` (its section's bytes):
/// the field's contents for a REL relocation, else the record's.
fn implicit(data: &[u8], off: u64, w: usize, r: &object::Relocation) -> i64 {
    if !r.has_implicit_addend() {
        return r.addend();
    }
    let f = data.get(off as usize..off as usize + w).unwrap_or(&[]);
    match w {
        4 => i64::from(i32::from_le_bytes(f.try_into().unwrap_or([0; 4]))),
        _ => i64::from_le_bytes(f.try_into().unwrap_or([0; 8])),
    }
}

/// The unwind table of the module `lay` lays out: the image offset its
/// bytes lie at, and the bytes; `None` if no function's unwind
/// information could be kept. A note in `warnings` says what was left out
/// and why.
pub(super) fn unwind(
    syms: &Symbols<'_>,
    lay: &Layout,
    arch: Arch,
    warnings: &mut Vec<String>,
) -> Result<Option<(u32, Vec<u8>)>, LinkError> {
    if !matches!(arch, Arch::Amd64 | Arch::Arm64) {
        warnings.push(format!(
            "--unwind: no unwind information kept for {} (x86-64 and AArch64 only)",
            arch.name()
        ));
        return Ok(None);
    }
    let at = lay.image_end.next_multiple_of(8);
    let Ok(at32) = u32::try_from(at) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    let mut fdes = 0usize;
    for (oi, o) in syms.objs.iter().enumerate() {
        for s in o.file.sections() {
            if s.name() != Ok(".eh_frame") {
                continue;
            }
            let data = s
                .data()
                .map_err(|e| LinkError(format!("{}: {e}", o.name)))?;
            // Each relocation: its width and the image offset it refers to
            // (None if it cannot be resolved into the module).
            let mut relocs: BTreeMap<u64, Option<(usize, i64)>> = BTreeMap::new();
            for (off, r) in s.relocations() {
                let RelocationFlags::Elf { r_type } = r.flags() else {
                    relocs.insert(off, None);
                    continue;
                };
                let target = match (pcrel_width(arch, r_type), r.target()) {
                    (Some(w), RelocationTarget::Symbol(si)) => syms
                        .resolve(oi, si)
                        .ok()
                        .and_then(|res| lay.addr(&res))
                        .and_then(|t| match t {
                            Target::Local(v) => i64::try_from(v).ok(),
                            _ => None,
                        })
                        // (REL objects hold the addend in the field.)
                        .map(|v| (w, v + implicit(data, off, w, &r))),
                    _ => None,
                };
                relocs.insert(off, target);
            }
            let word = |p: usize| {
                data.get(p..p + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            };
            // Input CIE offset -> output offset.
            let mut cies: HashMap<usize, usize> = HashMap::new();
            let mut pos = 0usize;
            while let Some(len) = word(pos) {
                if len == 0 {
                    break;
                }
                // 64-bit DWARF records (never written for .eh_frame by
                // gcc or clang) end the section's use here.
                let Some(end) = (len != u32::MAX)
                    .then(|| pos + 4 + len as usize)
                    .filter(|&e| e <= data.len())
                else {
                    break;
                };
                let Some(id) = word(pos + 4) else { break };
                let inside = relocs.range(pos as u64..end as u64);
                // Every field resolved, and inside the record.
                let resolved = inside
                    .clone()
                    .all(|(&off, t)| t.is_some_and(|(w, _)| off as usize + w <= end));
                // A record too short for its id (and an FDE for its start)
                // is not copied.
                let long_enough = end >= pos + if id == 0 { 8 } else { 12 };
                let is_cie = id == 0;
                let cie_out = (!is_cie)
                    .then(|| (pos + 4).checked_sub(id as usize))
                    .flatten()
                    .and_then(|c| cies.get(&c).copied());
                // An FDE's function: the relocation at its start field.
                let has_function =
                    is_cie || relocs.get(&(pos as u64 + 8)).is_some_and(Option::is_some);
                let keep = long_enough && resolved && has_function && (is_cie || cie_out.is_some());
                if keep {
                    let start = out.len();
                    out.extend_from_slice(&data[pos..end]);
                    if is_cie {
                        cies.insert(pos, start);
                    } else if let Some(c) = cie_out {
                        let ptr = (start + 4 - c) as u32;
                        out[start + 4..start + 8].copy_from_slice(&ptr.to_le_bytes());
                        fdes += 1;
                    }
                    for (&off, t) in inside {
                        let Some((w, target)) = *t else { continue };
                        let field = start + (off as usize - pos);
                        let place = at as i64 + field as i64;
                        let v = target - place;
                        match w {
                            4 => {
                                let v = i32::try_from(v).map_err(|_| {
                                    LinkError(format!(
                                        "{}: .eh_frame+{off:#x}: out of range",
                                        o.name
                                    ))
                                })?;
                                out[field..field + 4].copy_from_slice(&v.to_le_bytes());
                            }
                            _ => out[field..field + 8].copy_from_slice(&v.to_le_bytes()),
                        }
                    }
                }
                pos = end;
            }
        }
    }
    if fdes == 0 {
        return Ok(None);
    }
    // The terminator.
    out.extend_from_slice(&[0; 4]);
    Ok(Some((at32, out)))
}

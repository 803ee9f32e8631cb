//! Applying relocations: the base relocations as they stream in from the
//! source, the import relocations from the module's memory once the
//! imports are bound.

use crate::arch::{self, Overflow};
use crate::bind;
use crate::check::{bad, Failed, Slot, Walker};
use crate::error::Error;
use crate::format::{Arch, RELOC_MAX_BYTES};
use crate::source::Source;

/// One architecture's patch function.
type Apply = fn(u8, &mut [u8], u64, u64) -> Result<(), Overflow>;

/// The patch function for `arch`, inlined into each relocation loop. Only
/// the architectures this build supports (checked before the load
/// began) reach here, so the others' code is not linked in.
pub(crate) fn patcher(arch: Arch) -> Result<Apply, Error> {
    Ok(match arch {
        _ if !arch::supported(arch) => return Err(bad("architecture")),
        Arch::Amd64 => arch::x86_64::apply,
        Arch::Arm64 => arch::aarch64::apply,
        Arch::Arm => arch::arm::apply,
        Arch::Riscv64 => |m, f, p, t| arch::riscv::apply(64, m, f, p, t),
        Arch::Riscv32 => |m, f, p, t| arch::riscv::apply(32, m, f, p, t),
        Arch::I386 => return Err(bad("architecture")),
    })
}

/// Applies the `size`-byte base relocation stream at the source's
/// position to `img`, relocated for `base`.
pub(crate) fn apply_base<S: Source + ?Sized>(
    src: &mut S,
    mut w: Walker,
    size: usize,
    img: &mut [u8],
    base: u64,
    sl: &mut Slot,
) -> Result<(), Failed> {
    match w.arch {
        // One loop per architecture, each with its patch function inlined;
        // only for the architectures this build supports, so a kernel
        // carries its own architecture's loop alone.
        a if !arch::supported(a) => sl.keep(Err(bad("architecture"))),
        Arch::Amd64 => stream(src, &mut w, size, img, base, arch::x86_64::apply, sl),
        Arch::Arm64 => stream(src, &mut w, size, img, base, arch::aarch64::apply, sl),
        a => {
            let apply = sl.keep(patcher(a))?;
            stream(src, &mut w, size, img, base, apply, sl)
        }
    }
}

#[inline(always)]
fn stream<S: Source + ?Sized>(
    src: &mut S,
    w: &mut Walker,
    size: usize,
    img: &mut [u8],
    base: u64,
    apply: impl Fn(u8, &mut [u8], u64, u64) -> Result<(), Overflow>,
    sl: &mut Slot,
) -> Result<(), Failed> {
    let mut buf = [0u8; 512];
    let (mut have, mut pos) = (0usize, 0usize);
    let mut remaining = size;
    // The fast path's facts: the width of each mode that adds the base
    // (0 for the rest), and the two places a field may lie.
    let mut base_width = [0u8; 16];
    for m in arch::modes(w.arch).iter().filter(|m| !m.import) {
        base_width[usize::from(m.number & 15)] = m.width as u8;
    }
    let text = w.text as u64;
    let (data, data_end) = (w.dataoff as u64, w.data_end as u64);
    let count = w.count as u32;
    while w.index < count {
        if have - pos < RELOC_MAX_BYTES && remaining > 0 {
            buf.copy_within(pos..have, 0);
            have -= pos;
            pos = 0;
            let n = (buf.len() - have).min(remaining);
            sl.keep(src.read_exact_or(&mut buf[have..have + n], "relocations"))?;
            have += n;
            remaining -= n;
        }
        // The fast path: runs of the common record, a mode that adds the
        // base with a 1- or 2-byte offset delta, in order and inside the
        // text or the data. Anything else, valid or not, goes to the
        // walker below, which reports errors.
        if cfg!(feature = "fast-reloc") {
            let avail = &buf[..have];
            while w.index < count {
                let Some(&[m, b1, b2]) = avail.get(pos..pos + 3) else {
                    break;
                };
                let width = u64::from(base_width[usize::from(m & 15)]);
                if m & 0xb0 != 0 || width == 0 {
                    break;
                }
                // The two record lengths take separate copies of the step,
                // so the next record's position is predicted rather than
                // waited for: runs of one length then cost no load latency
                // each.
                macro_rules! step {
                    ($delta:expr, $need:expr) => {{
                        let Some(offset) = w.prev_off.checked_add($delta) else {
                            break;
                        };
                        let off = u64::from(offset);
                        let end = off + width;
                        if off < w.prev_end || !(end <= text || (off >= data && end <= data_end)) {
                            break;
                        }
                        let field = &mut img[off as usize..end as usize];
                        if apply(m & 15, field, base.wrapping_add(off), base).is_err() {
                            return sl.keep(Err(Error::RelocOverflow {
                                index: w.index,
                                offset,
                            }));
                        }
                        pos += $need;
                        w.prev_off = offset;
                        w.prev_end = end;
                    }};
                }
                // The two copies pay on a 64-bit host's out-of-order core;
                // a 32-bit target (in order, where code size counts) takes
                // one.
                if cfg!(not(target_pointer_width = "64")) {
                    let long = m & 0x40 != 0;
                    let delta = if long {
                        u16::from_be_bytes([b1, b2])
                    } else {
                        u16::from(b1)
                    };
                    step!(u32::from(delta), 2 + usize::from(long));
                } else if m & 0x40 == 0 {
                    step!(u32::from(b1), 2);
                } else {
                    step!(u32::from(u16::from_be_bytes([b1, b2])), 3);
                }
                w.index += 1;
            }
        }
        if w.index == count {
            break;
        }
        if have - pos < RELOC_MAX_BYTES && remaining > 0 {
            continue; // a whole record buffered first
        }
        let index = w.index;
        let (r, mode, used) = sl.keep(w.next(&buf[pos..have]))?;
        pos += used;
        let off = r.offset as usize;
        let field = sl.keep(
            img.get_mut(off..off + mode.width)
                .ok_or_else(|| bad("relocation")),
        )?;
        if apply(mode.number, field, base.wrapping_add(off as u64), base).is_err() {
            return sl.keep(Err(Error::RelocOverflow {
                index,
                offset: r.offset,
            }));
        }
    }
    if remaining != 0 || pos != have {
        return sl.keep(Err(w.trailing()));
    }
    Ok(())
}

/// Applies the import relocations `stream` (kept in the module's memory)
/// to `img`, relocated for `base`, each adding its import's address from
/// `binds`.
pub(crate) fn apply_imports(
    mut w: Walker,
    mut stream: &[u8],
    img: &mut [u8],
    binds: &[u8],
    base: u64,
    imports: &bind::Imports<'_>,
    sl: &mut Slot,
) -> Result<(), Failed> {
    let apply = sl.keep(patcher(w.arch))?;
    while !w.done() {
        let index = w.index;
        let (r, mode, used) = sl.keep(w.next(stream))?;
        stream = stream.get(used..).unwrap_or(&[]);
        let i = sl.keep(r.import.ok_or_else(|| bad("import relocation")))?;
        let (target, _) = sl.keep(bind::get(binds, i as usize).ok_or_else(|| bad("binding")))?;
        let off = r.offset as usize;
        let field = sl.keep(
            img.get_mut(off..off + mode.width)
                .ok_or_else(|| bad("relocation")),
        )?;
        if apply(mode.number, field, base.wrapping_add(off as u64), target).is_err() {
            let name =
                crate::check::import_name(imports.strs, imports.raw, i as usize, imports.lim);
            return sl.keep(Err(match name {
                Ok(name) => Error::ImportOutOfReach {
                    name: crate::error::SymName::new(name),
                    mode: mode.name,
                    offset: r.offset,
                },
                Err(_) => Error::RelocOverflow {
                    index,
                    offset: r.offset,
                },
            }));
        }
    }
    if !stream.is_empty() {
        return sl.keep(Err(w.trailing()));
    }
    Ok(())
}

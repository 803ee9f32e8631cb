//! AArch64: ELF relocation types onto the loader's arm64 modes.
//!
//! Every PC-relative instruction form reaching the module itself is
//! resolved here; the module asks for a 4 KiB aligned load base so that
//! `adrp` page arithmetic and low-12 offsets stay right wherever it loads.
//! Calls to imports (and to absolute addresses) go through stubs. Left for
//! the loader: 64-bit words, and `adrp`/low-12 pairs reaching an import's
//! data from code built without `-fPIC`.

use super::image::{Image, LoadReloc, Target};
use super::machine::{Machine, Need, Reloc};
use super::{fail, LinkError};
use dynld::arch::aarch64::{lo12_shift, with_adr_imm, BASE64, IMPORT64, IMPORT_ADRP, IMPORT_LO12};
use object::elf;
use std::collections::BTreeMap;

pub(crate) struct Backend;

/// `v + a - p` (or `v + a` without a place), exactly.
fn value(v: u64, a: i64, p: Option<u64>) -> i128 {
    i128::from(v) + i128::from(a) - p.map_or(0, i128::from)
}

/// Pages from the page of `p` to the page of `s`.
fn pages(s: i128, p: u64) -> i128 {
    (s >> 12) - (i128::from(p) >> 12)
}

/// Whether `v` fits a signed field of `bits` bits.
fn fits(v: i128, bits: u32) -> bool {
    let lim = 1i128 << (bits - 1);
    (-lim..lim).contains(&v)
}

/// `insn` with `imm` (already checked) in `bits` bits at bit `at`.
fn with(insn: u32, imm: i128, bits: u32, at: u32) -> u32 {
    let mask = ((1u64 << bits) - 1) as u32;
    insn & !(mask << at) | ((imm as u64 as u32) & mask) << at
}

/// `adrp` with a page delta (checked).
fn adrp(insn: u32, pages: i128) -> u32 {
    with(with(insn, pages & 3, 2, 29), pages >> 2, 19, 5)
}

const ADRP_X16: u32 = 0x9000_0010;
const LDR_X16_X16: u32 = 0xf940_0210;
const ADD_X16_X16: u32 = 0x9100_0210;
const BR_X16: u32 = 0xd61f_0200;
const NOP: u32 = 0xd503_201f;
/// `ldr x16, .+8`.
const LDR_X16_LIT8: u32 = 0x5800_0050;
/// `movz x0, #0` (then x1, x2 by adding the register number).
const B: u32 = 0x1400_0000;
const MOV_X1_XZR: u32 = 0xaa1f_03e1;
const ADRP_X2: u32 = 0x9000_0002;
const ADD_X2_X2: u32 = 0x9100_0042;

fn put32(img: &mut Image, at: u64, w: u32) -> Result<(), LinkError> {
    img.put(at, &w.to_le_bytes())
}

/// A `b`/`bl` from `p` to `t`, or `None` if out of range.
fn branch(insn: u32, p: u64, t: i128) -> Option<u32> {
    let d = t - i128::from(p);
    (d & 3 == 0 && fits(d, 28)).then(|| with(insn, d >> 2, 26, 0))
}

/// The access size shift of a `LDST*_ABS_LO12_NC` type.
fn ldst_shift(r_type: u32) -> Option<u32> {
    Some(match r_type {
        elf::R_AARCH64_LDST8_ABS_LO12_NC => 0,
        elf::R_AARCH64_LDST16_ABS_LO12_NC => 1,
        elf::R_AARCH64_LDST32_ABS_LO12_NC => 2,
        elf::R_AARCH64_LDST64_ABS_LO12_NC => 3,
        elf::R_AARCH64_LDST128_ABS_LO12_NC => 4,
        _ => return None,
    })
}

impl Machine for Backend {
    fn needs(&self, r_type: u32) -> Need {
        match r_type {
            elf::R_AARCH64_ADR_GOT_PAGE | elf::R_AARCH64_LD64_GOT_LO12_NC => Need::Got,
            elf::R_AARCH64_CALL26 | elf::R_AARCH64_JUMP26 => Need::Stub,
            _ => Need::None,
        }
    }

    fn width(&self, r_type: u32) -> u64 {
        match r_type {
            elf::R_AARCH64_NONE => 0,
            elf::R_AARCH64_ABS64 | elf::R_AARCH64_PREL64 => 8,
            elf::R_AARCH64_ABS16 | elf::R_AARCH64_PREL16 => 2,
            _ => 4,
        }
    }

    fn branch_reach(&self) -> Option<u64> {
        Some(1 << 27)
    }

    /// `adrp x16, to; add x16, x16, :lo12:to; br x16; nop`.
    fn veneer_size(&self) -> u64 {
        16
    }

    fn write_veneer(&self, img: &mut Image, at: u64, to: u64) -> Result<(), LinkError> {
        let d = pages(i128::from(to), at);
        if !fits(d, 21) {
            fail!("veneer target out of range");
        }
        put32(img, at, adrp(ADRP_X16, d))?;
        put32(
            img,
            at + 4,
            with(ADD_X16_X16, i128::from(to & 0xfff), 12, 10),
        )?;
        put32(img, at + 8, BR_X16)?;
        put32(img, at + 12, NOP)
    }

    fn page_size(&self) -> u64 {
        4096
    }

    /// `adrp` works in 4 KiB pages.
    fn base_align(&self) -> u64 {
        4096
    }

    /// `adrp x16, slot; ldr x16, [x16, :lo12:slot]; br x16; nop`.
    fn stub_size(&self) -> u64 {
        16
    }

    fn write_stub(&self, img: &mut Image, at: u64, slot: u64) -> Result<(), LinkError> {
        let d = pages(i128::from(slot), at);
        if !fits(d, 21) {
            fail!("GOT out of range of stub");
        }
        put32(img, at, adrp(ADRP_X16, d))?;
        put32(
            img,
            at + 4,
            with(LDR_X16_X16, i128::from(slot & 0xfff) >> 3, 12, 10),
        )?;
        put32(img, at + 8, BR_X16)?;
        put32(img, at + 12, NOP)
    }

    /// `ldr x16, .+8; br x16; .xword v`.
    fn abs_stub_size(&self) -> u64 {
        16
    }

    fn write_abs_stub(&self, img: &mut Image, at: u64, v: u64) -> Result<(), LinkError> {
        put32(img, at, LDR_X16_LIT8)?;
        put32(img, at + 4, BR_X16)?;
        img.put(at + 8, &v.to_le_bytes())
    }

    /// `stp x29, x30, [sp, #-16]!; mov x29, sp; (mov x0..x2, #0; bl f)...;
    /// ldp x29, x30, [sp], #16; ret`.
    /// `mov x1, xzr; adrp x2, dso; add x2, x2, :lo12:dso; b stub`.
    fn atexit_size(&self) -> u64 {
        16
    }

    fn write_atexit(&self, img: &mut Image, at: u64, dso: u64, stub: u64) -> Result<(), LinkError> {
        let d = pages(i128::from(dso), at + 4);
        if !fits(d, 21) {
            fail!("atexit: __dso_handle out of range");
        }
        put32(img, at, MOV_X1_XZR)?;
        put32(img, at + 4, adrp(ADRP_X2, d))?;
        put32(
            img,
            at + 8,
            with(ADD_X2_X2, i128::from(dso & 0xfff), 12, 10),
        )?;
        let b = branch(B, at + 12, i128::from(stub))
            .ok_or_else(|| LinkError("atexit: the __cxa_atexit stub out of range".into()))?;
        put32(img, at + 12, b)
    }

    fn write_word(&self, img: &mut Image, at: u64, t: &Target) -> Result<(), LinkError> {
        match t {
            Target::Local(v) => {
                img.put(at, &v.to_le_bytes())?;
                img.relocs.push(LoadReloc::base(at, BASE64));
            }
            Target::Abs(v) => img.put(at, &v.to_le_bytes())?,
            Target::Import(n) => {
                img.put(at, &0u64.to_le_bytes())?;
                img.relocs.push(LoadReloc::import(at, IMPORT64, n));
            }
        }
        Ok(())
    }

    fn type_name(&self, r_type: u32) -> String {
        let n = match r_type {
            elf::R_AARCH64_NONE => "R_AARCH64_NONE",
            elf::R_AARCH64_ABS64 => "R_AARCH64_ABS64",
            elf::R_AARCH64_ABS32 => "R_AARCH64_ABS32",
            elf::R_AARCH64_ABS16 => "R_AARCH64_ABS16",
            elf::R_AARCH64_PREL64 => "R_AARCH64_PREL64",
            elf::R_AARCH64_PREL32 => "R_AARCH64_PREL32",
            elf::R_AARCH64_PREL16 => "R_AARCH64_PREL16",
            elf::R_AARCH64_MOVW_UABS_G0 => "R_AARCH64_MOVW_UABS_G0",
            elf::R_AARCH64_MOVW_UABS_G0_NC => "R_AARCH64_MOVW_UABS_G0_NC",
            elf::R_AARCH64_MOVW_UABS_G1 => "R_AARCH64_MOVW_UABS_G1",
            elf::R_AARCH64_MOVW_UABS_G1_NC => "R_AARCH64_MOVW_UABS_G1_NC",
            elf::R_AARCH64_MOVW_UABS_G2 => "R_AARCH64_MOVW_UABS_G2",
            elf::R_AARCH64_MOVW_UABS_G2_NC => "R_AARCH64_MOVW_UABS_G2_NC",
            elf::R_AARCH64_MOVW_UABS_G3 => "R_AARCH64_MOVW_UABS_G3",
            elf::R_AARCH64_LD_PREL_LO19 => "R_AARCH64_LD_PREL_LO19",
            elf::R_AARCH64_ADR_PREL_LO21 => "R_AARCH64_ADR_PREL_LO21",
            elf::R_AARCH64_ADR_PREL_PG_HI21 => "R_AARCH64_ADR_PREL_PG_HI21",
            elf::R_AARCH64_ADR_PREL_PG_HI21_NC => "R_AARCH64_ADR_PREL_PG_HI21_NC",
            elf::R_AARCH64_ADD_ABS_LO12_NC => "R_AARCH64_ADD_ABS_LO12_NC",
            elf::R_AARCH64_LDST8_ABS_LO12_NC => "R_AARCH64_LDST8_ABS_LO12_NC",
            elf::R_AARCH64_LDST16_ABS_LO12_NC => "R_AARCH64_LDST16_ABS_LO12_NC",
            elf::R_AARCH64_LDST32_ABS_LO12_NC => "R_AARCH64_LDST32_ABS_LO12_NC",
            elf::R_AARCH64_LDST64_ABS_LO12_NC => "R_AARCH64_LDST64_ABS_LO12_NC",
            elf::R_AARCH64_LDST128_ABS_LO12_NC => "R_AARCH64_LDST128_ABS_LO12_NC",
            elf::R_AARCH64_TSTBR14 => "R_AARCH64_TSTBR14",
            elf::R_AARCH64_CONDBR19 => "R_AARCH64_CONDBR19",
            elf::R_AARCH64_JUMP26 => "R_AARCH64_JUMP26",
            elf::R_AARCH64_CALL26 => "R_AARCH64_CALL26",
            elf::R_AARCH64_ADR_GOT_PAGE => "R_AARCH64_ADR_GOT_PAGE",
            elf::R_AARCH64_LD64_GOT_LO12_NC => "R_AARCH64_LD64_GOT_LO12_NC",
            elf::R_AARCH64_LD64_GOTPAGE_LO15 => "R_AARCH64_LD64_GOTPAGE_LO15",
            elf::R_AARCH64_TLSDESC_ADR_PAGE21 => "R_AARCH64_TLSDESC_ADR_PAGE21",
            elf::R_AARCH64_TLSLE_ADD_TPREL_HI12 => "R_AARCH64_TLSLE_ADD_TPREL_HI12",
            elf::R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21 => "R_AARCH64_TLSIE_ADR_GOTTPREL_PAGE21",
            _ => return format!("type {r_type}"),
        };
        format!("{n} ({r_type})")
    }

    fn apply(
        &self,
        img: &mut Image,
        r: &Reloc<'_>,
        stubs: &BTreeMap<String, u64>,
        abs_stubs: &BTreeMap<u64, u64>,
    ) -> Result<(), LinkError> {
        let (p, a) = (r.offset, r.addend);
        let out_of_range = || LinkError(format!("{}: value out of range", (r.what)()));
        let insn = || img.get32(p);
        let import_of = |t: &Target| match t {
            Target::Import(n) => Some(n.clone()),
            _ => None,
        };
        let target_of = |t: &Target| -> Option<i128> {
            match t {
                Target::Local(v) => Some(value(*v, a, None)),
                _ => None,
            }
        };
        match r.r_type {
            elf::R_AARCH64_NONE => {}
            elf::R_AARCH64_ABS64 => match &r.target {
                Target::Local(v) => {
                    // May lie below the image (`f - 1`): the loader adds the
                    // base with wrapping arithmetic.
                    let v = i64::try_from(value(*v, a, None)).map_err(|_| out_of_range())?;
                    img.put(p, &v.to_le_bytes())?;
                    img.relocs.push(LoadReloc::base(p, BASE64));
                }
                Target::Abs(v) => img.put(p, &(*v as i64).wrapping_add(a).to_le_bytes())?,
                Target::Import(n) => {
                    img.put(p, &a.to_le_bytes())?;
                    img.relocs.push(LoadReloc::import(p, IMPORT64, n));
                }
            },
            elf::R_AARCH64_ABS32 | elf::R_AARCH64_ABS16 => match &r.target {
                Target::Abs(v) => {
                    let v = value(*v, a, None);
                    if r.r_type == elf::R_AARCH64_ABS32 {
                        let v = i32::try_from(v)
                            .map(|x| x as u32)
                            .or_else(|_| u32::try_from(v))
                            .map_err(|_| out_of_range())?;
                        img.put(p, &v.to_le_bytes())?;
                    } else {
                        let v = i16::try_from(v)
                            .map(|x| x as u16)
                            .or_else(|_| u16::try_from(v))
                            .map_err(|_| out_of_range())?;
                        img.put(p, &v.to_le_bytes())?;
                    }
                }
                _ => fail!(
                    "{}: a 32- or 16-bit absolute address cannot hold an address in a module that loads anywhere",
                    (r.what)()
                ),
            },
            elf::R_AARCH64_PREL64 | elf::R_AARCH64_PREL32 | elf::R_AARCH64_PREL16 => {
                let Target::Local(v) = r.target else {
                    fail!(
                        "{}: only the module's own symbols can be reached PC-relatively",
                        (r.what)()
                    )
                };
                let d = value(v, a, Some(p));
                match r.r_type {
                    elf::R_AARCH64_PREL64 => img.put(p, &(d as i64).to_le_bytes())?,
                    elf::R_AARCH64_PREL32 => {
                        let d = i32::try_from(d).map_err(|_| out_of_range())?;
                        img.put(p, &d.to_le_bytes())?
                    }
                    _ => {
                        let d = i16::try_from(d).map_err(|_| out_of_range())?;
                        img.put(p, &d.to_le_bytes())?
                    }
                }
            }
            elf::R_AARCH64_CALL26 | elf::R_AARCH64_JUMP26 => {
                let t = match &r.target {
                    Target::Local(v) => value(*v, a, None),
                    Target::Import(n) => {
                        let s = stubs
                            .get(n)
                            .ok_or_else(|| LinkError(format!("{}: no stub", (r.what)())))?;
                        value(img.stub(n, *s, p), a, None)
                    }
                    Target::Abs(v) => {
                        let s = abs_stubs
                            .get(v)
                            .ok_or_else(|| LinkError(format!("{}: no stub", (r.what)())))?;
                        value(*s, a, None)
                    }
                };
                // Out of reach: through the nearest veneer to the target.
                let veneer = match (&r.target, u64::try_from(t)) {
                    (Target::Local(_), Ok(t)) => img.veneer(t, p),
                    _ => None,
                };
                let w = branch(insn()?, p, t)
                    .or_else(|| branch(insn().ok()?, p, i128::from(veneer?)))
                    .ok_or_else(|| {
                        LinkError(format!(
                            "{}: branch target out of range (more than 128 MiB away)",
                            (r.what)()
                        ))
                    })?;
                put32(img, p, w)?;
            }
            elf::R_AARCH64_CONDBR19
            | elf::R_AARCH64_TSTBR14
            | elf::R_AARCH64_LD_PREL_LO19
            | elf::R_AARCH64_ADR_PREL_LO21 => {
                let Some(t) = target_of(&r.target) else {
                    fail!(
                        "{}: only the module's own symbols can be reached by this instruction",
                        (r.what)()
                    )
                };
                let d = t - i128::from(p);
                let w = match r.r_type {
                    elf::R_AARCH64_ADR_PREL_LO21 if fits(d, 21) => {
                        with(with(insn()?, d & 3, 2, 29), d >> 2, 19, 5)
                    }
                    elf::R_AARCH64_TSTBR14 if d & 3 == 0 && fits(d, 16) => {
                        with(insn()?, d >> 2, 14, 5)
                    }
                    elf::R_AARCH64_CONDBR19 | elf::R_AARCH64_LD_PREL_LO19
                        if d & 3 == 0 && fits(d, 21) =>
                    {
                        with(insn()?, d >> 2, 19, 5)
                    }
                    _ => return Err(out_of_range()),
                };
                put32(img, p, w)?;
            }
            elf::R_AARCH64_ADR_PREL_PG_HI21 | elf::R_AARCH64_ADR_PREL_PG_HI21_NC
                if matches!(r.target, Target::Import(_)) =>
            {
                // The loader finds the import's page; the addend waits in
                // the immediate, in bytes.
                if !fits(i128::from(a), 21) {
                    return Err(out_of_range());
                }
                put32(img, p, with_adr_imm(insn()?, a))?;
                img.relocs.push(LoadReloc {
                    offset: p,
                    mode: IMPORT_ADRP,
                    import: import_of(&r.target),
                });
            }
            t if matches!(r.target, Target::Import(_))
                && (t == elf::R_AARCH64_ADD_ABS_LO12_NC || ldst_shift(t).is_some()) =>
            {
                // The loader fills in the import's low 12 bits, scaled as
                // the instruction says; the addend waits in the immediate.
                let i = insn()?;
                if lo12_shift(i) != ldst_shift(t).or(Some(0)) || !(0..4096).contains(&a) {
                    fail!(
                        "{}: the instruction or addend does not fit a low-12 reference to an import",
                        (r.what)()
                    );
                }
                put32(img, p, i & !(0xfff << 10) | (a as u32) << 10)?;
                img.relocs.push(LoadReloc {
                    offset: p,
                    mode: IMPORT_LO12,
                    import: import_of(&r.target),
                });
            }
            elf::R_AARCH64_ADR_PREL_PG_HI21 | elf::R_AARCH64_ADR_PREL_PG_HI21_NC => {
                let Some(t) = target_of(&r.target) else {
                    fail!(
                        "{}: an absolute address cannot be reached PC-relatively",
                        (r.what)()
                    )
                };
                let d = pages(t, p);
                if !fits(d, 21) {
                    return Err(out_of_range());
                }
                put32(img, p, adrp(insn()?, d))?;
            }
            elf::R_AARCH64_ADD_ABS_LO12_NC => {
                let Some(t) = target_of(&r.target) else {
                    fail!(
                        "{}: an absolute address cannot be reached PC-relatively",
                        (r.what)()
                    )
                };
                put32(img, p, with(insn()?, t & 0xfff, 12, 10))?;
            }
            t if ldst_shift(t).is_some() => {
                let Some(v) = target_of(&r.target) else {
                    fail!(
                        "{}: an absolute address cannot be reached PC-relatively",
                        (r.what)()
                    )
                };
                let shift = ldst_shift(t).unwrap_or(0);
                let lo = v & 0xfff;
                if lo & ((1 << shift) - 1) != 0 {
                    fail!(
                        "{}: target misaligned for the access size",
                        (r.what)()
                    );
                }
                put32(img, p, with(insn()?, lo >> shift, 12, 10))?;
            }
            elf::R_AARCH64_ADR_GOT_PAGE | elf::R_AARCH64_LD64_GOT_LO12_NC => {
                let slot = *img
                    .got
                    .get(&r.target)
                    .ok_or_else(|| LinkError(format!("{}: no GOT slot", (r.what)())))?;
                // The addend applies to the slot's address (it is 0 in practice).
                let s = value(slot, a, None);
                let w = if r.r_type == elf::R_AARCH64_ADR_GOT_PAGE {
                    let d = pages(s, p);
                    if !fits(d, 21) {
                        return Err(out_of_range());
                    }
                    adrp(insn()?, d)
                } else {
                    with(insn()?, (s & 0xfff) >> 3, 12, 10)
                };
                put32(img, p, w)?;
            }
            elf::R_AARCH64_MOVW_UABS_G0
            | elf::R_AARCH64_MOVW_UABS_G0_NC
            | elf::R_AARCH64_MOVW_UABS_G1
            | elf::R_AARCH64_MOVW_UABS_G1_NC
            | elf::R_AARCH64_MOVW_UABS_G2
            | elf::R_AARCH64_MOVW_UABS_G2_NC
            | elf::R_AARCH64_MOVW_UABS_G3 => {
                let Target::Abs(v) = r.target else {
                    fail!(
                        "{}: absolute addresses built with movz/movk are not supported in modules (use the small code model)",
                        (r.what)()
                    )
                };
                let v = value(v, a, None);
                let group = (r.r_type - elf::R_AARCH64_MOVW_UABS_G0) / 2;
                let checked = matches!(
                    r.r_type,
                    elf::R_AARCH64_MOVW_UABS_G0
                        | elf::R_AARCH64_MOVW_UABS_G1
                        | elf::R_AARCH64_MOVW_UABS_G2
                        | elf::R_AARCH64_MOVW_UABS_G3
                );
                if checked && (v < 0 || v >> (16 * (group + 1)) != 0) {
                    return Err(out_of_range());
                }
                put32(img, p, with(insn()?, (v >> (16 * group)) & 0xffff, 16, 5))?;
            }
            t if (elf::R_AARCH64_TLSGD_ADR_PREL21..=elf::R_AARCH64_TLSLD_LDST128_DTPREL_LO12_NC)
                .contains(&t)
                || (elf::R_AARCH64_TLSDESC_LD_PREL19..=elf::R_AARCH64_TLSDESC_CALL).contains(&t) =>
            {
                fail!(
                    "{}: thread-local storage is not supported in modules",
                    (r.what)()
                )
            }
            elf::R_AARCH64_LD64_GOTPAGE_LO15 => fail!(
                "{}: relocation type not supported (small-model PIC: compile with -fPIC, not -fpic)",
                (r.what)()
            ),
            _ => fail!("{}: relocation type not supported", (r.what)()),
        }
        Ok(())
    }
}

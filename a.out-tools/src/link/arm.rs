//! 32-bit ARM, Thumb-2 code (ARMv7-M): ELF relocation types onto the
//! loader's arm modes.
//!
//! ARM objects carry their addends in the patched field (ELF `REL`), so
//! each type reads it back from the bytes before resolving. Thumb function
//! symbols have bit 0 set; addresses keep it, branch offsets drop it.
//! Calls to imports go through veneers that load the target from a GOT
//! slot PC-relatively. Absolute `movw`/`movt` pairs are resolved here, the
//! `movt` half also becoming the loader's `base-movt` mode (the module then
//! asks for a 64 KiB aligned base). Exception index tables (`.ARM.exidx`,
//! `PREL31`) are dropped with their unwind tables, as `.eh_frame` is on
//! other machines.

use super::image::{Image, LoadReloc, Target};
use super::machine::{Machine, Need, Reloc};
use super::{fail, LinkError};
use dynld::arch::arm::{movw_imm, with_movw_imm, BASE32, BASE_MOVT, IMPORT32};
use object::elf;
use std::collections::BTreeMap;

pub(crate) struct Backend;

/// Whether `v` fits a signed field of `bits` bits.
fn fits(v: i128, bits: u32) -> bool {
    let lim = 1i128 << (bits - 1);
    (-lim..lim).contains(&v)
}

fn sext(v: u32, bits: u32) -> i64 {
    i64::from((v << (32 - bits)) as i32 >> (32 - bits))
}

fn get16(img: &Image, at: u64) -> Result<u16, LinkError> {
    let b = img.get(at, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn put16(img: &mut Image, at: u64, w: u16) -> Result<(), LinkError> {
    img.put(at, &w.to_le_bytes())
}

/// The two halfwords of a 32-bit Thumb instruction.
fn get_pair(img: &Image, at: u64) -> Result<(u16, u16), LinkError> {
    Ok((get16(img, at)?, get16(img, at + 2)?))
}

fn put_pair(img: &mut Image, at: u64, (a, b): (u16, u16)) -> Result<(), LinkError> {
    put16(img, at, a)?;
    put16(img, at + 2, b)
}

/// The offset of a `bl`/`b.w` (encoding T4).
fn branch24(hw1: u16, hw2: u16) -> i64 {
    let s = u32::from(hw1 >> 10 & 1);
    let (j1, j2) = (u32::from(hw2 >> 13 & 1), u32::from(hw2 >> 11 & 1));
    let (i1, i2) = (!(j1 ^ s) & 1, !(j2 ^ s) & 1);
    let v =
        s << 24 | i1 << 23 | i2 << 22 | u32::from(hw1 & 0x3ff) << 12 | u32::from(hw2 & 0x7ff) << 1;
    sext(v, 25)
}

fn with_branch24(hw1: u16, hw2: u16, d: i128) -> (u16, u16) {
    let v = d as u32;
    let s = v >> 24 & 1;
    let (i1, i2) = (v >> 23 & 1, v >> 22 & 1);
    let (j1, j2) = ((!(i1 ^ s)) & 1, (!(i2 ^ s)) & 1);
    (
        hw1 & 0xf800 | (s << 10) as u16 | (v >> 12 & 0x3ff) as u16,
        hw2 & 0xd000 | (j1 << 13) as u16 | (j2 << 11) as u16 | (v >> 1 & 0x7ff) as u16,
    )
}

/// The offset of a conditional `b<c>.w` (encoding T3).
fn branch19(hw1: u16, hw2: u16) -> i64 {
    let v = u32::from(hw1 >> 10 & 1) << 20
        | u32::from(hw2 >> 11 & 1) << 19
        | u32::from(hw2 >> 13 & 1) << 18
        | u32::from(hw1 & 0x3f) << 12
        | u32::from(hw2 & 0x7ff) << 1;
    sext(v, 21)
}

fn with_branch19(hw1: u16, hw2: u16, d: i128) -> (u16, u16) {
    let v = d as u32;
    (
        hw1 & 0xfbc0 | ((v >> 20 & 1) << 10) as u16 | (v >> 12 & 0x3f) as u16,
        hw2 & 0xd000
            | ((v >> 18 & 1) << 13) as u16
            | ((v >> 19 & 1) << 11) as u16
            | (v >> 1 & 0x7ff) as u16,
    )
}

/// `movw`/`movt` Rd, #imm (encodings T3 and T1).
fn mov16(top: bool, rd: u16, imm: u16) -> (u16, u16) {
    with_movw_imm(if top { 0xf2c0 } else { 0xf240 }, rd << 8, imm)
}

/// `R_ARM_THM_JUMP11` (the `object` crate's older name: `THM_PC11`).
const THM_JUMP11: u32 = elf::R_ARM_THM_PC11;
/// `R_ARM_THM_JUMP8` (`THM_PC9`).
const THM_JUMP8: u32 = elf::R_ARM_THM_PC9;

const IP: u16 = 12;
/// `add ip, pc`.
const ADD_IP_PC: u16 = 0x44fc;
/// `ldr.w pc, [ip]`.
const LDR_PC_IP: (u16, u16) = (0xf8dc, 0xf000);
/// `ldr.w pc, [pc]` (the word after it, 4-aligned).
const LDR_PC_PC: (u16, u16) = (0xf8df, 0xf000);
const NOP: u16 = 0xbf00;
/// `bx ip`.
const BX_IP: u16 = 0x4760;

impl Backend {
    /// `movw ip, #lo(d); movt ip, #hi(d); add ip, pc` at `at`, leaving
    /// `at + 12 + d` in ip.
    fn ip_relative(&self, img: &mut Image, at: u64, to: u64) -> Result<(), LinkError> {
        let d = (to as i64 - (at as i64 + 12)) as u32;
        put_pair(img, at, mov16(false, IP, d as u16))?;
        put_pair(img, at + 4, mov16(true, IP, (d >> 16) as u16))?;
        put16(img, at + 8, ADD_IP_PC)
    }
}

impl Machine for Backend {
    fn needs(&self, r_type: u32) -> Need {
        match r_type {
            elf::R_ARM_THM_PC22 | elf::R_ARM_THM_JUMP24 => Need::Stub,
            _ => Need::None,
        }
    }

    fn width(&self, r_type: u32) -> u64 {
        match r_type {
            elf::R_ARM_NONE | elf::R_ARM_V4BX => 0,
            THM_JUMP11 | THM_JUMP8 | elf::R_ARM_THM_PC8 => 2,
            elf::R_ARM_ABS16 => 2,
            elf::R_ARM_ABS8 => 1,
            _ => 4,
        }
    }

    fn branch_reach(&self) -> Option<u64> {
        Some(1 << 24)
    }

    fn call_addend(&self, _r_type: u32, f: &[u8]) -> i64 {
        match f {
            [a, b, c, d, ..] => {
                branch24(u16::from_le_bytes([*a, *b]), u16::from_le_bytes([*c, *d])) + 4
            }
            _ => 0,
        }
    }

    /// `movw ip; movt ip; add ip, pc; bx ip; nop; nop`.
    fn veneer_size(&self) -> u64 {
        16
    }

    fn write_veneer(&self, img: &mut Image, at: u64, to: u64) -> Result<(), LinkError> {
        self.ip_relative(img, at, to | 1)?;
        put16(img, at + 10, BX_IP)?;
        put16(img, at + 12, NOP)?;
        put16(img, at + 14, NOP)
    }

    fn implicit_addends(&self) -> bool {
        true
    }

    fn code_address(&self, v: u64) -> u64 {
        v | 1
    }

    /// Small: embedded users count bytes, and the text need not be
    /// page-aligned without an MMU. The data starts 8-aligned after it.
    fn page_size(&self) -> u64 {
        8
    }

    /// `movw ip; movt ip; add ip, pc; ldr.w pc, [ip]; nop`.
    fn stub_size(&self) -> u64 {
        16
    }

    fn write_stub(&self, img: &mut Image, at: u64, slot: u64) -> Result<(), LinkError> {
        self.ip_relative(img, at, slot)?;
        put_pair(img, at + 10, LDR_PC_IP)?;
        put16(img, at + 14, NOP)
    }

    /// `ldr.w pc, [pc]; .word v`.
    fn abs_stub_size(&self) -> u64 {
        8
    }

    fn write_abs_stub(&self, img: &mut Image, at: u64, v: u64) -> Result<(), LinkError> {
        put_pair(img, at, LDR_PC_PC)?;
        let v =
            u32::try_from(v).map_err(|_| LinkError(format!("address {v:#x} beyond 32 bits")))?;
        img.put(at + 4, &v.to_le_bytes())
    }

    /// `push {r4, lr}; (movs r0..r2, #0; bl f)...; pop {r4, pc}`.
    /// `movs r1, #0; movw r2, #lo; movt r2, #hi; add r2, pc; b.w stub`,
    /// where `hi:lo` is `dso` less the `add`'s PC.
    fn atexit_size(&self) -> u64 {
        16
    }

    fn write_atexit(&self, img: &mut Image, at: u64, dso: u64, stub: u64) -> Result<(), LinkError> {
        let d = (i128::from(dso) - i128::from(at + 10 + 4)) as u32;
        put16(img, at, 0x2100)?;
        put_pair(img, at + 2, mov16(false, 2, d as u16))?;
        put_pair(img, at + 6, mov16(true, 2, (d >> 16) as u16))?;
        put16(img, at + 10, 0x447a)?;
        let b = i128::from(stub & !1) - i128::from(at + 12 + 4);
        if !fits(b, 25) {
            fail!("atexit: the __cxa_atexit stub out of range");
        }
        put_pair(img, at + 12, with_branch24(0xf000, 0x9000, b))
    }

    fn write_word(&self, img: &mut Image, at: u64, t: &Target) -> Result<(), LinkError> {
        let (v, reloc) = match t {
            Target::Local(v) => (*v, Some(LoadReloc::base(at, BASE32))),
            Target::Abs(v) => (*v, None),
            Target::Import(n) => (0, Some(LoadReloc::import(at, IMPORT32, n))),
        };
        let v =
            u32::try_from(v).map_err(|_| LinkError(format!("address {v:#x} beyond 32 bits")))?;
        img.put(at, &v.to_le_bytes())?;
        img.relocs.extend(reloc);
        Ok(())
    }

    fn type_name(&self, r_type: u32) -> String {
        let n = match r_type {
            elf::R_ARM_NONE => "R_ARM_NONE",
            elf::R_ARM_ABS32 => "R_ARM_ABS32",
            elf::R_ARM_REL32 => "R_ARM_REL32",
            elf::R_ARM_ABS16 => "R_ARM_ABS16",
            elf::R_ARM_ABS8 => "R_ARM_ABS8",
            elf::R_ARM_THM_PC22 => "R_ARM_THM_CALL",
            elf::R_ARM_THM_PC8 => "R_ARM_THM_PC8",
            elf::R_ARM_GOTPC => "R_ARM_BASE_PREL",
            elf::R_ARM_GOT32 => "R_ARM_GOT_BREL",
            elf::R_ARM_CALL => "R_ARM_CALL",
            elf::R_ARM_JUMP24 => "R_ARM_JUMP24",
            elf::R_ARM_THM_JUMP24 => "R_ARM_THM_JUMP24",
            elf::R_ARM_TARGET1 => "R_ARM_TARGET1",
            elf::R_ARM_V4BX => "R_ARM_V4BX",
            elf::R_ARM_PREL31 => "R_ARM_PREL31",
            elf::R_ARM_MOVW_ABS_NC => "R_ARM_MOVW_ABS_NC",
            elf::R_ARM_MOVT_ABS => "R_ARM_MOVT_ABS",
            elf::R_ARM_THM_MOVW_ABS_NC => "R_ARM_THM_MOVW_ABS_NC",
            elf::R_ARM_THM_MOVT_ABS => "R_ARM_THM_MOVT_ABS",
            elf::R_ARM_THM_MOVW_PREL_NC => "R_ARM_THM_MOVW_PREL_NC",
            elf::R_ARM_THM_MOVT_PREL => "R_ARM_THM_MOVT_PREL",
            elf::R_ARM_THM_JUMP19 => "R_ARM_THM_JUMP19",
            elf::R_ARM_GOT_PREL => "R_ARM_GOT_PREL",
            THM_JUMP11 => "R_ARM_THM_JUMP11",
            THM_JUMP8 => "R_ARM_THM_JUMP8",
            elf::R_ARM_TLS_GD32 => "R_ARM_TLS_GD32",
            elf::R_ARM_TLS_LE32 => "R_ARM_TLS_LE32",
            elf::R_ARM_TLS_IE32 => "R_ARM_TLS_IE32",
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
        let p = r.offset;
        let what = || (r.what)();
        let out_of_range = || LinkError(format!("{}: value out of range", what()));
        let word = |img: &Image| -> Result<u32, LinkError> { img.get32(p) };
        // The addend: from the field (REL), else the record's.
        let addend = |implicit: i64| if r.implicit { implicit } else { r.addend };
        let local = |msg: &str| -> Result<u64, LinkError> {
            match r.target {
                Target::Local(v) => Ok(v),
                _ => Err(LinkError(format!("{}: {msg}", what()))),
            }
        };
        match r.r_type {
            elf::R_ARM_NONE | elf::R_ARM_V4BX => {}
            elf::R_ARM_ABS32 | elf::R_ARM_TARGET1 => {
                let a = addend(i64::from(word(img)? as i32));
                match &r.target {
                    Target::Local(v) => {
                        let v = i128::from(*v) + i128::from(a);
                        let v = i32::try_from(v)
                            .map(|x| x as u32)
                            .or_else(|_| u32::try_from(v))
                            .map_err(|_| out_of_range())?;
                        img.put(p, &v.to_le_bytes())?;
                        img.relocs.push(LoadReloc::base(p, BASE32));
                    }
                    Target::Abs(v) => {
                        img.put(p, &(*v as u32).wrapping_add(a as u32).to_le_bytes())?
                    }
                    Target::Import(n) => {
                        img.put(p, &(a as u32).to_le_bytes())?;
                        img.relocs.push(LoadReloc::import(p, IMPORT32, n));
                    }
                }
            }
            elf::R_ARM_REL32 | elf::R_ARM_PREL31 => {
                let w = word(img)?;
                let v = local("only the module's own symbols can be reached PC-relatively")?;
                if r.r_type == elf::R_ARM_REL32 {
                    let a = addend(i64::from(w as i32));
                    let d = i128::from(v) + i128::from(a) - i128::from(p);
                    let d = i32::try_from(d).map_err(|_| out_of_range())?;
                    img.put(p, &d.to_le_bytes())?;
                } else {
                    let a = addend(sext(w & 0x7fff_ffff, 31));
                    let d = i128::from(v) + i128::from(a) - i128::from(p);
                    if !fits(d, 31) {
                        return Err(out_of_range());
                    }
                    img.put(p, &(w & 0x8000_0000 | d as u32 & 0x7fff_ffff).to_le_bytes())?;
                }
            }
            elf::R_ARM_THM_PC22 | elf::R_ARM_THM_JUMP24 => {
                let (hw1, hw2) = get_pair(img, p)?;
                let a = addend(branch24(hw1, hw2));
                let t = match &r.target {
                    Target::Local(v) => *v,
                    Target::Import(n) => img.stub(
                        n,
                        *stubs
                            .get(n)
                            .ok_or_else(|| LinkError(format!("{}: no stub", what())))?,
                        p,
                    ),
                    Target::Abs(v) => *abs_stubs
                        .get(v)
                        .ok_or_else(|| LinkError(format!("{}: no stub", what())))?,
                };
                if r.r_type == elf::R_ARM_THM_PC22 && hw2 & 0x1000 == 0 {
                    fail!(
                        "{}: blx to ARM (A32) code is not supported: compile everything for Thumb",
                        what()
                    );
                }
                // Thumb to Thumb: bit 0 of the target is not an offset bit.
                let mut d = (i128::from(t) + i128::from(a) - i128::from(p)) & !1;
                if !fits(d, 25) && matches!(r.target, Target::Local(_)) {
                    // Through the nearest veneer to the address called.
                    let called = u64::try_from(i128::from(t) + i128::from(a) + 4).ok();
                    if let Some(v) = called.and_then(|c| img.veneer(c, p)) {
                        d = i128::from(v) - i128::from(p + 4);
                    }
                }
                if !fits(d, 25) {
                    fail!(
                        "{}: branch target out of range (more than 16 MiB away)",
                        what()
                    );
                }
                put_pair(img, p, with_branch24(hw1, hw2, d))?;
            }
            elf::R_ARM_THM_JUMP19 => {
                let (hw1, hw2) = get_pair(img, p)?;
                let v = local("only the module's own code can be reached by a conditional branch")?;
                let d =
                    (i128::from(v) + i128::from(addend(branch19(hw1, hw2))) - i128::from(p)) & !1;
                if !fits(d, 21) {
                    return Err(out_of_range());
                }
                put_pair(img, p, with_branch19(hw1, hw2, d))?;
            }
            THM_JUMP11 | THM_JUMP8 => {
                let insn = get16(img, p)?;
                let bits = if r.r_type == THM_JUMP11 { 11 } else { 8 };
                let mask = (1u16 << bits) - 1;
                let a = addend(sext(u32::from(insn & mask) << 1, bits + 1));
                let v = local("only the module's own code can be reached by a short branch")?;
                let d = (i128::from(v) + i128::from(a) - i128::from(p)) & !1;
                if !fits(d, bits + 1) {
                    return Err(out_of_range());
                }
                put16(img, p, insn & !mask | (d >> 1) as u16 & mask)?;
            }
            elf::R_ARM_THM_MOVW_ABS_NC | elf::R_ARM_THM_MOVT_ABS => {
                let (hw1, hw2) = get_pair(img, p)?;
                let a = addend(i64::from(movw_imm(hw1, hw2) as i16));
                let top = r.r_type == elf::R_ARM_THM_MOVT_ABS;
                let (v, local) = match &r.target {
                    Target::Local(v) => (*v, true),
                    Target::Abs(v) => (*v, false),
                    Target::Import(_) => fail!(
                        "{}: an import's address cannot be built with movw/movt (take it from data, or call it)",
                        what()
                    ),
                };
                let v = (v as u32).wrapping_add(a as u32);
                let imm = if top { (v >> 16) as u16 } else { v as u16 };
                put_pair(img, p, with_movw_imm(hw1, hw2, imm))?;
                if local && top {
                    img.relocs.push(LoadReloc::base(p, BASE_MOVT));
                }
            }
            elf::R_ARM_THM_MOVW_PREL_NC | elf::R_ARM_THM_MOVT_PREL => {
                let (hw1, hw2) = get_pair(img, p)?;
                let a = addend(i64::from(movw_imm(hw1, hw2) as i16));
                let v = local("only the module's own symbols can be reached PC-relatively")?;
                let d = (v as u32).wrapping_add(a as u32).wrapping_sub(p as u32);
                let imm = if r.r_type == elf::R_ARM_THM_MOVT_PREL {
                    (d >> 16) as u16
                } else {
                    d as u16
                };
                put_pair(img, p, with_movw_imm(hw1, hw2, imm))?;
            }
            elf::R_ARM_CALL | elf::R_ARM_JUMP24 | elf::R_ARM_MOVW_ABS_NC | elf::R_ARM_MOVT_ABS => {
                fail!(
                    "{}: ARM (A32) code is not supported: compile for Thumb (-mthumb)",
                    what()
                )
            }
            t if (elf::R_ARM_TLS_GD32..=elf::R_ARM_TLS_LE32).contains(&t)
                || (elf::R_ARM_TLS_DTPMOD32..=elf::R_ARM_TLS_TPOFF32).contains(&t)
                || (elf::R_ARM_TLS_GOTDESC..=elf::R_ARM_THM_TLS_CALL).contains(&t) =>
            {
                fail!(
                    "{}: thread-local storage is not supported in modules",
                    what()
                )
            }
            _ => fail!("{}: relocation type not supported", what()),
        }
        Ok(())
    }
}

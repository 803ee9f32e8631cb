//! RISC-V (RV64 and RV32): ELF relocation types onto the loader's modes.
//!
//! Every PC-relative form is resolved here. A `%pcrel_lo` relocation names
//! the label of its `auipc`; the high part's value is looked up by that
//! label's address (high parts are applied first). No relaxation is done:
//! `R_RISCV_RELAX` is ignored, and `R_RISCV_ALIGN` needs nothing, because
//! the padding the assembler emitted is right as long as each section keeps
//! its alignment, which the layout guarantees. `ADD`/`SUB` pairs (label
//! differences) cancel the load base and are resolved here; absolute
//! `lui` immediates (`HI20`) become the loader's `base-hi20` mode, and their
//! `LO12` parts are resolved here (the module asks for a 4 KiB aligned base).

use super::image::{Image, LoadReloc, Target};
use super::machine::{Machine, Need, Reloc};
use super::{fail, LinkError};
use dynld::arch::riscv::{BASE, BASE32, BASE_HI20, IMPORT};
use object::elf;
use std::collections::BTreeMap;

pub(crate) struct Backend {
    /// 32 or 64.
    pub xlen: u32,
}

/// `v + a - p` (or `v + a` without a place), exactly.
fn value(v: u64, a: i64, p: Option<u64>) -> i128 {
    i128::from(v) + i128::from(a) - p.map_or(0, i128::from)
}

/// Whether `v` fits a signed field of `bits` bits.
fn fits(v: i128, bits: u32) -> bool {
    let lim = 1i128 << (bits - 1);
    (-lim..lim).contains(&v)
}

/// Bits `hi..=lo` of `v`, moved to bit `at`.
fn bits(v: i128, hi: u32, lo: u32, at: u32) -> u32 {
    ((v as u64 >> lo) as u32 & ((1u32 << (hi - lo + 1)) - 1)) << at
}

/// `(hi20, lo12)` with `hi20 << 12 + lo12 == v`, `lo12` signed.
fn split(v: i128) -> Option<(i128, i128)> {
    let hi = (v + 0x800) >> 12;
    fits(hi, 20).then_some((hi, v - (hi << 12)))
}

fn set_u(insn: u32, hi: i128) -> u32 {
    insn & 0xfff | bits(hi, 19, 0, 12)
}

fn set_i(insn: u32, lo: i128) -> u32 {
    insn & 0x000f_ffff | bits(lo, 11, 0, 20)
}

fn set_s(insn: u32, lo: i128) -> u32 {
    insn & 0x01ff_f07f | bits(lo, 11, 5, 25) | bits(lo, 4, 0, 7)
}

fn set_b(insn: u32, d: i128) -> u32 {
    insn & 0x01ff_f07f
        | bits(d, 12, 12, 31)
        | bits(d, 10, 5, 25)
        | bits(d, 4, 1, 8)
        | bits(d, 11, 11, 7)
}

fn set_j(insn: u32, d: i128) -> u32 {
    insn & 0xfff
        | bits(d, 20, 20, 31)
        | bits(d, 10, 1, 21)
        | bits(d, 11, 11, 20)
        | bits(d, 19, 12, 12)
}

fn set_cb(insn: u16, d: i128) -> u16 {
    let d = |hi, lo, at| bits(d, hi, lo, at) as u16;
    insn & 0xe383 | d(8, 8, 12) | d(4, 3, 10) | d(7, 6, 5) | d(2, 1, 3) | d(5, 5, 2)
}

fn set_cj(insn: u16, d: i128) -> u16 {
    let d = |hi, lo, at| bits(d, hi, lo, at) as u16;
    insn & 0xe003
        | d(11, 11, 12)
        | d(4, 4, 11)
        | d(9, 8, 9)
        | d(10, 10, 8)
        | d(6, 6, 7)
        | d(7, 7, 6)
        | d(3, 1, 3)
        | d(5, 5, 2)
}

const T3: u32 = 28;
const NOP: u32 = 0x0000_0013;

fn auipc(rd: u32) -> u32 {
    0x17 | rd << 7
}
fn jalr(rd: u32, rs1: u32) -> u32 {
    0x67 | rd << 7 | rs1 << 15
}

/// Sets the low 12 bits of the I-type (`itype`) or S-type instruction at
/// `at` to `lo`.
fn put_lo12(img: &mut Image, at: u64, lo: i128, itype: bool) -> Result<(), LinkError> {
    let insn = img.get32(at)?;
    put32(
        img,
        at,
        if itype {
            set_i(insn, lo)
        } else {
            set_s(insn, lo)
        },
    )
}

fn put32(img: &mut Image, at: u64, w: u32) -> Result<(), LinkError> {
    img.put(at, &w.to_le_bytes())
}

fn put16(img: &mut Image, at: u64, w: u16) -> Result<(), LinkError> {
    img.put(at, &w.to_le_bytes())
}

fn get16(img: &Image, at: u64) -> Result<u16, LinkError> {
    let b = img.get(at, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

impl Backend {
    /// `ld` or `lw` of `rd` from `imm(rs1)`.
    fn load(&self, rd: u32, rs1: u32) -> u32 {
        let f3 = if self.xlen == 64 { 3 } else { 2 };
        0x03 | rd << 7 | f3 << 12 | rs1 << 15
    }

    /// An `auipc rd; <insn> rd` pair at `at` reaching `to`.
    fn pair(
        &self,
        img: &mut Image,
        at: u64,
        to: i128,
        rd: u32,
        second: u32,
    ) -> Result<(), LinkError> {
        let (hi, lo) = split(to - i128::from(at))
            .ok_or_else(|| LinkError(format!("target out of range of {at:#x}")))?;
        put32(img, at, set_u(auipc(rd), hi))?;
        put32(img, at + 4, set_i(second, lo))
    }

    fn word(&self) -> u64 {
        u64::from(self.xlen / 8)
    }
}

impl Machine for Backend {
    fn needs(&self, r_type: u32) -> Need {
        match r_type {
            elf::R_RISCV_GOT_HI20 => Need::Got,
            elf::R_RISCV_CALL | elf::R_RISCV_CALL_PLT | elf::R_RISCV_JAL => Need::Stub,
            _ => Need::None,
        }
    }

    fn width(&self, r_type: u32) -> u64 {
        match r_type {
            elf::R_RISCV_NONE | elf::R_RISCV_RELAX | elf::R_RISCV_ALIGN => 0,
            elf::R_RISCV_CALL | elf::R_RISCV_CALL_PLT | elf::R_RISCV_64 => 8,
            elf::R_RISCV_ADD64 | elf::R_RISCV_SUB64 => 8,
            elf::R_RISCV_ADD16 | elf::R_RISCV_SUB16 | elf::R_RISCV_SET16 => 2,
            elf::R_RISCV_RVC_BRANCH | elf::R_RISCV_RVC_JUMP | elf::R_RISCV_RVC_LUI => 2,
            elf::R_RISCV_ADD8
            | elf::R_RISCV_SUB8
            | elf::R_RISCV_SET8
            | elf::R_RISCV_SUB6
            | elf::R_RISCV_SET6 => 1,
            _ => 4,
        }
    }

    fn may_share(&self, a: u32, b: u32) -> bool {
        let pair = |x: u32, y: u32| {
            matches!(
                (x, y),
                (elf::R_RISCV_ADD8, elf::R_RISCV_SUB8)
                    | (elf::R_RISCV_ADD16, elf::R_RISCV_SUB16)
                    | (elf::R_RISCV_ADD32, elf::R_RISCV_SUB32)
                    | (elf::R_RISCV_ADD64, elf::R_RISCV_SUB64)
                    | (elf::R_RISCV_SET6, elf::R_RISCV_SUB6)
                    | (elf::R_RISCV_SET8, elf::R_RISCV_SUB8)
                    | (elf::R_RISCV_SET16, elf::R_RISCV_SUB16)
                    | (elf::R_RISCV_SET32, elf::R_RISCV_SUB32)
            )
        };
        pair(a, b) || pair(b, a)
    }

    fn must_pair(&self, r_type: u32) -> bool {
        matches!(
            r_type,
            elf::R_RISCV_ADD8
                | elf::R_RISCV_ADD16
                | elf::R_RISCV_ADD32
                | elf::R_RISCV_ADD64
                | elf::R_RISCV_SUB6
                | elf::R_RISCV_SUB8
                | elf::R_RISCV_SUB16
                | elf::R_RISCV_SUB32
                | elf::R_RISCV_SUB64
                | elf::R_RISCV_SET6
                | elf::R_RISCV_SET8
                | elf::R_RISCV_SET16
                | elf::R_RISCV_SET32
        )
    }

    fn pass(&self, r_type: u32) -> u8 {
        match r_type {
            elf::R_RISCV_PCREL_HI20 | elf::R_RISCV_GOT_HI20 => 0,
            // SET before SUB at one place, so the difference is exact.
            elf::R_RISCV_SET6 | elf::R_RISCV_SET8 | elf::R_RISCV_SET16 | elf::R_RISCV_SET32 => 1,
            _ => 2,
        }
    }

    fn page_size(&self) -> u64 {
        4096
    }

    /// `LO12` parts are resolved here against a page-aligned base (the
    /// `lui` halves' mode asks the same); `auipc` pairs assume nothing.
    fn base_align(&self) -> u64 {
        4096
    }

    /// `auipc t3, %pcrel_hi(slot); l[dw] t3, %pcrel_lo(slot)(t3); jr t3; nop`.
    fn stub_size(&self) -> u64 {
        16
    }

    fn write_stub(&self, img: &mut Image, at: u64, slot: u64) -> Result<(), LinkError> {
        self.pair(img, at, i128::from(slot), T3, self.load(T3, T3))?;
        put32(img, at + 8, jalr(0, T3))?;
        put32(img, at + 12, NOP)
    }

    /// `auipc t3, 0; l[dw] t3, 16(t3); jr t3; nop; .dword/.word v`.
    fn abs_stub_size(&self) -> u64 {
        16 + 8
    }

    fn write_abs_stub(&self, img: &mut Image, at: u64, v: u64) -> Result<(), LinkError> {
        put32(img, at, auipc(T3))?;
        put32(img, at + 4, set_i(self.load(T3, T3), 16))?;
        put32(img, at + 8, jalr(0, T3))?;
        put32(img, at + 12, NOP)?;
        img.put(at + 16, &v.to_le_bytes()[..self.word() as usize])?;
        if self.xlen == 32 {
            put32(img, at + 20, 0)?;
        }
        Ok(())
    }

    /// `addi sp, sp, -16; s[dw] ra; (li a0..a2, 0; call f)...; l[dw] ra;
    /// addi sp, sp, 16; ret`.
    /// `li a1, 0; auipc a2, %pcrel_hi(dso); addi a2, a2, %pcrel_lo(dso);
    /// auipc t1, %pcrel_hi(stub); jr %pcrel_lo(stub)(t1)`.
    fn atexit_size(&self) -> u64 {
        20
    }

    fn write_atexit(&self, img: &mut Image, at: u64, dso: u64, stub: u64) -> Result<(), LinkError> {
        const A2: u32 = 12;
        const T1: u32 = 6;
        put32(img, at, 0x13 | 11 << 7)?; // addi a1, zero, 0
        self.pair(img, at + 4, i128::from(dso), A2, 0x13 | A2 << 7 | A2 << 15)?;
        self.pair(img, at + 12, i128::from(stub), T1, jalr(0, T1))
    }

    fn write_word(&self, img: &mut Image, at: u64, t: &Target) -> Result<(), LinkError> {
        let n = self.word() as usize;
        match t {
            Target::Local(v) => {
                img.put(at, &v.to_le_bytes()[..n])?;
                img.relocs.push(LoadReloc::base(at, BASE));
            }
            Target::Abs(v) => img.put(at, &v.to_le_bytes()[..n])?,
            Target::Import(name) => {
                img.put(at, &0u64.to_le_bytes()[..n])?;
                img.relocs.push(LoadReloc::import(at, IMPORT, name));
            }
        }
        Ok(())
    }

    fn type_name(&self, r_type: u32) -> String {
        let n = match r_type {
            elf::R_RISCV_NONE => "R_RISCV_NONE",
            elf::R_RISCV_32 => "R_RISCV_32",
            elf::R_RISCV_64 => "R_RISCV_64",
            elf::R_RISCV_BRANCH => "R_RISCV_BRANCH",
            elf::R_RISCV_JAL => "R_RISCV_JAL",
            elf::R_RISCV_CALL => "R_RISCV_CALL",
            elf::R_RISCV_CALL_PLT => "R_RISCV_CALL_PLT",
            elf::R_RISCV_GOT_HI20 => "R_RISCV_GOT_HI20",
            elf::R_RISCV_TLS_GOT_HI20 => "R_RISCV_TLS_GOT_HI20",
            elf::R_RISCV_TLS_GD_HI20 => "R_RISCV_TLS_GD_HI20",
            elf::R_RISCV_PCREL_HI20 => "R_RISCV_PCREL_HI20",
            elf::R_RISCV_PCREL_LO12_I => "R_RISCV_PCREL_LO12_I",
            elf::R_RISCV_PCREL_LO12_S => "R_RISCV_PCREL_LO12_S",
            elf::R_RISCV_HI20 => "R_RISCV_HI20",
            elf::R_RISCV_LO12_I => "R_RISCV_LO12_I",
            elf::R_RISCV_LO12_S => "R_RISCV_LO12_S",
            elf::R_RISCV_TPREL_HI20 => "R_RISCV_TPREL_HI20",
            elf::R_RISCV_TPREL_LO12_I => "R_RISCV_TPREL_LO12_I",
            elf::R_RISCV_TPREL_LO12_S => "R_RISCV_TPREL_LO12_S",
            elf::R_RISCV_TPREL_ADD => "R_RISCV_TPREL_ADD",
            elf::R_RISCV_ADD8 => "R_RISCV_ADD8",
            elf::R_RISCV_ADD16 => "R_RISCV_ADD16",
            elf::R_RISCV_ADD32 => "R_RISCV_ADD32",
            elf::R_RISCV_ADD64 => "R_RISCV_ADD64",
            elf::R_RISCV_SUB8 => "R_RISCV_SUB8",
            elf::R_RISCV_SUB16 => "R_RISCV_SUB16",
            elf::R_RISCV_SUB32 => "R_RISCV_SUB32",
            elf::R_RISCV_SUB64 => "R_RISCV_SUB64",
            elf::R_RISCV_ALIGN => "R_RISCV_ALIGN",
            elf::R_RISCV_RVC_BRANCH => "R_RISCV_RVC_BRANCH",
            elf::R_RISCV_RVC_JUMP => "R_RISCV_RVC_JUMP",
            elf::R_RISCV_RVC_LUI => "R_RISCV_RVC_LUI",
            elf::R_RISCV_RELAX => "R_RISCV_RELAX",
            elf::R_RISCV_SUB6 => "R_RISCV_SUB6",
            elf::R_RISCV_SET6 => "R_RISCV_SET6",
            elf::R_RISCV_SET8 => "R_RISCV_SET8",
            elf::R_RISCV_SET16 => "R_RISCV_SET16",
            elf::R_RISCV_SET32 => "R_RISCV_SET32",
            elf::R_RISCV_32_PCREL => "R_RISCV_32_PCREL",
            elf::R_RISCV_SET_ULEB128 => "R_RISCV_SET_ULEB128",
            elf::R_RISCV_SUB_ULEB128 => "R_RISCV_SUB_ULEB128",
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
        let what = || (r.what)();
        let out_of_range = || LinkError(format!("{}: value out of range", what()));
        let local = |msg: &str| -> Result<i128, LinkError> {
            match r.target {
                Target::Local(v) => Ok(value(v, a, None)),
                _ => Err(LinkError(format!("{}: {msg}", what()))),
            }
        };
        // Code built with -fno-pic reaches data directly: with
        // -mcmodel=medany PC-relatively, with medlow by an absolute
        // lui/addi. Neither can reach an import, whose address is known
        // only at load; without -fno-pic (the toolchains' default -fPIE,
        // or -fPIC) either model reaches imports through the GOT.
        const PIC: &str = "an import or absolute address cannot be reached PC-relatively (code built with -fno-pic does so, with -mcmodel=medany): compile without -fno-pic (the default -fPIE) or with -fPIC, which reach imports through the GOT";
        const LUI: &str = "an import's address cannot be built with lui/addi (code built with -fno-pic does so, with -mcmodel=medlow; with medany it reaches imports PC-relatively, which fails as well): compile without -fno-pic (the default -fPIE) or with -fPIC, which reach imports through the GOT in either code model";
        match r.r_type {
            elf::R_RISCV_NONE | elf::R_RISCV_RELAX | elf::R_RISCV_ALIGN => {}
            elf::R_RISCV_64 | elf::R_RISCV_32 => {
                let n = if r.r_type == elf::R_RISCV_64 { 8 } else { 4 };
                match &r.target {
                    Target::Abs(v) => {
                        let v = value(*v, a, None);
                        if n == 4 && !(fits(v, 32) || u32::try_from(v).is_ok()) {
                            return Err(out_of_range());
                        }
                        img.put(p, &(v as i64).to_le_bytes()[..n])?;
                    }
                    Target::Local(v) if n == 4 && self.xlen == 64 => {
                        // An absolute jump table of medlow code: the module
                        // must load below 2 GiB.
                        let v = value(*v, a, None);
                        let v = u32::try_from(v).map_err(|_| out_of_range())?;
                        img.put(p, &v.to_le_bytes())?;
                        img.relocs.push(LoadReloc::base(p, BASE32));
                    }
                    _ if n != self.word() as usize => fail!(
                        "{}: a {}-bit word cannot hold an address on this architecture",
                        what(),
                        n * 8
                    ),
                    Target::Local(v) => {
                        // May lie below the image: the loader adds the base
                        // with wrapping arithmetic.
                        let v = value(*v, a, None);
                        if !fits(v, 8 * n as u32) {
                            return Err(out_of_range());
                        }
                        img.put(p, &(v as i64).to_le_bytes()[..n])?;
                        img.relocs.push(LoadReloc::base(p, BASE));
                    }
                    Target::Import(name) => {
                        img.put(p, &a.to_le_bytes()[..n])?;
                        img.relocs.push(LoadReloc::import(p, IMPORT, name));
                    }
                }
            }
            elf::R_RISCV_CALL | elf::R_RISCV_CALL_PLT => {
                let t = match &r.target {
                    Target::Local(v) => value(*v, a, None),
                    Target::Import(n) => value(
                        *stubs
                            .get(n)
                            .ok_or_else(|| LinkError(format!("{}: no stub", what())))?,
                        a,
                        None,
                    ),
                    Target::Abs(v) => value(
                        *abs_stubs
                            .get(v)
                            .ok_or_else(|| LinkError(format!("{}: no stub", what())))?,
                        a,
                        None,
                    ),
                };
                let (hi, lo) = split(t - i128::from(p)).ok_or_else(out_of_range)?;
                let (i1, i2) = (img.get32(p)?, img.get32(p + 4)?);
                put32(img, p, set_u(i1, hi))?;
                put32(img, p + 4, set_i(i2, lo))?;
            }
            elf::R_RISCV_JAL => {
                let t = match &r.target {
                    Target::Import(n) => value(
                        *stubs
                            .get(n)
                            .ok_or_else(|| LinkError(format!("{}: no stub", what())))?,
                        a,
                        None,
                    ),
                    _ => local("a jump to an absolute address cannot be expressed")?,
                };
                let d = t - i128::from(p);
                if d & 1 != 0 || !fits(d, 21) {
                    return Err(out_of_range());
                }
                put32(img, p, set_j(img.get32(p)?, d))?;
            }
            elf::R_RISCV_BRANCH => {
                let d =
                    local("only the module's own code can be reached by a branch")? - i128::from(p);
                if d & 1 != 0 || !fits(d, 13) {
                    return Err(out_of_range());
                }
                put32(img, p, set_b(img.get32(p)?, d))?;
            }
            elf::R_RISCV_RVC_BRANCH | elf::R_RISCV_RVC_JUMP => {
                let d = local("only the module's own code can be reached by a compressed branch")?
                    - i128::from(p);
                let insn = get16(img, p)?;
                let w = match r.r_type {
                    elf::R_RISCV_RVC_BRANCH if d & 1 == 0 && fits(d, 9) => set_cb(insn, d),
                    elf::R_RISCV_RVC_JUMP if d & 1 == 0 && fits(d, 12) => set_cj(insn, d),
                    _ => return Err(out_of_range()),
                };
                put16(img, p, w)?;
            }
            elf::R_RISCV_PCREL_HI20 | elf::R_RISCV_GOT_HI20 => {
                let t = if r.r_type == elf::R_RISCV_GOT_HI20 {
                    let slot = *img
                        .got
                        .get(&r.target)
                        .ok_or_else(|| LinkError(format!("{}: no GOT slot", what())))?;
                    value(slot, a, None)
                } else {
                    local(PIC)?
                };
                let d = t - i128::from(p);
                let (hi, _) = split(d).ok_or_else(out_of_range)?;
                put32(img, p, set_u(img.get32(p)?, hi))?;
                img.pcrel_hi.insert(p, d);
            }
            elf::R_RISCV_PCREL_LO12_I | elf::R_RISCV_PCREL_LO12_S => {
                // The symbol is the label of the auipc holding the high part.
                let Target::Local(label) = r.target else {
                    fail!("{}: the low part must name its auipc's label", what())
                };
                let at = u64::try_from(value(label, a, None)).map_err(|_| out_of_range())?;
                let Some(&d) = img.pcrel_hi.get(&at) else {
                    fail!(
                        "{}: no R_RISCV_PCREL_HI20 or R_RISCV_GOT_HI20 at the label it names (image offset {at:#x})",
                        what()
                    )
                };
                let (_, lo) = split(d).ok_or_else(out_of_range)?;
                put_lo12(img, p, lo, r.r_type == elf::R_RISCV_PCREL_LO12_I)?;
            }
            elf::R_RISCV_HI20 => {
                let insn = img.get32(p)?;
                match &r.target {
                    Target::Local(v) => {
                        let (hi, _) = split(value(*v, a, None)).ok_or_else(out_of_range)?;
                        put32(img, p, set_u(insn, hi))?;
                        img.relocs.push(LoadReloc::base(p, BASE_HI20));
                    }
                    Target::Abs(v) => {
                        let (hi, _) = split(value(*v, a, None)).ok_or_else(out_of_range)?;
                        put32(img, p, set_u(insn, hi))?;
                    }
                    Target::Import(_) => fail!("{}: {LUI}", what()),
                }
            }
            elf::R_RISCV_LO12_I | elf::R_RISCV_LO12_S => {
                let v = match &r.target {
                    Target::Local(v) | Target::Abs(v) => value(*v, a, None),
                    Target::Import(_) => fail!("{}: {LUI}", what()),
                };
                let (_, lo) = split(v).ok_or_else(out_of_range)?;
                put_lo12(img, p, lo, r.r_type == elf::R_RISCV_LO12_I)?;
            }
            elf::R_RISCV_32_PCREL => {
                let d = local(PIC)? - i128::from(p);
                let d = i32::try_from(d).map_err(|_| out_of_range())?;
                img.put(p, &d.to_le_bytes())?;
            }
            t @ (elf::R_RISCV_ADD8
            | elf::R_RISCV_ADD16
            | elf::R_RISCV_ADD32
            | elf::R_RISCV_ADD64
            | elf::R_RISCV_SUB6
            | elf::R_RISCV_SUB8
            | elf::R_RISCV_SUB16
            | elf::R_RISCV_SUB32
            | elf::R_RISCV_SUB64
            | elf::R_RISCV_SET6
            | elf::R_RISCV_SET8
            | elf::R_RISCV_SET16
            | elf::R_RISCV_SET32) => {
                // Label differences: both ends are the module's own, so the
                // load base cancels.
                let v = local("a label difference must name the module's own symbols")?;
                let n = self.width(t) as usize;
                let old = img
                    .get(p, n)?
                    .iter()
                    .rev()
                    .fold(0u64, |x, &b| x << 8 | u64::from(b));
                let new = match t {
                    elf::R_RISCV_ADD8
                    | elf::R_RISCV_ADD16
                    | elf::R_RISCV_ADD32
                    | elf::R_RISCV_ADD64 => old.wrapping_add(v as u64),
                    elf::R_RISCV_SUB6 => old & !0x3f | old.wrapping_sub(v as u64) & 0x3f,
                    elf::R_RISCV_SET6 => old & !0x3f | (v as u64) & 0x3f,
                    elf::R_RISCV_SET8 | elf::R_RISCV_SET16 | elf::R_RISCV_SET32 => v as u64,
                    _ => old.wrapping_sub(v as u64),
                };
                img.put(p, &new.to_le_bytes()[..n])?;
            }
            elf::R_RISCV_TLS_GOT_HI20
            | elf::R_RISCV_TLS_GD_HI20
            | elf::R_RISCV_TPREL_HI20
            | elf::R_RISCV_TPREL_LO12_I
            | elf::R_RISCV_TPREL_LO12_S
            | elf::R_RISCV_TPREL_ADD => fail!(
                "{}: thread-local storage is not supported in modules",
                what()
            ),
            _ => fail!("{}: relocation type not supported", what()),
        }
        Ok(())
    }
}

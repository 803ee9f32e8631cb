//! AArch64 (`arm64`) relocation modes.
//!
//! The link tool resolves every PC-relative instruction form (`adrp`, `add`
//! and load/store low-12 offsets, `b`/`bl`) against the module's own
//! symbols at link time: they stay right wherever the module loads,
//! provided the load base is 4 KiB aligned (the tool asks for that
//! alignment, since `adrp` works in pages). Calls to imports go through
//! stubs that load the target from a GOT slot, so most of what is left for
//! the loader is 64-bit words: GOT slots and pointers in data. Code built
//! without `-fPIC` (and `aarch64-unknown-none` Rust code) reaches an
//! import's data with `adrp` and a low-12 offset: the two instruction modes.

use super::{field, Mode, Overflow, PcReach};

/// Add the load base to a 64-bit word (pointers in data, GOT slots for
/// the module's own symbols).
pub const BASE64: u8 = 0;
/// Add an import's address to a 64-bit word holding the addend (GOT slots
/// and pointers to imports).
pub const IMPORT64: u8 = 1;
/// An `adrp` whose immediate holds an addend in bytes (within ±1 MiB):
/// it becomes the page of `import + addend` relative to its own page,
/// which must lie within ±4 GiB.
pub const IMPORT_ADRP: u8 = 2;
/// An `add` (immediate) or a load/store with an unsigned offset whose
/// 12-bit immediate holds an addend in bytes: it becomes the low 12 bits
/// of `import + addend`, scaled by the access size, which they must be a
/// multiple of.
pub const IMPORT_LO12: u8 = 3;

/// The modes.
pub const MODES: &[Mode] = &[
    Mode {
        number: BASE64,
        name: "base64",
        width: 8,
        import: false,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: IMPORT64,
        name: "import64",
        width: 8,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: IMPORT_ADRP,
        name: "import-adrp",
        width: 4,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: Some(PcReach {
            how: "adrp",
            bytes: 4 << 30,
        }),
    },
    Mode {
        number: IMPORT_LO12,
        name: "import-lo12",
        width: 4,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
];

/// The immediate of an `adrp`/`adr` (21 bits, sign-extended).
pub fn adr_imm(insn: u32) -> i64 {
    let v = (insn >> 5 & 0x7ffff) << 2 | insn >> 29 & 3;
    i64::from((v << 11) as i32 >> 11)
}

/// An `adrp`/`adr` with immediate `imm` (its low 21 bits).
pub fn with_adr_imm(insn: u32, imm: i64) -> u32 {
    let v = imm as u32;
    insn & !(3 << 29 | 0x7ffff << 5) | (v & 3) << 29 | (v >> 2 & 0x7ffff) << 5
}

/// The access-size shift of an `add` (immediate, 0) or a load/store with
/// an unsigned 12-bit offset; `None` for other instructions.
pub fn lo12_shift(insn: u32) -> Option<u32> {
    if insn >> 23 & 0x3f == 0b10_0010 {
        Some(0)
    } else if insn >> 27 & 7 == 0b111 && insn >> 24 & 3 == 0b01 {
        // size in bits 31:30; a SIMD&FP access with opc<1> set is 128-bit.
        let vector = insn >> 26 & 1 == 1;
        Some(if vector && insn >> 23 & 1 == 1 {
            4
        } else {
            insn >> 30
        })
    } else {
        None
    }
}

/// Patches one field.
pub fn apply(mode: u8, f: &mut [u8], place: u64, target: u64) -> Result<(), Overflow> {
    match mode {
        BASE64 | IMPORT64 if f.len() == 8 => {
            field::put(f, field::get(f).wrapping_add(target));
            Ok(())
        }
        IMPORT_ADRP if f.len() == 4 => {
            let insn = field::get(f) as u32;
            if insn & 0x9f00_0000 != 0x9000_0000 {
                return Err(Overflow);
            }
            let s = target.wrapping_add(adr_imm(insn) as u64);
            let pages = ((s >> 12) as i64).wrapping_sub((place >> 12) as i64);
            if !(-(1 << 20)..1 << 20).contains(&pages) {
                return Err(Overflow);
            }
            field::put(f, with_adr_imm(insn, pages).into());
            Ok(())
        }
        IMPORT_LO12 if f.len() == 4 => {
            let insn = field::get(f) as u32;
            let shift = lo12_shift(insn).ok_or(Overflow)?;
            let lo = target.wrapping_add(u64::from(insn >> 10 & 0xfff)) & 0xfff;
            if lo & ((1 << shift) - 1) != 0 {
                return Err(Overflow);
            }
            let imm = (lo >> shift) as u32;
            field::put(f, (insn & !(0xfff << 10) | imm << 10).into());
            Ok(())
        }
        _ => Err(Overflow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_get_the_target_added() {
        let mut f = 0x10u64.to_le_bytes();
        assert_eq!(apply(BASE64, &mut f, 0, 0x4000_0000_0000), Ok(()));
        assert_eq!(u64::from_le_bytes(f), 0x4000_0000_0010);
        let mut f = (-8i64).to_le_bytes();
        assert_eq!(apply(IMPORT64, &mut f, 0, 0x1000), Ok(()));
        assert_eq!(u64::from_le_bytes(f), 0xff8);
        assert_eq!(apply(BASE64, &mut [0u8; 4], 0, 1), Err(Overflow));
        assert_eq!(apply(7, &mut [0u8; 8], 0, 1), Err(Overflow));
    }

    #[test]
    fn adrp_and_low_twelve_bits_of_an_import() {
        // adrp x0, <addend 0x10>; at 0x7000_0000 reaching 0x7123_4ff8.
        let mut f = with_adr_imm(0x9000_0000, 0x10).to_le_bytes();
        assert_eq!(apply(IMPORT_ADRP, &mut f, 0x7000_0000, 0x7123_4ff8), Ok(()));
        assert_eq!(adr_imm(u32::from_le_bytes(f)), 0x1235);
        // ldr x1, [x0, #<addend 8>]: 64-bit, scaled by 8.
        let ldr: u32 = 0xf940_0001 | 8 << 10;
        let mut f = ldr.to_le_bytes();
        assert_eq!(apply(IMPORT_LO12, &mut f, 0, 0x7123_4ff0), Ok(()));
        assert_eq!(u32::from_le_bytes(f) >> 10 & 0xfff, 0xff8 >> 3);
        // add x0, x0, #<addend 0>.
        let mut f = 0x9100_0000u32.to_le_bytes();
        assert_eq!(apply(IMPORT_LO12, &mut f, 0, 0x7123_4567), Ok(()));
        assert_eq!(u32::from_le_bytes(f) >> 10 & 0xfff, 0x567);
        // A misaligned target for the access size, another instruction,
        // and a page beyond 4 GiB are refused.
        assert_eq!(
            apply(IMPORT_LO12, &mut ldr.to_le_bytes(), 0, 4),
            Err(Overflow)
        );
        assert_eq!(apply(IMPORT_LO12, &mut [0u8; 4], 0, 0), Err(Overflow));
        let mut f = 0x9000_0000u32.to_le_bytes();
        assert_eq!(apply(IMPORT_ADRP, &mut f, 0, 1 << 33), Err(Overflow));
        assert_eq!(apply(IMPORT_ADRP, &mut [0u8; 4], 0, 0), Err(Overflow));
    }
}

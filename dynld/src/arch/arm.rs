//! 32-bit ARM (`arm`) relocation modes, for Thumb-2 code (ARMv7-M).
//!
//! The link tool resolves every PC-relative form (`bl`, `b.w`, literal
//! loads, label differences) at link time. Left for the loader: address
//! words (mode 0 adds the base, mode 1 an import), and, for absolute
//! addresses built with a `movw`/`movt` pair, mode 2: add the base to the
//! `movt`'s 16-bit immediate. A module that uses it asks for a 64 KiB
//! aligned base, so the `movw` half, resolved at link time, stays right and
//! no carry crosses from one half to the other.

use super::{field, Mode, Overflow};

/// Add the load base to a 32-bit word.
pub const BASE32: u8 = 0;
/// Add an import's address to a 32-bit word holding the addend.
pub const IMPORT32: u8 = 1;
/// Add the upper half of the load base (64 KiB aligned) to the immediate
/// of a Thumb-2 `movt` (encoding T1).
pub const BASE_MOVT: u8 = 2;

/// The modes.
pub const MODES: &[Mode] = &[
    Mode {
        number: BASE32,
        name: "base32",
        width: 4,
        import: false,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: IMPORT32,
        name: "import32",
        width: 4,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: BASE_MOVT,
        name: "base-movt",
        width: 4,
        import: false,
        base_align: 1 << 16,
        low2g: false,
        pc_reach: None,
    },
];

/// The 16-bit immediate of a Thumb-2 `movw`/`movt` (two halfwords, first
/// at the lower address).
pub fn movw_imm(hw1: u16, hw2: u16) -> u16 {
    (hw1 & 0xf) << 12 | (hw1 >> 10 & 1) << 11 | (hw2 >> 12 & 7) << 8 | hw2 & 0xff
}

/// `movw`/`movt` halfwords with immediate `imm`.
pub fn with_movw_imm(hw1: u16, hw2: u16, imm: u16) -> (u16, u16) {
    (
        hw1 & 0xfbf0 | (imm >> 12) | (imm >> 11 & 1) << 10,
        hw2 & 0x8f00 | (imm >> 8 & 7) << 12 | imm & 0xff,
    )
}

/// Patches one field.
pub fn apply(mode: u8, f: &mut [u8], _place: u64, target: u64) -> Result<(), Overflow> {
    if f.len() != 4 || u32::try_from(target).is_err() {
        return Err(Overflow);
    }
    match mode {
        BASE32 | IMPORT32 => {
            field::put(f, field::get(f).wrapping_add(target));
            Ok(())
        }
        BASE_MOVT => {
            if target & 0xffff != 0 {
                return Err(Overflow);
            }
            let (hw1, hw2) = (field::get(&f[..2]) as u16, field::get(&f[2..]) as u16);
            // A T1 `movt`: 11110 i 101100 imm4 | 0 imm3 Rd imm8.
            if hw1 & 0xfbf0 != 0xf2c0 || hw2 & 0x8000 != 0 {
                return Err(Overflow);
            }
            let imm = movw_imm(hw1, hw2).wrapping_add((target >> 16) as u16);
            let (a, b) = with_movw_imm(hw1, hw2, imm);
            field::put(&mut f[..2], a.into());
            field::put(&mut f[2..], b.into());
            Ok(())
        }
        _ => Err(Overflow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_movt_immediates() {
        let mut f = 0x11u32.to_le_bytes();
        assert_eq!(apply(BASE32, &mut f, 0, 0x2001_0000), Ok(()));
        assert_eq!(u32::from_le_bytes(f), 0x2001_0011);
        // movt r0, #0x0001 at base 0x2001_0000: movt r0, #0x2002.
        let (a, b) = with_movw_imm(0xf2c0, 0x0000, 1);
        let mut f = [0u8; 4];
        f[..2].copy_from_slice(&a.to_le_bytes());
        f[2..].copy_from_slice(&b.to_le_bytes());
        assert_eq!(apply(BASE_MOVT, &mut f, 0, 0x2001_0000), Ok(()));
        let hw = |i: usize| u16::from_le_bytes([f[i], f[i + 1]]);
        assert_eq!(movw_imm(hw(0), hw(2)), 0x2002);
        assert_eq!(hw(0) & 0xfbf0, 0xf2c0);
        // Unaligned bases, wrong instructions and wide targets are refused.
        assert_eq!(apply(BASE_MOVT, &mut f, 0, 0x2001_8000), Err(Overflow));
        assert_eq!(apply(BASE_MOVT, &mut [0u8; 4], 0, 0x1_0000), Err(Overflow));
        assert_eq!(apply(BASE32, &mut [0u8; 4], 0, 1 << 32), Err(Overflow));
        assert_eq!(apply(7, &mut [0u8; 4], 0, 0), Err(Overflow));
        for imm in [0u16, 1, 0x7ff, 0x800, 0xabcd, 0xffff] {
            let (a, b) = with_movw_imm(0xf240, 0x0c00, imm);
            assert_eq!(movw_imm(a, b), imm);
        }
    }
}

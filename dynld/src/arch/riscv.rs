//! RISC-V relocation modes, for RV64 (`riscv64`) and RV32 (`riscv`).
//!
//! The link tool resolves every PC-relative form (`auipc` pairs, branches,
//! jumps, calls) at link time. Left for the loader: address words (mode 0
//! adds the base, mode 1 an import), and, for code using absolute
//! `lui`/`addi` addressing (`-mcmodel=medlow`, the static model of
//! `riscv32imac-unknown-none-elf`), mode 2: add the base to the upper 20
//! bits of a `lui`. The module asks for a 4 KiB aligned base, so the low 12
//! bits, resolved at link time, stay right.

use super::{field, Mode, Overflow};

/// Add the load base to an address word (64-bit on RV64, 32-bit on RV32).
pub const BASE: u8 = 0;
/// Add an import's address to an address word holding the addend.
pub const IMPORT: u8 = 1;
/// Add the load base (4 KiB aligned) to the 20-bit immediate of a `lui`
/// (a U-type instruction). On RV64 `lui` sign-extends, so the result must
/// lie within ±2 GiB: such modules carry the low-2-GiB flag.
pub const BASE_HI20: u8 = 2;

/// RV64 only: add the load base to a 32-bit word (absolute jump tables of
/// `-mcmodel=medlow` code). The result must lie below 2 GiB, so `lw`'s sign
/// extension keeps it: such modules carry the low-2-GiB flag.
pub const BASE32: u8 = 3;

/// The RV64 modes.
pub const MODES64: &[Mode] = &[
    Mode {
        number: BASE,
        name: "base64",
        width: 8,
        import: false,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: IMPORT,
        name: "import64",
        width: 8,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: BASE_HI20,
        name: "base-hi20",
        width: 4,
        import: false,
        base_align: 4096,
        low2g: true,
        pc_reach: None,
    },
    Mode {
        number: BASE32,
        name: "base32",
        width: 4,
        import: false,
        base_align: 1,
        low2g: true,
        pc_reach: None,
    },
];

/// The RV32 modes.
pub const MODES32: &[Mode] = &[
    Mode {
        number: BASE,
        name: "base32",
        width: 4,
        import: false,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: IMPORT,
        name: "import32",
        width: 4,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: None,
    },
    Mode {
        number: BASE_HI20,
        name: "base-hi20",
        width: 4,
        import: false,
        base_align: 4096,
        low2g: false,
        pc_reach: None,
    },
];

/// Patches one field; `xlen` is 32 or 64.
pub fn apply(xlen: u32, mode: u8, f: &mut [u8], _place: u64, target: u64) -> Result<(), Overflow> {
    let word = (xlen / 8) as usize;
    match mode {
        BASE | IMPORT if f.len() == word => {
            let v = field::get(f).wrapping_add(target);
            if xlen == 32 && u32::try_from(target).is_err() {
                return Err(Overflow);
            }
            field::put(f, v);
            Ok(())
        }
        BASE32 if xlen == 64 && f.len() == 4 => {
            let v = field::get(f).checked_add(target).ok_or(Overflow)?;
            if v >= 1 << 31 {
                return Err(Overflow);
            }
            field::put(f, v);
            Ok(())
        }
        BASE_HI20 if f.len() == 4 => {
            if target & 0xfff != 0 {
                return Err(Overflow);
            }
            let insn = field::get(f) as u32;
            // The value `lui` loads, sign-extended as RV64 does.
            let old = i64::from((insn & 0xffff_f000) as i32);
            let new = old.wrapping_add(target as i64);
            let ok = if xlen == 32 {
                u32::try_from(target).is_ok()
            } else {
                i32::try_from(new).is_ok()
            };
            if !ok {
                return Err(Overflow);
            }
            field::put(f, u64::from(new as u32 & 0xffff_f000 | insn & 0xfff));
            Ok(())
        }
        _ => Err(Overflow),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_lui_immediates() {
        let mut f = 8u64.to_le_bytes();
        assert_eq!(apply(64, BASE, &mut f, 0, 0x7000_0000_0000), Ok(()));
        assert_eq!(u64::from_le_bytes(f), 0x7000_0000_0008);
        let mut f = 8u32.to_le_bytes();
        assert_eq!(apply(32, IMPORT, &mut f, 0, 0x2000_0000), Ok(()));
        assert_eq!(u32::from_le_bytes(f), 0x2000_0008);
        // lui a0, 0x1 (0x00001537) at base 0x2000_0000: lui a0, 0x20001.
        let mut f = 0x0000_1537u32.to_le_bytes();
        assert_eq!(apply(32, BASE_HI20, &mut f, 0, 0x2000_0000), Ok(()));
        assert_eq!(u32::from_le_bytes(f), 0x2000_1537);
        // RV64: the sign-extended result must stay within 32 bits.
        let mut f = 0x0000_1537u32.to_le_bytes();
        assert_eq!(apply(64, BASE_HI20, &mut f, 0, 0x7fff_f000), Err(Overflow));
        assert_eq!(apply(64, BASE_HI20, &mut f, 0, 0x1800), Err(Overflow));
        assert_eq!(apply(64, BASE, &mut [0u8; 4], 0, 1), Err(Overflow));
        assert_eq!(apply(32, 9, &mut [0u8; 4], 0, 1), Err(Overflow));
        let mut f = 0x10u32.to_le_bytes();
        assert_eq!(apply(64, BASE32, &mut f, 0, 0x4000_0000), Ok(()));
        assert_eq!(u32::from_le_bytes(f), 0x4000_0010);
        assert_eq!(apply(64, BASE32, &mut f, 0, 0x4000_0000), Err(Overflow));
        assert_eq!(apply(32, BASE32, &mut f, 0, 0), Err(Overflow));
    }
}

//! x86-64 (`amd64`) relocation modes.

use super::{Mode, Overflow, PcReach};

/// Add the load base to a 64-bit word (pointers in data, GOT slots for
/// the module's own symbols).
pub const BASE64: u8 = 0;
/// Add an import's address to a 64-bit word holding the addend (GOT slots
/// and pointers to imports).
pub const IMPORT64: u8 = 1;
/// Add the load base to a 32-bit word, zero-extended (`R_X86_64_32`); the
/// result must fit in 32 bits.
pub const BASE32: u8 = 2;
/// Add the load base to a 32-bit word, sign-extended (`R_X86_64_32S`); the
/// result must fit in a signed 32-bit value.
pub const BASE32S: u8 = 3;
/// 32-bit PC-relative reference to an import: the field holds the addend
/// and receives `import + addend - place`, which must fit in 32 signed bits.
pub const IMPORT_PC32: u8 = 4;

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
        number: BASE32,
        name: "base32",
        width: 4,
        import: false,
        base_align: 1,
        low2g: true,
        pc_reach: None,
    },
    Mode {
        number: BASE32S,
        name: "base32s",
        width: 4,
        import: false,
        base_align: 1,
        low2g: true,
        pc_reach: None,
    },
    Mode {
        number: IMPORT_PC32,
        name: "import-pc32",
        width: 4,
        import: true,
        base_align: 1,
        low2g: false,
        pc_reach: Some(PcReach {
            how: "a 32-bit PC-relative reference",
            bytes: 2 << 30,
        }),
    },
];

/// Patches one field.
#[inline]
pub fn apply(mode: u8, f: &mut [u8], place: u64, target: u64) -> Result<(), Overflow> {
    match mode {
        BASE64 | IMPORT64 => {
            let f: &mut [u8; 8] = f.try_into().map_err(|_| Overflow)?;
            *f = u64::from_le_bytes(*f).wrapping_add(target).to_le_bytes();
        }
        BASE32 | BASE32S | IMPORT_PC32 => {
            let f: &mut [u8; 4] = f.try_into().map_err(|_| Overflow)?;
            let old = u32::from_le_bytes(*f);
            let new = if mode == BASE32 {
                let v = u64::from(old).checked_add(target).ok_or(Overflow)?;
                u32::try_from(v).map_err(|_| Overflow)?
            } else {
                let addend = i64::from(old as i32);
                let base = if mode == IMPORT_PC32 {
                    (target as i64).wrapping_sub(place as i64)
                } else {
                    target as i64
                };
                let v = base.checked_add(addend).ok_or(Overflow)?;
                i32::try_from(v).map_err(|_| Overflow)? as u32
            };
            *f = new.to_le_bytes();
        }
        _ => return Err(Overflow),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_the_wrong_width_are_refused() {
        assert_eq!(apply(BASE64, &mut [0u8; 9], 0, 1), Err(Overflow));
        assert_eq!(apply(BASE32, &mut [0u8; 8], 0, 1), Err(Overflow));
        assert_eq!(apply(99, &mut [0u8; 8], 0, 1), Err(Overflow));
        let mut f = [1, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(apply(BASE64, &mut f, 0, 0x1000), Ok(()));
        assert_eq!(u64::from_le_bytes(f), 0x1001);
    }
}

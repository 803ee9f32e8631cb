//! AArch64 (`arm64`) relocation modes.
//!
//! The link tool resolves every PC-relative instruction form (`adrp`, `add`
//! and load/store low-12 offsets, `b`/`bl`) at link time: they stay right
//! wherever the module loads, provided the load base is 4 KiB aligned (the
//! tool asks for that alignment, since `adrp` works in pages). Calls to
//! imports go through stubs that load the target from a GOT slot, so what is
//! left for the loader is 64-bit words: GOT slots and pointers in data.

use super::{field, Mode, Overflow};

/// Add the load base to a 64-bit word (pointers in data, GOT slots for
/// the module's own symbols).
pub const BASE64: u8 = 0;
/// Add an import's address to a 64-bit word holding the addend (GOT slots
/// and pointers to imports).
pub const IMPORT64: u8 = 1;

/// The modes.
pub const MODES: &[Mode] = &[
    Mode {
        number: BASE64,
        name: "base64",
        width: 8,
        import: false,
    },
    Mode {
        number: IMPORT64,
        name: "import64",
        width: 8,
        import: true,
    },
];

/// Patches one field.
pub fn apply(mode: u8, f: &mut [u8], _place: u64, target: u64) -> Result<(), Overflow> {
    match mode {
        BASE64 | IMPORT64 if f.len() == 8 => {
            field::put(f, field::get(f).wrapping_add(target));
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
}

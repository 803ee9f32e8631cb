//! The module file format: one set of definitions for the reader and the writer.
//!
//! A module is laid out front to back as
//!
//! ```text
//! Exec header        32 bytes, eight big-endian u32 words (Plan 9 a.out)
//! [fat entry]         8 bytes, big-endian u64, only when the magic has HDR_MAGIC
//! Dynhdr             `hdrsize` bytes (64 in version 1), big-endian u32 words
//! text               Exec.text bytes
//! data               Exec.data bytes
//! string table       Dynhdr.strsize bytes at Dynhdr.stroff
//! export table       Dynhdr.nexport * 16 bytes at Dynhdr.expoff
//! import table       Dynhdr.nimport * 12 bytes at Dynhdr.impoff
//! [import hashes]    Dynhdr.nimport * 8 bytes right after the import table,
//!                    only with FLAG_IMPORT_HASHES
//! relocations        Dynhdr.relsize bytes at Dynhdr.reloff
//! [hash index]       Dynhdr.idxsize bytes at Dynhdr.idxoff
//! ```
//!
//! Every offset is relative to the first byte of the Exec header, and the
//! tables must appear in that order without overlapping, so a loader reads the
//! module with forward seeks only. The full description is in `dynld-module(5)`.

use scroll::{Pread, Pwrite, BE};

/// Set in the magic of every dynamically loadable module.
pub const DYN_MAGIC: u32 = 0x8000_0000;
/// Set in the magic of architectures whose header carries a 64-bit entry.
pub const HDR_MAGIC: u32 = 0x0000_8000;
/// The module format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// `Exec.entry` (and the fat entry) value meaning "no init function".
pub const NO_ENTRY: u32 = u32::MAX;
/// Signature stored when a computed signature is zero, so 0 keeps meaning
/// "unchecked" (the value Plan 9's linker used).
pub const SIGN_INTERN: u32 = 0x39e8_f4c5;
/// `Dynhdr.flags`: the image must lie in the low 2 GiB of the address
/// space (the module uses absolute 32-bit addresses).
pub const FLAG_LOW2G: u32 = 1;
/// `Dynhdr.flags`: the import table is followed by each import's name
/// [`hash`](crate::index::hash), a big-endian u64 per import in table
/// order, which a loader binding through a host's hash index may use
/// instead of hashing the names. A loader trusts none of them: a stored
/// hash that is wrong only costs the name a second, computed, probe.
pub const FLAG_IMPORT_HASHES: u32 = 2;
/// Every flag version 1 defines.
pub const FLAGS_KNOWN: u32 = FLAG_LOW2G | FLAG_IMPORT_HASHES;
/// Largest image alignment a module may ask for.
pub const MAX_ALIGN: u32 = 1 << 16;
/// Largest file alignment of the text a writer pads the header for (the
/// largest page size in use); the default [`crate::Limits::max_header`]
/// admits the padding.
pub const MAX_TEXT_ALIGN: u32 = 1 << 16;

/// Whether a writer can place the text at a multiple of `align` bytes in
/// the file: a power of two up to [`MAX_TEXT_ALIGN`].
pub const fn text_align_ok(align: u32) -> bool {
    align.is_power_of_two() && align <= MAX_TEXT_ALIGN
}

/// Plan 9's `_MAGIC(f, b)`.
pub const fn magic(f: u32, b: u32) -> u32 {
    f | (4u32.wrapping_mul(b).wrapping_mul(b).wrapping_add(7))
}

/// The architectures the format names. The magic values are Plan 9's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    /// Intel 386 (`_MAGIC(0, 11)`).
    I386,
    /// 32-bit ARM; dynld uses it for Thumb-2 code (`_MAGIC(0, 20)`).
    Arm,
    /// x86-64 (`_MAGIC(HDR_MAGIC, 26)`).
    Amd64,
    /// AArch64 (`_MAGIC(HDR_MAGIC, 28)`).
    Arm64,
    /// RV32 (`_MAGIC(0, 29)`).
    Riscv32,
    /// RV64 (`_MAGIC(0, 30)`).
    Riscv64,
}

impl Arch {
    /// Every architecture, in magic order.
    pub const ALL: [Arch; 6] = [
        Arch::I386,
        Arch::Arm,
        Arch::Amd64,
        Arch::Arm64,
        Arch::Riscv32,
        Arch::Riscv64,
    ];

    /// The architecture this crate was compiled for, if the format names it.
    pub const HOST: Option<Arch> = if cfg!(target_arch = "x86_64") {
        Some(Arch::Amd64)
    } else if cfg!(target_arch = "x86") {
        Some(Arch::I386)
    } else if cfg!(target_arch = "aarch64") {
        Some(Arch::Arm64)
    } else if cfg!(target_arch = "arm") {
        Some(Arch::Arm)
    } else if cfg!(target_arch = "riscv64") {
        Some(Arch::Riscv64)
    } else if cfg!(target_arch = "riscv32") {
        Some(Arch::Riscv32)
    } else {
        None
    };

    /// The Plan 9 a.out magic (without `DYN_MAGIC`).
    pub const fn magic(self) -> u32 {
        match self {
            Arch::I386 => magic(0, 11),
            Arch::Arm => magic(0, 20),
            Arch::Amd64 => magic(HDR_MAGIC, 26),
            Arch::Arm64 => magic(HDR_MAGIC, 28),
            Arch::Riscv32 => magic(0, 29),
            Arch::Riscv64 => magic(0, 30),
        }
    }

    /// The architecture whose module magic (with or without `DYN_MAGIC`) is `m`.
    pub fn from_magic(m: u32) -> Option<Arch> {
        Arch::ALL.into_iter().find(|a| a.magic() == m & !DYN_MAGIC)
    }

    /// The name used in messages and by the tool (`amd64`, `arm64`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            Arch::I386 => "386",
            Arch::Arm => "arm",
            Arch::Amd64 => "amd64",
            Arch::Arm64 => "arm64",
            Arch::Riscv32 => "riscv",
            Arch::Riscv64 => "riscv64",
        }
    }

    /// Bytes in an address on this architecture.
    pub const fn word_size(self) -> usize {
        match self {
            Arch::I386 | Arch::Arm | Arch::Riscv32 => 4,
            Arch::Amd64 | Arch::Arm64 | Arch::Riscv64 => 8,
        }
    }

    /// Whether the header is followed by the 8-byte fat entry.
    pub const fn fat_header(self) -> bool {
        self.magic() & HDR_MAGIC != 0
    }

    /// Bytes from the start of the module to the first byte of text.
    pub const fn text_offset(self) -> u32 {
        (Exec::SIZE + if self.fat_header() { 8 } else { 0 } + Dynhdr::SIZE) as u32
    }
}

impl core::fmt::Display for Arch {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Declares a fixed-size big-endian record once, with its parser and writer.
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident: $t:ty,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $name { $($(#[$fm])* pub $f: $t,)* }

        impl $name {
            /// Encoded size in bytes.
            pub const SIZE: usize = 0 $(+ core::mem::size_of::<$t>())*;

            /// Decodes the record from the first `SIZE` bytes of `b`.
            pub fn parse(b: &[u8]) -> Option<Self> {
                let off = &mut 0;
                Some(Self { $($f: b.gread_with::<$t>(off, BE).ok()?,)* })
            }

            /// Encodes the record into the first `SIZE` bytes of `b`.
            pub fn write(&self, b: &mut [u8]) -> Option<()> {
                let off = &mut 0;
                $(b.gwrite_with::<$t>(self.$f, off, BE).ok()?;)*
                Some(())
            }
        }
    };
}

record! {
    /// The Plan 9 a.out header, first in every module.
    pub struct Exec {
        /// `DYN_MAGIC | Arch::magic()`.
        pub magic: u32,
        /// Bytes of text (code and read-only data).
        pub text: u32,
        /// Bytes of initialised data.
        pub data: u32,
        /// Bytes of zero-initialised data.
        pub bss: u32,
        /// Always 0: modules carry no Plan 9 symbol table.
        pub syms: u32,
        /// Image offset of the init function, or `NO_ENTRY`.
        pub entry: u32,
        /// Always 0.
        pub spsz: u32,
        /// Always 0.
        pub pcsz: u32,
    }
}

record! {
    /// The dynld extension header that follows the Exec header.
    pub struct Dynhdr {
        /// Format version (`VERSION`).
        pub version: u32,
        /// Size of this header in bytes; at least `Dynhdr::SIZE`.
        pub hdrsize: u32,
        /// `FLAG_LOW2G`, `FLAG_IMPORT_HASHES`; other bits must be 0.
        pub flags: u32,
        /// Alignment the image base needs (a power of two, at most `MAX_ALIGN`).
        pub align: u32,
        /// Image offset of the data segment (at least `Exec.text`).
        pub dataoff: u32,
        /// Number of exports.
        pub nexport: u32,
        /// Number of imports.
        pub nimport: u32,
        /// Number of relocation records.
        pub nreloc: u32,
        /// File offset of the string table.
        pub stroff: u32,
        /// Bytes in the string table.
        pub strsize: u32,
        /// File offset of the export table.
        pub expoff: u32,
        /// File offset of the import table.
        pub impoff: u32,
        /// File offset of the relocation stream.
        pub reloff: u32,
        /// Bytes in the relocation stream.
        pub relsize: u32,
        /// File offset of the hash index; 0 = none (version 1 defines none).
        pub idxoff: u32,
        /// Bytes in the hash index; 0 = none.
        pub idxsize: u32,
    }
}

record! {
    /// One export table entry.
    pub struct ExpEntry {
        /// Offset of the name in the string table.
        pub name: u32,
        /// Length of the name in bytes.
        pub namelen: u32,
        /// Type signature; 0 = unchecked.
        pub sig: u32,
        /// Image offset of the symbol.
        pub value: u32,
    }
}

record! {
    /// One import table entry.
    pub struct ImpEntry {
        /// Offset of the name in the string table.
        pub name: u32,
        /// Length of the name in bytes.
        pub namelen: u32,
        /// Type signature the module expects; 0 = unchecked.
        pub sig: u32,
    }
}

/// One relocation: patch the field at `offset` in the image with `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reloc {
    /// Image offset of the patched field.
    pub offset: u32,
    /// Architecture-specific mode (`0..=15`).
    pub mode: u8,
    /// Import table index, for the modes that use an import.
    pub import: Option<u32>,
}

/// Longest encoded relocation record: mode byte, 4-byte delta, 4-byte index.
pub const RELOC_MAX_BYTES: usize = 9;

const fn width_code(v: u32) -> (u8, usize) {
    if v <= 0xff {
        (0, 1)
    } else if v <= 0xffff {
        (1, 2)
    } else {
        (2, 4)
    }
}

/// Why a relocation record could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RelocDecodeError {
    /// The mode byte's delta width code is 3 (reserved).
    BadWidth,
    /// Fewer bytes remain than the record needs.
    Short,
    /// The offset went past 2^32.
    Overflow,
}

impl Reloc {
    /// Encodes the record, delta-encoded against the previous offset
    /// `prev`, into `out`; returns the bytes used.
    pub fn encode(&self, prev: u32, out: &mut [u8; RELOC_MAX_BYTES]) -> usize {
        let delta = self.offset.wrapping_sub(prev);
        let (dc, dw) = width_code(delta);
        let (ic, iw) = match self.import {
            None => (0, 0),
            Some(i) => {
                let (c, w) = width_code(i);
                (c + 1, w)
            }
        };
        out[0] = dc << 6 | ic << 4 | (self.mode & 0xf);
        out[1..1 + dw].copy_from_slice(&delta.to_be_bytes()[4 - dw..]);
        if let Some(i) = self.import {
            out[1 + dw..1 + dw + iw].copy_from_slice(&i.to_be_bytes()[4 - iw..]);
        }
        1 + dw + iw
    }

    /// Decodes one record from the front of `b`, given the previous offset.
    /// Returns the record and the bytes it took.
    #[inline]
    pub fn decode(b: &[u8], prev: u32) -> Result<(Reloc, usize), RelocDecodeError> {
        let &m = b.first().ok_or(RelocDecodeError::Short)?;
        if m >> 6 == 3 {
            return Err(RelocDecodeError::BadWidth);
        }
        // Width codes 0, 1, 2 (and 3 for the index) mean 1, 2, 4 (and 0,
        // 1, 2, 4) bytes.
        let dw = 1usize << (m >> 6);
        let iw = (1usize << ((m >> 4) & 3)) >> 1;
        let need = 1 + dw + iw;
        let rec = b.get(1..need).ok_or(RelocDecodeError::Short)?;
        let be = |s: &[u8]| s.iter().fold(0u32, |a, &x| a << 8 | u32::from(x));
        let offset = prev
            .checked_add(be(&rec[..dw]))
            .ok_or(RelocDecodeError::Overflow)?;
        let import = (iw != 0).then(|| be(&rec[dw..]));
        Ok((
            Reloc {
                offset,
                mode: m & 0xf,
                import,
            },
            need,
        ))
    }
}

/// Rounds `v` up to a multiple of the power of two `a`, or `None` on
/// overflow or if `a` is not a power of two.
pub const fn align_up(v: u64, a: u64) -> Option<u64> {
    if !a.is_power_of_two() {
        return None;
    }
    match v.checked_add(a - 1) {
        Some(x) => Some(x & !(a - 1)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magics_are_plan9s() {
        assert_eq!(Arch::I386.magic(), 0x1eb);
        assert_eq!(Arch::Arm.magic(), 0x647);
        assert_eq!(Arch::Amd64.magic(), 0x8a97);
        assert_eq!(Arch::Arm64.magic(), 0x8c47);
        assert_eq!(Arch::Riscv32.magic(), 0xd2b);
        assert_eq!(Arch::Riscv64.magic(), 0xe17);
        for a in Arch::ALL {
            assert_eq!(Arch::from_magic(DYN_MAGIC | a.magic()), Some(a));
        }
        assert_eq!(Arch::Amd64.text_offset(), 32 + 8 + 64);
        assert_eq!(Arch::Arm.text_offset(), 32 + 64);
    }

    #[test]
    fn records_round_trip() {
        let h = Dynhdr {
            version: 1,
            hdrsize: 64,
            nexport: 0x0102_0304,
            idxsize: 9,
            ..Dynhdr::default()
        };
        let mut b = [0u8; Dynhdr::SIZE];
        h.write(&mut b).unwrap();
        assert_eq!(&b[20..24], &[1, 2, 3, 4], "big-endian");
        assert_eq!(Dynhdr::parse(&b), Some(h));
        assert_eq!(Dynhdr::parse(&b[..63]), None);
        assert!(h.write(&mut [0u8; 10]).is_none());
    }

    #[test]
    fn relocs_round_trip() {
        let cases = [
            Reloc {
                offset: 0,
                mode: 0,
                import: None,
            },
            Reloc {
                offset: 0xff,
                mode: 1,
                import: Some(0),
            },
            Reloc {
                offset: 0x1_00ff,
                mode: 2,
                import: Some(0x1234),
            },
            Reloc {
                offset: 0x100_0000,
                mode: 15,
                import: Some(0x12_3456),
            },
            Reloc {
                offset: u32::MAX,
                mode: 3,
                import: None,
            },
        ];
        let mut prev = 0;
        for r in cases {
            let mut b = [0u8; RELOC_MAX_BYTES];
            let n = r.encode(prev, &mut b);
            assert_eq!(Reloc::decode(&b[..n], prev), Ok((r, n)));
            assert_eq!(
                Reloc::decode(&b[..n - 1], prev),
                Err(RelocDecodeError::Short)
            );
            prev = r.offset;
        }
        assert_eq!(
            Reloc::decode(&[0xc0, 0], 0),
            Err(RelocDecodeError::BadWidth)
        );
        assert_eq!(
            Reloc::decode(&[0x80, 0, 0, 0, 2], u32::MAX - 1),
            Err(RelocDecodeError::Overflow)
        );
        assert_eq!(Reloc::decode(&[], 0), Err(RelocDecodeError::Short));
    }
}

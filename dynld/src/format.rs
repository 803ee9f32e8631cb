//! The module file format: one set of definitions for the reader and the writer.
//!
//! A module is laid out front to back as
//!
//! ```text
//! Exec header        32 bytes, eight big-endian u32 words (Plan 9 a.out)
//! [fat entry]         8 bytes, all ones, only when the magic has HDR_MAGIC
//! Dynhdr             24 bytes of big-endian u32 words (version 2)
//! table directory    Dynhdr.ntable entries of 16 bytes
//! [padding]          zeros up to Dynhdr.hdrsize (text alignment in the file)
//! text               Exec.text bytes
//! data               Exec.data bytes
//! tables             each where its directory entry says, in directory order
//! ```
//!
//! The directory names every table by [`kind`](TableEntry::kind): strings,
//! exports, imports, relocations, constructors and destructors, and the
//! optional ones (a hash index, import name hashes, type descriptions, the
//! symbols table). A loader skips an optional table it does not know and
//! refuses a required one, so new tables need no new header fields. Every
//! offset is relative to the first byte of the Exec header, and the tables
//! follow the data in directory order without overlapping, so a loader
//! reads the module with forward seeks only. The full description is in
//! `dynld-module(5)`.

/// Set in the magic of every dynamically loadable module.
pub const DYN_MAGIC: u32 = 0x8000_0000;
/// Set in the magic of architectures whose header carries a 64-bit entry.
pub const HDR_MAGIC: u32 = 0x0000_8000;
/// The module format version this crate reads and writes.
pub const VERSION: u32 = 2;
/// `Exec.entry` (and every byte of the fat entry): modules keep their
/// constructors in the [`kind::INIT`] table, not in the entry word.
pub const NO_ENTRY: u32 = u32::MAX;
/// Signature stored when a computed signature is zero, so 0 keeps meaning
/// "unchecked" (the value Plan 9's linker used).
pub const SIGN_INTERN: u32 = 0x39e8_f4c5;
/// `Dynhdr.flags`: the image must lie in the low 2 GiB of the address
/// space (the module uses absolute 32-bit addresses).
pub const FLAG_LOW2G: u32 = 1;
/// Every flag version 2 defines.
pub const FLAGS_KNOWN: u32 = FLAG_LOW2G;
/// Largest image alignment a module may ask for.
pub const MAX_ALIGN: u32 = 1 << 16;
/// Largest file alignment of the text a writer pads the header for (the
/// largest page size in use); the default [`crate::Limits::max_header`]
/// admits the padding.
pub const MAX_TEXT_ALIGN: u32 = 1 << 16;
/// Most entries in a module's table directory.
pub const MAX_TABLES: u32 = 32;

/// `TableEntry.flags`: a loader that does not know the table's kind must
/// refuse the module (without it, the module would behave differently).
pub const TABLE_REQUIRED: u16 = 1;

/// The table kinds version 2 defines (`TableEntry.kind`).
pub mod kind {
    /// Symbol names and type descriptions, referenced by offset. Required.
    pub const STRINGS: u16 = 1;
    /// Exports, [`ExpEntry`](super::ExpEntry)s sorted by name. Required.
    pub const EXPORTS: u16 = 2;
    /// Imports, [`ImpEntry`](super::ImpEntry)s sorted by name. Required.
    pub const IMPORTS: u16 = 3;
    /// Each import's name [`hash`](crate::index::hash), a big-endian u64
    /// per import in table order. Optional: a loader binding through a
    /// host's hash index may use them instead of hashing the names, and
    /// trusts none of them (a wrong one costs a second, computed, probe).
    pub const IMPORT_HASHES: u16 = 4;
    /// Relocations that add the load base, applied once at load. Required.
    pub const RELOCS: u16 = 5;
    /// Relocations that add an import's address. Required. A loader keeps
    /// them with the module, so that an import can be bound again later.
    pub const IMPORT_RELOCS: u16 = 6;
    /// A hash index over the exports (see [`crate::index`]). Optional.
    pub const INDEX: u16 = 7;
    /// Constructors: image offsets (big-endian u32) of functions returning
    /// nothing, in the order they run (`.preinit_array`, then
    /// `.init_array` by priority); each is called with three zero
    /// arguments, where a C runtime passes `argc`, `argv` and `envp`.
    /// Required.
    pub const INIT: u16 = 8;
    /// Destructors: image offsets in `.fini_array` order; they run last
    /// to first when the module is unloaded. Required.
    pub const FINI: u16 = 9;
    /// Type descriptions: one [`TypeEntry`](super::TypeEntry) per export,
    /// then one per import, in table order. Optional: used in messages.
    pub const TYPES: u16 = 10;
    /// Symbols: one [`SymEntry`](super::SymEntry) per function and data
    /// object the module keeps that has a name and a size, local (C
    /// `static`) ones too, sorted by value, so that an address resolves
    /// to the symbol it falls in by a binary search. Optional: used by
    /// [`Module::symbol_at`](crate::Module::symbol_at) (fault handlers,
    /// debuggers).
    pub const SYMBOLS: u16 = 11;
    /// Module metadata: [`MetaEntry`](super::MetaEntry) records, the
    /// first a [`META_MODULE`](super::META_MODULE) one (the module's name,
    /// version and class), then its ABI requirements, dependencies, and
    /// setup and teardown functions. Required: a loader that skipped it
    /// would run a module without the checks and the setup it declares.
    pub const METADATA: u16 = 12;
    /// Unwind information for debuggers: an 8-byte head (a word: the
    /// image offset, at or past the image's end, that the rest was linked
    /// to lie at; a word 0), then the module's `.eh_frame` as the compiler
    /// wrote it, its PC-relative references resolved for that place.
    /// Count 0. Optional: the loader never interprets it; with the `gdb`
    /// feature it keeps it for the file a debugger is given
    /// ([`crate::gdb`]), which places it at that offset from the base.
    pub const UNWIND: u16 = 13;
    /// Where the module's debug file is (`aout link --debug FILE`): a
    /// word, the file's CRC-32 (as `.gnu_debuglink` has it), then its
    /// path, UTF-8 without NUL. Count 0. Optional: with the `gdb` feature
    /// the file a debugger is given names it, and gdb reads the module's
    /// file and line information from it.
    pub const DEBUGLINK: u16 = 14;

    /// Whether a loader must refuse a module whose table of this known
    /// kind lacks [`TABLE_REQUIRED`](super::TABLE_REQUIRED), or has it:
    /// the flag of a known kind is fixed by the format.
    pub const fn required(kind: u16) -> bool {
        matches!(
            kind,
            STRINGS | EXPORTS | IMPORTS | RELOCS | IMPORT_RELOCS | INIT | FINI | METADATA
        )
    }

    /// Whether version 2 defines `kind`.
    pub const fn known(kind: u16) -> bool {
        matches!(kind, STRINGS..=DEBUGLINK)
    }

    /// The kind's name, for messages and the tool.
    pub const fn name(kind: u16) -> &'static str {
        match kind {
            STRINGS => "strings",
            EXPORTS => "exports",
            IMPORTS => "imports",
            IMPORT_HASHES => "import hashes",
            RELOCS => "relocations",
            IMPORT_RELOCS => "import relocations",
            INDEX => "hash index",
            INIT => "constructors",
            FINI => "destructors",
            TYPES => "type descriptions",
            SYMBOLS => "symbols",
            METADATA => "metadata",
            UNWIND => "unwind",
            DEBUGLINK => "debug link",
            _ => "unknown",
        }
    }
}

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
    /// The ELF `e_machine` value for the architecture (what the ELF files
    /// written for debuggers carry).
    pub const fn elf_machine(self) -> u16 {
        match self {
            Arch::I386 => 3,
            Arch::Arm => 40,
            Arch::Amd64 => 62,
            Arch::Arm64 => 183,
            Arch::Riscv32 | Arch::Riscv64 => 243,
        }
    }

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

    /// Bytes of the Exec header and, where there is one, the fat entry:
    /// where the extension header starts.
    pub const fn exec_size(self) -> usize {
        Exec::SIZE + if self.fat_header() { 8 } else { 0 }
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
            #[inline]
            #[allow(unused_assignments)]
            pub fn parse(b: &[u8]) -> Option<Self> {
                let b: &[u8; Self::SIZE] = b.get(..Self::SIZE)?.try_into().ok()?;
                let mut at = 0;
                Some(Self {
                    $($f: {
                        const N: usize = core::mem::size_of::<$t>();
                        let mut w = [0u8; N];
                        w.copy_from_slice(&b[at..at + N]);
                        at += N;
                        <$t>::from_be_bytes(w)
                    },)*
                })
            }

            /// Encodes the record into the first `SIZE` bytes of `b`.
            pub fn write(&self, b: &mut [u8]) -> Option<()> {
                let b = b.get_mut(..Self::SIZE)?;
                let mut at = 0;
                $(
                    let w = self.$f.to_be_bytes();
                    b[at..at + w.len()].copy_from_slice(&w);
                    at += w.len();
                )*
                let _ = at;
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
        /// [`NO_ENTRY`]: constructors are the [`kind::INIT`] table.
        pub entry: u32,
        /// Always 0.
        pub spsz: u32,
        /// Always 0.
        pub pcsz: u32,
    }
}

record! {
    /// The dynld extension header that follows the Exec header (and the
    /// fat entry); the table directory follows it.
    pub struct Dynhdr {
        /// Format version ([`VERSION`]).
        pub version: u32,
        /// Bytes from the start of this header to the text: this header,
        /// the directory and any zero padding.
        pub hdrsize: u32,
        /// [`FLAG_LOW2G`]; other bits must be 0.
        pub flags: u32,
        /// Alignment the image base needs (a power of two, at most [`MAX_ALIGN`]).
        pub align: u32,
        /// Image offset of the data segment (at least `Exec.text`).
        pub dataoff: u32,
        /// Entries in the table directory (at most [`MAX_TABLES`]).
        pub ntable: u32,
    }
}

record! {
    /// One entry of the table directory.
    pub struct TableEntry {
        /// What the table holds (see [`kind`]).
        pub kind: u16,
        /// [`TABLE_REQUIRED`]; other bits must be 0.
        pub flags: u16,
        /// Entries (records) in the table; 0 for the string table.
        pub count: u32,
        /// File offset of the table.
        pub offset: u32,
        /// Bytes in the table (never 0: an empty table is left out).
        pub size: u32,
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

record! {
    /// One type description: a string in the string table (`len` 0 = none).
    pub struct TypeEntry {
        /// Offset of the description in the string table.
        pub name: u32,
        /// Length of the description in bytes.
        pub len: u32,
    }
}

/// [`SymEntry::flags`]: the symbol is one of the module's exports.
pub const SYM_EXPORTED: u32 = 1;
/// Every [`SymEntry::flags`] bit version 2 defines; the others must be 0.
pub const SYM_FLAGS_KNOWN: u32 = SYM_EXPORTED;

record! {
    /// One entry of the symbols table ([`kind::SYMBOLS`]): a function or
    /// data object of the module, exported or local. The table is sorted
    /// by `value` (non-decreasing: aliases share one).
    pub struct SymEntry {
        /// Image offset of the symbol's first byte (on ARM, without the
        /// Thumb bit).
        pub value: u32,
        /// Bytes in the symbol (never 0); `value + size` lies within the
        /// text, or within data and bss.
        pub size: u32,
        /// Offset of the name in the string table.
        pub name: u32,
        /// Length of the name in bytes.
        pub namelen: u32,
        /// [`SYM_EXPORTED`]; other bits must be 0.
        pub flags: u32,
    }
}

/// [`MetaEntry::tag`]: the module's name (`str`/`len`), version (`a.b.c`)
/// and class (`d`/`e`, a string). Exactly one, first in the table.
pub const META_MODULE: u32 = 1;
/// [`MetaEntry::tag`]: an ABI the module requires of the host: class
/// (`str`/`len`), major `a`, minor `b`.
pub const META_ABI: u32 = 2;
/// [`MetaEntry::tag`]: a module this one depends on: its name
/// (`str`/`len`), the lowest version accepted (`a.b.c`) and the first
/// version refused (`d.e.f`; all ones for no upper bound).
pub const META_DEPENDS: u32 = 3;
/// [`MetaEntry::tag`]: the setup function, export index `a`: called after
/// the constructors with the caller's options (see [`crate::meta`]).
pub const META_SETUP: u32 = 4;
/// [`MetaEntry::tag`]: the teardown function, export index `a`: called at
/// unload, before the destructors.
pub const META_TEARDOWN: u32 = 5;
/// Most records in a metadata table.
pub const MAX_META: u32 = 256;

record! {
    /// One record of the metadata table ([`kind::METADATA`]); what each
    /// field means depends on the tag (see [`META_MODULE`] and the tags
    /// after it). Fields a tag does not use are 0.
    pub struct MetaEntry {
        /// What the record says ([`META_MODULE`], [`META_ABI`], ...).
        pub tag: u32,
        /// Offset of the record's string in the string table.
        pub str: u32,
        /// Length of the string in bytes.
        pub len: u32,
        /// First number (a major version, an export index).
        pub a: u32,
        /// Second number.
        pub b: u32,
        /// Third number.
        pub c: u32,
        /// Fourth number (an upper bound's major, the class string's offset).
        pub d: u32,
        /// Fifth number.
        pub e: u32,
        /// Sixth number.
        pub f: u32,
    }
}

/// Bytes in one constructor or destructor entry (a big-endian u32).
pub const FUNC_ENTRY_SIZE: usize = 4;

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
        assert_eq!(Arch::Amd64.exec_size(), 32 + 8);
        assert_eq!(Arch::Arm.exec_size(), 32);
        for k in 0..=20u16 {
            assert_eq!(kind::known(k), kind::name(k) != "unknown", "{k}");
            assert!(!kind::required(k) || kind::known(k));
        }
    }

    #[test]
    fn records_round_trip() {
        let h = Dynhdr {
            version: 2,
            hdrsize: 64,
            dataoff: 0x0102_0304,
            ntable: 9,
            ..Dynhdr::default()
        };
        let mut b = [0u8; Dynhdr::SIZE];
        h.write(&mut b).unwrap();
        assert_eq!(&b[16..20], &[1, 2, 3, 4], "big-endian");
        assert_eq!(Dynhdr::parse(&b), Some(h));
        assert_eq!(Dynhdr::parse(&b[..23]), None);
        assert!(h.write(&mut [0u8; 10]).is_none());
        let t = TableEntry {
            kind: kind::TYPES,
            flags: TABLE_REQUIRED,
            count: 3,
            offset: 0x10,
            size: 24,
        };
        let mut b = [0u8; TableEntry::SIZE];
        t.write(&mut b).unwrap();
        assert_eq!(&b[..4], &[0, 10, 0, 1]);
        assert_eq!(TableEntry::parse(&b), Some(t));
        let e = SymEntry {
            value: 0x10,
            size: 0x0102_0304,
            name: 7,
            namelen: 6,
            flags: SYM_EXPORTED,
        };
        let mut b = [0u8; SymEntry::SIZE];
        assert_eq!(SymEntry::SIZE, 20);
        e.write(&mut b).unwrap();
        assert_eq!(&b[4..8], &[1, 2, 3, 4]);
        assert_eq!(&b[16..], &[0, 0, 0, 1]);
        assert_eq!(SymEntry::parse(&b), Some(e));
        assert!(kind::known(kind::SYMBOLS) && !kind::required(kind::SYMBOLS));
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

//! Explicit limits on what a module may ask for.

/// Explicit limits on what a module may ask for. All but `max_name` are
/// checked before anything is allocated; names are checked as the tables
/// are read.
///
/// Whatever the limits, the loader commits memory (writes it, or asks the
/// provider to bring it in) only for bytes it has just read from the
/// source, a chunk at a time, and for at most 64 KiB of bss: a header that
/// claims a large image costs address space, not memory, until the file
/// supplies the bytes. A source that knows its length
/// ([`Source::length`](crate::Source::length)) has a module that claims more
/// bytes than it holds refused before anything is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest image (text, padding, data and bss) in bytes; 0 = no limit
    /// beyond the format's. Plan 9's `maxsize`.
    pub max_size: u64,
    /// Most exports.
    pub max_exports: u32,
    /// Most imports.
    pub max_imports: u32,
    /// Longest symbol name in bytes.
    pub max_name: u32,
    /// Most relocation records in each of the two relocation tables, and
    /// most constructors, destructors and symbols-table entries.
    pub max_relocs: u32,
    /// Largest string table in bytes (names and type descriptions).
    pub max_strings: u32,
    /// Largest extension header in bytes, directory and padding included
    /// (the loader seeks over the padding, so a large one costs nothing).
    pub max_header: u32,
}

impl Limits {
    /// The defaults: no size limit, 1 Mi exports, 64 Ki imports, 64 KiB
    /// names (what `aout link` writes), 16 Mi relocations, 64 MiB of
    /// strings, 64 KiB + 1 KiB header (room to put the text on a 64 KiB
    /// page boundary in the file, after a full directory).
    pub const DEFAULT: Limits = Limits {
        max_size: 0,
        max_exports: 1 << 20,
        max_imports: 1 << 16,
        max_name: MAX_NAME,
        max_relocs: 1 << 24,
        max_strings: 64 << 20,
        max_header: (1 << 16) + 1024,
    };
}

/// Longest symbol name the default limits admit, and the longest that
/// `aout link` writes.
pub const MAX_NAME: u32 = 64 << 10;

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

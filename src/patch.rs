//! Where things are in an amd64 module file, for tests that patch bytes
//! in modules to make them malformed.

use dynld::format::{Dynhdr, Exec, TableEntry};
use std::ops::Range;

/// File offset of the extension header (after the Exec header and the
/// fat entry).
pub const DYNHDR: usize = Exec::SIZE + 8;
/// File offset of the table directory.
pub const DIRECTORY: usize = DYNHDR + Dynhdr::SIZE;

/// Indices of the `Dynhdr` words.
pub mod hdr {
    /// `version`.
    pub const VERSION: usize = 0;
    /// `hdrsize`.
    pub const HDRSIZE: usize = 1;
    /// `flags`.
    pub const FLAGS: usize = 2;
    /// `align`.
    pub const ALIGN: usize = 3;
    /// `dataoff`.
    pub const DATAOFF: usize = 4;
    /// `ntable`.
    pub const NTABLE: usize = 5;
}

/// Byte offsets of a directory entry's fields within it.
pub mod field {
    /// `kind` (u16).
    pub const KIND: usize = 0;
    /// `flags` (u16).
    pub const FLAGS: usize = 2;
    /// `count`.
    pub const COUNT: usize = 4;
    /// `offset`.
    pub const OFFSET: usize = 8;
    /// `size`.
    pub const SIZE: usize = 12;
}

/// File offset of `Dynhdr` word `i` (see [`hdr`]).
pub const fn hdr_field(i: usize) -> usize {
    DYNHDR + 4 * i
}

/// The big-endian word at `at`.
pub fn get_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

/// Writes the big-endian word `v` at `at`.
pub fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

/// Writes the big-endian half-word `v` at `at`.
pub fn set_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// Entries the directory lists (`Dynhdr.ntable`).
pub fn ntable(b: &[u8]) -> usize {
    get_u32(b, hdr_field(hdr::NTABLE)) as usize
}

/// File offset of directory entry `i`.
pub const fn entry_at(i: usize) -> usize {
    DIRECTORY + i * TableEntry::SIZE
}

/// Directory entry `i`.
pub fn entry(b: &[u8], i: usize) -> TableEntry {
    TableEntry::parse(&b[entry_at(i)..]).unwrap()
}

/// The position in the directory of the table of `kind`.
pub fn position(b: &[u8], kind: u16) -> Option<usize> {
    (0..ntable(b)).find(|&i| entry(b, i).kind == kind)
}

/// File offset of the directory entry of the table of `kind`.
pub fn entry_of(b: &[u8], kind: u16) -> usize {
    let i = position(b, kind).unwrap_or_else(|| panic!("no table of kind {kind}"));
    entry_at(i)
}

/// The directory entry of the table of `kind`.
pub fn table(b: &[u8], kind: u16) -> TableEntry {
    TableEntry::parse(&b[entry_of(b, kind)..]).unwrap()
}

/// The file bytes of the table of `kind`.
pub fn table_range(b: &[u8], kind: u16) -> Range<usize> {
    let t = table(b, kind);
    t.offset as usize..(t.offset + t.size) as usize
}

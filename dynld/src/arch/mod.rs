//! Per-architecture load-time relocation modes.
//!
//! The link tool resolves everything inside a module at link time; what is
//! left for the loader is a few modes per architecture, each of which adds a
//! *target* to a field: the module's load base, or the address bound to one
//! of its imports. Each architecture's file defines its modes' field widths,
//! whether they take an import, and how the field is patched.

use crate::format::Arch;

pub mod aarch64;
pub mod arm;
pub mod riscv;
pub mod x86_64;

/// What a relocation mode patches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mode {
    /// Mode number in the relocation stream.
    pub number: u8,
    /// Short name shown by the tool (`base64`, `import64`, ...).
    pub name: &'static str,
    /// Bytes in the patched field.
    pub width: usize,
    /// Whether the target is an import's address (else the load base).
    pub import: bool,
}

/// The patched value does not fit the field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow;

/// The modes `arch` defines.
pub fn modes(arch: Arch) -> &'static [Mode] {
    match arch {
        Arch::Amd64 => x86_64::MODES,
        Arch::Arm64 => aarch64::MODES,
        Arch::Arm => arm::MODES,
        Arch::Riscv64 => riscv::MODES64,
        Arch::Riscv32 => riscv::MODES32,
        _ => &[],
    }
}

/// Mode `number` of `arch`.
#[inline]
pub fn mode(arch: Arch, number: u8) -> Option<&'static Mode> {
    // Every architecture numbers its modes 0, 1, 2, ... in table order.
    modes(arch)
        .get(usize::from(number))
        .filter(|m| m.number == number)
}

/// Patches `field` (exactly the width of mode number `mode`, at address
/// `place`) by adding `target` as the mode says.
pub fn apply(
    arch: Arch,
    mode: u8,
    field: &mut [u8],
    place: u64,
    target: u64,
) -> Result<(), Overflow> {
    match arch {
        Arch::Amd64 => x86_64::apply(mode, field, place, target),
        Arch::Arm64 => aarch64::apply(mode, field, place, target),
        Arch::Arm => arm::apply(mode, field, place, target),
        Arch::Riscv64 => riscv::apply(64, mode, field, place, target),
        Arch::Riscv32 => riscv::apply(32, mode, field, place, target),
        _ => Err(Overflow),
    }
}

/// Little-endian field access shared by the architectures.
pub(crate) mod field {
    /// Reads a little-endian field of up to 8 bytes.
    pub fn get(f: &[u8]) -> u64 {
        f.iter().rev().fold(0, |a, &b| a << 8 | u64::from(b))
    }
    /// Writes the low `f.len()` bytes of `v`, little-endian.
    pub fn put(f: &mut [u8], v: u64) {
        for (i, b) in f.iter_mut().enumerate() {
            *b = v.checked_shr(8 * i as u32).unwrap_or(0) as u8;
        }
    }
}

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

/// Whether this build relocates for `arch`: always for the architecture it
/// runs on, and for every architecture with the `cross` feature (which
/// `std` implies). A kernel's build so carries only its own architecture's
/// patching code.
pub const fn supported(arch: Arch) -> bool {
    if cfg!(feature = "cross") {
        return true;
    }
    match Arch::HOST {
        Some(host) => host as u8 == arch as u8,
        None => false,
    }
}

/// Patches `field` (exactly the width of mode number `mode`, at address
/// `place`) by adding `target` as the mode says. Fails for an architecture
/// this build does not relocate for (see [`supported`]).
pub fn apply(
    arch: Arch,
    mode: u8,
    field: &mut [u8],
    place: u64,
    target: u64,
) -> Result<(), Overflow> {
    match arch {
        _ if !supported(arch) => Err(Overflow),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_build_relocates_for_its_own_architecture() {
        for a in Arch::ALL {
            let want = cfg!(feature = "cross") || Some(a) == Arch::HOST;
            assert_eq!(supported(a), want, "{a:?}");
        }
    }

    /// Without `cross`, a load for another architecture is refused before
    /// anything is allocated.
    #[cfg(all(feature = "alloc", not(feature = "cross"), target_arch = "x86_64"))]
    #[test]
    fn other_architectures_need_the_cross_feature() {
        use crate::{Error, ExportTable, Loader, ModuleBuilder, SliceSource, HEAP};
        let mut b = ModuleBuilder::new(Arch::Arm64);
        b.text(&[0; 8]);
        let bytes = b.build().unwrap();
        let mut src = SliceSource::new(&bytes);
        let e = Loader::new(ExportTable::EMPTY, &HEAP)
            .arch(Arch::Arm64)
            .load(&mut src)
            .unwrap_err();
        assert_eq!(
            e,
            Error::WrongArch {
                found: Arch::Arm64,
                want: Arch::Amd64
            }
        );
    }
}

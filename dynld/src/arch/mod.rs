//! Per-architecture load-time relocation modes.
//!
//! The link tool resolves everything inside a module at link time; what is
//! left for the loader is a few modes per architecture, each of which adds a
//! *target* to a field: the module's load base, or the address bound to one
//! of its imports. Each architecture's file defines its modes' field widths,
//! whether they take an import, what they ask of the load address (base
//! alignment, the low 2 GiB, the distance to an import), and how the field
//! is patched. The loader and the link tool both read these facts here.

use crate::format::Arch;

pub mod aarch64;
pub mod arm;
pub mod riscv;
pub mod x86_64;

/// What a relocation mode patches, and what it asks of the load address.
///
/// The facts are stated once, here: the link tool reads them to choose a
/// module's base alignment and flags and to warn about what a mode
/// constrains; the architecture's patching refuses a target that breaks
/// them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mode {
    /// Mode number in the relocation stream.
    pub number: u8,
    /// Short name shown by the tool (`base64`, `import64`, ...).
    pub name: &'static str,
    /// Bytes in the patched field.
    pub width: usize,
    /// Whether the target is an import's address (else the load base).
    pub import: bool,
    /// Alignment (a power of two) the load base needs for the mode to be
    /// exact: the low bits the mode leaves alone were resolved at link
    /// time against a base of 0. 1 for a mode that works at any base. A
    /// module asks its loader for at least the largest of its modes'.
    pub base_align: u32,
    /// Whether the patched value must lie below 2 GiB (a 32-bit field
    /// that the code sign- or zero-extends on a 64-bit machine): a module
    /// using the mode carries [`FLAG_LOW2G`](crate::format::FLAG_LOW2G).
    pub low2g: bool,
    /// For a mode that reaches its import PC-relatively: how, and how far.
    /// The module then loads only within that distance of the import.
    pub pc_reach: Option<PcReach>,
}

/// How a PC-relative mode reaches its import (see [`Mode::pc_reach`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PcReach {
    /// The instruction or field doing it, as a warning names it (`adrp`,
    /// `a 32-bit PC-relative reference`).
    pub how: &'static str,
    /// The largest distance, in bytes either way, between the place and
    /// the import.
    pub bytes: u64,
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
        Arch::I386 => &[],
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
        Arch::I386 => Err(Overflow),
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
    fn the_mode_tables_state_consistent_facts() {
        for a in Arch::ALL {
            let word = a.word_size();
            for (i, m) in modes(a).iter().enumerate() {
                let what = format!("{a:?} mode {} ({})", m.number, m.name);
                assert_eq!(usize::from(m.number), i, "{what}: numbered in order");
                assert_eq!(mode(a, m.number), Some(m), "{what}");
                assert!(m.width == 4 || m.width == 8, "{what}: width");
                assert!(m.width <= word, "{what}: wider than an address");
                assert!(m.base_align.is_power_of_two(), "{what}: base_align");
                assert!(
                    m.base_align <= crate::format::MAX_ALIGN,
                    "{what}: base_align beyond what a module may ask"
                );
                // Constraints on the base concern modes that add the base;
                // reach concerns modes that add an import.
                if m.base_align > 1 || m.low2g {
                    assert!(!m.import, "{what}: an import mode constrains the base");
                }
                if m.low2g {
                    assert!(
                        word == 8 && m.width == 4,
                        "{what}: low2g on a 32-bit field of a 64-bit machine"
                    );
                }
                if let Some(r) = m.pc_reach {
                    assert!(m.import, "{what}: reach of a base mode");
                    assert!(!r.how.is_empty() && r.bytes >= 1 << 20, "{what}: reach");
                }
            }
            // Modes 0 and 1: address words adding the base, an import.
            if let [base, import, ..] = modes(a) {
                assert!(!base.import && base.width == word, "{a:?}");
                assert!(import.import && import.width == word, "{a:?}");
            }
        }
        assert!(modes(Arch::I386).is_empty());
    }

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

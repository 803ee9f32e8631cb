//! The per-architecture half of the linker: the [`Machine`] trait each
//! backend (`x86_64.rs`, `aarch64.rs`, `arm.rs`, `riscv.rs`) implements,
//! and the choice of backend for an architecture.

use super::image::{Image, Target};
use super::{aarch64, arm, fail, riscv, x86_64, LinkError};
use dynld::Arch;
use std::collections::BTreeMap;

/// The backend for `arch`.
pub(super) fn backend(arch: Arch) -> Result<&'static dyn Machine, LinkError> {
    Ok(match arch {
        Arch::Amd64 => &x86_64::Backend,
        Arch::Arm64 => &aarch64::Backend,
        Arch::Riscv64 => &riscv::Backend { xlen: 64 },
        Arch::Riscv32 => &riscv::Backend { xlen: 32 },
        Arch::Arm => &arm::Backend,
        Arch::I386 => fail!("the linker does not support {arch} (i386) modules"),
    })
}

/// The per-architecture half of the linker: how each ELF relocation type
/// is resolved, and the code the linker synthesises (stubs, `atexit`).
pub(crate) trait Machine {
    /// What `r_type` needs beyond the field itself.
    fn needs(&self, r_type: u32) -> Need;
    /// Bytes a relocation type patches (0: none).
    fn width(&self, r_type: u32) -> u64;
    /// Whether two relocations of these types may patch the same field
    /// (they then combine, as RISC-V's paired ADD/SUB do).
    fn may_share(&self, _a: u32, _b: u32) -> bool {
        false
    }
    /// Whether a relocation of this type is only meaningful with a partner
    /// sharing its field (see [`may_share`](Machine::may_share)).
    fn must_pair(&self, _r_type: u32) -> bool {
        false
    }
    /// Relocations of a section are applied in order of pass, then offset.
    fn pass(&self, _r_type: u32) -> u8 {
        0
    }
    /// How far a direct call reaches (either way), if veneers may be
    /// needed for calls inside the module.
    fn branch_reach(&self) -> Option<u64> {
        None
    }
    /// The addend of a call, from the field (`REL` objects), such that
    /// `S + A` is the address called.
    fn call_addend(&self, _r_type: u32, _field: &[u8]) -> i64 {
        0
    }
    /// Bytes in a veneer.
    fn veneer_size(&self) -> u64 {
        0
    }
    /// Writes a veneer at `at` jumping to image offset `to`.
    fn write_veneer(&self, _img: &mut Image, _at: u64, _to: u64) -> Result<(), LinkError> {
        Err(LinkError("no veneers on this machine".into()))
    }
    /// Whether objects for this machine carry addends in the patched field
    /// (ELF `REL`), which the backend reads itself.
    fn implicit_addends(&self) -> bool {
        false
    }
    /// The address to call for code at image offset `v` (Thumb sets bit 0).
    fn code_address(&self, v: u64) -> u64 {
        v
    }
    /// Page size: data starts on a page.
    fn page_size(&self) -> u64;
    /// Alignment the module asks of its load base for what the linker
    /// resolved itself (each load-time mode adds its own, from
    /// `dynld::arch::Mode::base_align`).
    fn base_align(&self) -> u64 {
        16
    }
    /// Bytes in a stub that jumps through an import's GOT slot.
    fn stub_size(&self) -> u64;
    /// Writes a stub at `at` jumping through the GOT slot at `slot`.
    fn write_stub(&self, img: &mut Image, at: u64, slot: u64) -> Result<(), LinkError>;
    /// Bytes in a stub that jumps to an absolute address.
    fn abs_stub_size(&self) -> u64;
    /// Writes a stub at `at` jumping to the absolute address `v`.
    fn write_abs_stub(&self, img: &mut Image, at: u64, v: u64) -> Result<(), LinkError>;
    /// Bytes in the `atexit` the linker writes for a module that calls it.
    fn atexit_size(&self) -> u64;
    /// Writes that `atexit` at `at`: `__cxa_atexit(f, 0, dso)` with its
    /// argument `f` as it came, tail-calling the `__cxa_atexit` stub at
    /// `stub`; `dso` is the module's `__dso_handle`.
    fn write_atexit(&self, img: &mut Image, at: u64, dso: u64, stub: u64) -> Result<(), LinkError>;
    /// Writes an address-sized word holding `t` (a GOT slot).
    fn write_word(&self, img: &mut Image, at: u64, t: &Target) -> Result<(), LinkError>;
    /// The relocation type's name, for messages.
    fn type_name(&self, r_type: u32) -> String;
    /// Resolves one relocation.
    fn apply(
        &self,
        img: &mut Image,
        r: &Reloc<'_>,
        stubs: &BTreeMap<String, u64>,
        abs_stubs: &BTreeMap<u64, u64>,
    ) -> Result<(), LinkError>;
}

/// What a relocation type needs beyond the field itself.
pub(crate) enum Need {
    /// Nothing.
    None,
    /// A GOT slot holding the target's address.
    Got,
    /// A call: a stub for an import or an absolute address (and, on
    /// machines with a limited branch reach, veneers for calls inside the
    /// module).
    Stub,
}

/// One ELF relocation, resolved, as a backend applies it.
pub(crate) struct Reloc<'a> {
    /// The ELF relocation type (`R_*`).
    pub r_type: u32,
    /// Image offset of the field (the place, `P`).
    pub offset: u64,
    /// The record's addend (`A`), unless `implicit`.
    pub addend: i64,
    /// What the symbol resolved to (`S`).
    pub target: Target,
    /// Describes the relocation for error messages.
    pub what: &'a dyn Fn() -> String,
    /// The addend is in the field (ELF `REL`), not in `addend`.
    pub implicit: bool,
    /// The field lies in an executable section (an instruction's).
    pub in_code: bool,
    /// The field's offset in its section: how many bytes of the section
    /// come before it (an instruction's opcode, say).
    pub in_section: u64,
    /// The target symbol's name (`*ABS*` for none).
    pub name: &'a str,
    /// The target is a weak symbol nothing defines (so `Target::Abs(0)`).
    pub weak_undefined: bool,
}

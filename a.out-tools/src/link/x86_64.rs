//! x86-64: ELF relocation types onto the loader's amd64 modes.

use super::image::{Image, LoadReloc, Target};
use super::machine::{Machine, Need, Reloc};
use super::{fail, LinkError};
use dynld::arch::x86_64::{BASE32, BASE32S, BASE64, IMPORT64, IMPORT_PC32};
use object::elf;
use std::collections::BTreeMap;

pub(crate) struct Backend;

fn rel32(from_end: u64, to: u64) -> Option<i32> {
    i32::try_from(i128::from(to) - i128::from(from_end)).ok()
}

/// `v + a - p` (or `v + a` without a place), exactly.
fn value(v: u64, a: i64, p: Option<u64>) -> i128 {
    i128::from(v) + i128::from(a) - p.map_or(0, i128::from)
}

/// Rewrites `lea disp32(%rip), reg` (64- or 32-bit), whose displacement
/// is the field at `p`, `before` bytes into its section, as `mov $imm,
/// reg` of the same length, if it is one and `imm` fits (sign-extended
/// for the 64-bit form, zero-extended for the 32-bit one); whether it did.
fn lea_as_mov(img: &mut Image, p: u64, before: u64, imm: i128) -> Result<bool, LinkError> {
    if before < 2 {
        return Ok(false);
    }
    let at = p - 2;
    let (op, modrm) = match img.get(at, 2)? {
        &[op, modrm] => (op, modrm),
        _ => return Ok(false),
    };
    // lea with a RIP-relative operand: opcode 8d, ModRM mod 00 r/m 101.
    if op != 0x8d || modrm & 0xc7 != 0x05 {
        return Ok(false);
    }
    // A REX prefix, if the byte before is one and lies in the section.
    let rex = match before {
        3.. => Some(img.get(at - 1, 1)?[0]).filter(|b| b & 0xf0 == 0x40),
        _ => None,
    };
    let wide = rex.is_some_and(|b| b & 0x08 != 0);
    let Some(imm) = (if wide {
        i32::try_from(imm).ok().map(|i| i as u32)
    } else {
        u32::try_from(imm).ok()
    }) else {
        return Ok(false);
    };
    // mov $imm32, r/m (c7 /0), the register in r/m: lea's REX.R becomes
    // REX.B.
    if let Some(b) = rex {
        img.put(at - 1, &[0x40 | (b & 0x08) | ((b >> 2) & 1)])?;
    }
    img.put(at, &[0xc7, 0xc0 | ((modrm >> 3) & 7)])?;
    img.put(p, &imm.to_le_bytes())?;
    Ok(true)
}

/// Why a PC-relative field cannot reach absolute address `v` in a module,
/// and what to do.
fn pc_relative_to_absolute(r: &Reloc<'_>, v: u64) -> String {
    let (what, name) = ((r.what)(), r.name);
    let target = if r.weak_undefined {
        format!("{name} is a weak symbol nothing defines (address 0)")
    } else {
        format!("{name} is absolute ({v:#x})")
    };
    format!(
        "{what}: {target}, reached PC-relatively: the module loads at an address not known when it is linked, so no PC-relative value reaches a fixed address (ld refuses this in a shared object too): compile with -fPIC, which reaches it through the GOT"
    )
}

impl Machine for Backend {
    fn needs(&self, r_type: u32) -> Need {
        match r_type {
            elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX => {
                Need::Got
            }
            elf::R_X86_64_PLT32 => Need::Stub,
            _ => Need::None,
        }
    }

    fn width(&self, r_type: u32) -> u64 {
        match r_type {
            elf::R_X86_64_64
            | elf::R_X86_64_PC64
            | elf::R_X86_64_GOTOFF64
            | elf::R_X86_64_GOT64
            | elf::R_X86_64_GOTPCREL64
            | elf::R_X86_64_GOTPC64
            | elf::R_X86_64_GOTPLT64
            | elf::R_X86_64_PLTOFF64
            | elf::R_X86_64_SIZE64
            | elf::R_X86_64_DTPMOD64
            | elf::R_X86_64_DTPOFF64
            | elf::R_X86_64_TPOFF64 => 8,
            elf::R_X86_64_NONE => 0,
            elf::R_X86_64_16 | elf::R_X86_64_PC16 => 2,
            elf::R_X86_64_8 | elf::R_X86_64_PC8 => 1,
            _ => 4,
        }
    }

    fn page_size(&self) -> u64 {
        4096
    }

    /// `jmp *slot(%rip)` and two bytes of padding.
    fn stub_size(&self) -> u64 {
        8
    }

    fn write_stub(&self, img: &mut Image, at: u64, slot: u64) -> Result<(), LinkError> {
        let d = rel32(at + 6, slot).ok_or_else(|| LinkError("GOT out of range of stub".into()))?;
        img.put(at, &[0xff, 0x25])?;
        img.put(at + 2, &d.to_le_bytes())?;
        img.put(at + 6, &[0xcc, 0xcc])
    }

    /// `movabs $v,%rax; jmp *%rax` and padding: a call to an absolute address.
    fn abs_stub_size(&self) -> u64 {
        16
    }

    fn write_abs_stub(&self, img: &mut Image, at: u64, v: u64) -> Result<(), LinkError> {
        img.put(at, &[0x48, 0xb8])?;
        img.put(at + 2, &v.to_le_bytes())?;
        img.put(at + 10, &[0xff, 0xe0, 0xcc, 0xcc, 0xcc, 0xcc])
    }

    /// `sub $8,%rsp; (clear the argument registers; call f)...; add $8,%rsp; ret`.
    /// `xor esi, esi; lea rdx, [rip + dso]; jmp stub`.
    fn atexit_size(&self) -> u64 {
        14
    }

    fn write_atexit(&self, img: &mut Image, at: u64, dso: u64, stub: u64) -> Result<(), LinkError> {
        let far = || LinkError("atexit: __dso_handle or the stub out of range".into());
        img.put(at, &[0x31, 0xf6, 0x48, 0x8d, 0x15])?;
        img.put(at + 5, &rel32(at + 9, dso).ok_or_else(far)?.to_le_bytes())?;
        img.put(at + 9, &[0xe9])?;
        img.put(
            at + 10,
            &rel32(at + 14, stub).ok_or_else(far)?.to_le_bytes(),
        )
    }

    fn write_word(&self, img: &mut Image, at: u64, t: &Target) -> Result<(), LinkError> {
        match t {
            Target::Local(v) => {
                img.put(at, &v.to_le_bytes())?;
                img.relocs.push(LoadReloc::base(at, BASE64));
            }
            Target::Abs(v) => img.put(at, &v.to_le_bytes())?,
            Target::Import(n) => {
                img.put(at, &0u64.to_le_bytes())?;
                img.relocs.push(LoadReloc::import(at, IMPORT64, n));
            }
        }
        Ok(())
    }

    fn type_name(&self, r_type: u32) -> String {
        let n = match r_type {
            elf::R_X86_64_NONE => "R_X86_64_NONE",
            elf::R_X86_64_64 => "R_X86_64_64",
            elf::R_X86_64_PC32 => "R_X86_64_PC32",
            elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
            elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
            elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
            elf::R_X86_64_32 => "R_X86_64_32",
            elf::R_X86_64_32S => "R_X86_64_32S",
            elf::R_X86_64_16 => "R_X86_64_16",
            elf::R_X86_64_PC16 => "R_X86_64_PC16",
            elf::R_X86_64_8 => "R_X86_64_8",
            elf::R_X86_64_PC8 => "R_X86_64_PC8",
            elf::R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
            elf::R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
            elf::R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
            elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
            elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
            elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
            elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
            elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
            elf::R_X86_64_PC64 => "R_X86_64_PC64",
            elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
            elf::R_X86_64_GOT64 => "R_X86_64_GOT64",
            elf::R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
            elf::R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
            elf::R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
            elf::R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
            elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
            elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
            elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
            elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
            elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
            _ => return format!("type {r_type}"),
        };
        format!("{n} ({r_type})")
    }

    fn apply(
        &self,
        img: &mut Image,
        r: &Reloc<'_>,
        stubs: &BTreeMap<String, u64>,
        abs_stubs: &BTreeMap<u64, u64>,
    ) -> Result<(), LinkError> {
        let (p, a) = (r.offset, r.addend);
        let out_of_range = || LinkError(format!("{}: value out of range", (r.what)()));
        let i32_of = |v: i128| i32::try_from(v).map_err(|_| out_of_range());
        let u32_of = |v: i128| u32::try_from(v).map_err(|_| out_of_range());
        let i64_of = |v: i128| i64::try_from(v).map_err(|_| out_of_range());
        match (r.r_type, &r.target) {
            (elf::R_X86_64_NONE, _) => {}
            (elf::R_X86_64_64, Target::Local(v)) => {
                // May be below the image (`f - 1`): the loader adds the base
                // with wrapping arithmetic, giving the right address.
                img.put(p, &i64_of(value(*v, a, None))?.to_le_bytes())?;
                img.relocs.push(LoadReloc::base(p, BASE64));
            }
            (elf::R_X86_64_64, Target::Abs(v)) => {
                img.put(p, &(*v as i64).wrapping_add(a).to_le_bytes())?
            }
            (elf::R_X86_64_64, Target::Import(n)) => {
                img.put(p, &a.to_le_bytes())?;
                img.relocs.push(LoadReloc::import(p, IMPORT64, n));
            }
            (elf::R_X86_64_PC32 | elf::R_X86_64_PLT32, Target::Local(v)) => {
                img.put(p, &i32_of(value(*v, a, Some(p)))?.to_le_bytes())?;
            }
            (elf::R_X86_64_PLT32, Target::Abs(v)) => {
                let s = *abs_stubs
                    .get(v)
                    .ok_or_else(|| LinkError(format!("{}: no stub", (r.what)())))?;
                img.put(p, &i32_of(value(s, a, Some(p)))?.to_le_bytes())?;
            }
            (elf::R_X86_64_PLT32, Target::Import(n)) => {
                let s = *stubs
                    .get(n)
                    .ok_or_else(|| LinkError(format!("{}: no stub", (r.what)())))?;
                img.put(p, &i32_of(value(s, a, Some(p)))?.to_le_bytes())?;
            }
            (elf::R_X86_64_PC32, Target::Abs(v)) => {
                // `lea sym(%rip), reg` of an absolute address: the same
                // value as `mov $sym, reg`, which fits in place.
                let imm = value(*v, a, None) + 4;
                if !(r.in_code && lea_as_mov(img, p, r.in_section, imm)?) {
                    fail!("{}", pc_relative_to_absolute(r, *v))
                }
            }
            (elf::R_X86_64_PC64, Target::Abs(v)) => fail!("{}", pc_relative_to_absolute(r, *v)),
            (elf::R_X86_64_PC32, Target::Import(n)) => {
                // Data reached PC-relatively (non-PIC code): the loader
                // patches it and checks the distance.
                img.put(p, &i32_of(i128::from(a))?.to_le_bytes())?;
                img.relocs.push(LoadReloc::import(p, IMPORT_PC32, n));
            }
            (elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX, t) => {
                let slot = *img
                    .got
                    .get(t)
                    .ok_or_else(|| LinkError(format!("{}: no GOT slot", (r.what)())))?;
                img.put(p, &i32_of(value(slot, a, Some(p)))?.to_le_bytes())?;
            }
            (elf::R_X86_64_32, Target::Local(v)) => {
                img.put(p, &u32_of(value(*v, a, None))?.to_le_bytes())?;
                img.relocs.push(LoadReloc::base(p, BASE32));
            }
            (elf::R_X86_64_32S, Target::Local(v)) => {
                img.put(p, &i32_of(value(*v, a, None))?.to_le_bytes())?;
                img.relocs.push(LoadReloc::base(p, BASE32S));
            }
            (elf::R_X86_64_32, Target::Abs(v)) => {
                img.put(p, &u32_of(value(*v, a, None))?.to_le_bytes())?;
            }
            (elf::R_X86_64_32S, Target::Abs(v)) => {
                img.put(p, &i32_of(value(*v, a, None))?.to_le_bytes())?;
            }
            (elf::R_X86_64_PC64, Target::Local(v)) => {
                img.put(p, &i64_of(value(*v, a, Some(p)))?.to_le_bytes())?;
            }
            (
                elf::R_X86_64_DTPMOD64
                | elf::R_X86_64_DTPOFF64
                | elf::R_X86_64_TPOFF64
                | elf::R_X86_64_TLSGD
                | elf::R_X86_64_TLSLD
                | elf::R_X86_64_DTPOFF32
                | elf::R_X86_64_GOTTPOFF
                | elf::R_X86_64_TPOFF32,
                _,
            ) => fail!(
                "{}: thread-local storage is not supported in modules",
                (r.what)()
            ),
            (elf::R_X86_64_32 | elf::R_X86_64_32S | elf::R_X86_64_PC64, Target::Import(_)) => {
                fail!(
                    "{}: an import cannot be reached this way (compile with -fPIC)",
                    (r.what)()
                )
            }
            _ => fail!("{}: relocation type not supported", (r.what)()),
        }
        Ok(())
    }
}

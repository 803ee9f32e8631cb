//! Reading the inputs: archives expanded into their members, every object
//! parsed, and the architecture taken from the first object.

use super::obj::{written_by_rustc, Obj};
use super::{fail, Input, LinkError};
use dynld::Arch;
use object::read::archive::ArchiveFile;
use object::Object;
use std::collections::HashSet;

/// An object file, given or found in an archive.
pub(crate) struct File {
    /// `file.o`, or `lib.a(member.o)`.
    pub(crate) name: String,
    pub(crate) bytes: Vec<u8>,
    /// Given on the command line (else an archive member, linked only if
    /// it defines something wanted).
    given: bool,
}

/// The magic number of an archive (`ar`).
const AR_MAGIC: &[u8] = b"!<arch>\n";

/// The magic number of a thin archive, whose members are other files.
const THIN_MAGIC: &[u8] = b"!<thin>\n";

/// The magic number of an ELF file.
const ELF_MAGIC: &[u8] = b"\x7fELF";

/// Whether `bytes` are LLVM bitcode, bare or in its wrapper: what clang
/// writes for `-flto` instead of an object.
fn is_bitcode(bytes: &[u8]) -> bool {
    bytes.starts_with(b"BC\xc0\xde") || bytes.starts_with(&0x0b17_c0de_u32.to_le_bytes())
}

/// The error for LLVM bitcode given as, or in an archive in place of, an
/// object.
fn bitcode(name: &str) -> LinkError {
    LinkError(format!(
        "{name}: LLVM bitcode (an LTO object, from -flto), not machine code: compile without -flto"
    ))
}

/// Expands archives: objects are included; archive members become
/// candidates. An archive whose symbol index, member headers or members
/// cannot be read is an error naming it (skipped, its symbols would turn
/// into imports); members that are not ELF (an rlib's metadata) are
/// skipped.
pub(crate) fn expand(inputs: Vec<Input>) -> Result<Vec<File>, LinkError> {
    let mut out = Vec::new();
    for Input { name: p, bytes } in inputs {
        if bytes.starts_with(THIN_MAGIC) {
            fail!("{p}: a thin archive (its members are other files) is not supported: make a regular one (ar rcs)");
        }
        if !bytes.starts_with(AR_MAGIC) {
            out.push(File {
                name: p,
                bytes,
                given: true,
            });
            continue;
        }
        let ar = ArchiveFile::parse(&*bytes)
            .map_err(|e| LinkError(format!("{p}: not a valid archive: {e}")))?;
        check_index(&p, &ar)?;
        for m in ar.members() {
            let m = m.map_err(|e| LinkError(format!("{p}: member header: {e}")))?;
            let name = String::from_utf8_lossy(m.name()).into_owned();
            let data = m
                .data(&*bytes)
                .map_err(|e| LinkError(format!("{p}({name}): {e}")))?;
            let name = format!("{p}({name})");
            if is_bitcode(data) {
                return Err(bitcode(&name));
            }
            // Members may sit at unaligned offsets; the ELF reader wants
            // an aligned copy.
            if data.starts_with(ELF_MAGIC) {
                out.push(File {
                    name,
                    bytes: data.to_vec(),
                    given: false,
                });
            }
        }
    }
    Ok(out)
}

/// Reads an archive's symbol index through, checking that every entry
/// names a member header: an index that cannot be read means the archive
/// is damaged (ar and ld refuse it too).
fn check_index(p: &str, ar: &ArchiveFile<'_>) -> Result<(), LinkError> {
    let bad = |e: object::Error| LinkError(format!("{p}: symbol index: {e}"));
    let Some(index) = ar.symbols().map_err(bad)? else {
        return Ok(());
    };
    for sym in index {
        let sym = sym.map_err(bad)?;
        let at = sym.offset();
        ar.member(at).map_err(|e| {
            LinkError(format!(
                "{p}: symbol index: {} names a member at offset {:#x}: {e}",
                String::from_utf8_lossy(sym.name()),
                at.0
            ))
        })?;
    }
    Ok(())
}

/// The parsed objects, all for one architecture.
pub(super) struct Parsed<'d> {
    /// The module's architecture.
    pub arch: Arch,
    /// The objects given, in order: all are linked.
    pub given: Vec<Obj<'d>>,
    /// Archive members, in order: linked if they define something wanted.
    pub members: Vec<Obj<'d>>,
    /// Members skipped for being for another machine.
    pub warnings: Vec<String>,
}

/// Parses every file and checks they are relocatable objects for one
/// machine: the first given object's (or the first member's, if none is
/// given).
pub(super) fn parse(files: &[File]) -> Result<Parsed<'_>, LinkError> {
    if files.is_empty() {
        fail!("no input objects");
    }
    let mut objs = Vec::new();
    for File { name, bytes, .. } in files {
        if is_bitcode(bytes) {
            return Err(bitcode(name));
        }
        let file =
            object::File::parse(&bytes[..]).map_err(|e| LinkError(format!("{name}: {e}")))?;
        if file.kind() != object::ObjectKind::Relocatable {
            fail!("{name}: not a relocatable object");
        }
        objs.push(Obj {
            name: name.clone(),
            rust: written_by_rustc(&file),
            file,
            discarded: HashSet::new(),
        });
    }
    let first = files.iter().position(|f| f.given).unwrap_or(0);
    let (arch, machine) = architecture(&objs[first])?;
    let mut parsed = Parsed {
        arch,
        given: Vec::new(),
        members: Vec::new(),
        warnings: Vec::new(),
    };
    // Every object must be for that machine: an object of another one is an
    // error, an archive member of another one is skipped, as ld does.
    for (obj, f) in objs.into_iter().zip(files) {
        let same = obj.file.architecture() == machine && obj.file.is_64() == arch_is_64(arch);
        match (same, f.given) {
            (true, true) => parsed.given.push(obj),
            (true, false) => parsed.members.push(obj),
            (false, true) => fail!(
                "{}: not an object for {arch} (the first object's machine)",
                f.name
            ),
            (false, false) => parsed
                .warnings
                .push(format!("{}: skipped: not an object for {arch}", f.name)),
        }
    }
    Ok(parsed)
}

/// The module architecture for an object, and the ELF machine objects for
/// it have.
fn architecture(o: &Obj<'_>) -> Result<(Arch, object::Architecture), LinkError> {
    use object::Architecture as A;
    Ok(match (o.file.architecture(), o.file.is_64()) {
        (A::X86_64, true) => (Arch::Amd64, A::X86_64),
        (A::Aarch64, true) => (Arch::Arm64, A::Aarch64),
        (A::Riscv64, true) => (Arch::Riscv64, A::Riscv64),
        (A::Arm, false) => (Arch::Arm, A::Arm),
        (A::Riscv32, false) => (Arch::Riscv32, A::Riscv32),
        (a, _) => fail!("{}: architecture {a:?} is not supported yet", o.name),
    })
}

/// Whether objects for `arch` are 64-bit ELF.
fn arch_is_64(arch: Arch) -> bool {
    arch.word_size() == 8
}

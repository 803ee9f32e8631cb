//! Golden comparison for the embedded targets (RV32, Thumb-2): each
//! fixture is compiled at test time, linked by `aout link`, loaded by dynld
//! relocated for a chosen base, and compared byte for byte with what GNU ld
//! makes of the same objects at that base. The linker script given to ld
//! puts every input section where `aout link --map` says it went; imports
//! are bound to their call stubs' addresses, and ld is told the same with
//! `--defsym`, so every byte that came from an input object must match.
//! Only the areas the linker synthesises (stubs, GOT) are left out, and
//! those are checked on their own: each GOT slot holds its import's address.
//! The file also holds the embedded targets' negative tests, and checks of
//! veneers (calls beyond a branch's reach), decoded from images linked and
//! relocated here for Thumb-2 and AArch64.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::{Arch, Dynsym, ExportTable, Loader, SliceSource, HEAP};
use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::process::Command;

mod common;
use common::{fixture, root, run, workdir};

/// Links `obj` into `dir/STEM.dl` with `--map`; returns the module's path
/// and the map.
fn link_with_map(dir: &Path, obj: &Path, stem: &str) -> (PathBuf, Vec<Entry>) {
    let module = dir.join(format!("{stem}.dl"));
    let map = dir.join(format!("{stem}.map"));
    run(Command::new(env!("CARGO_BIN_EXE_aout"))
        .args(["link", "--map"])
        .arg(&map)
        .arg("-o")
        .arg(&module)
        .arg(obj));
    (module, read_map(&map))
}

/// One line of `aout link --map`.
struct Entry {
    offset: u64,
    size: u64,
    object: String,
    section: String,
}

fn read_map(path: &Path) -> Vec<Entry> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let mut f = l.splitn(4, ' ');
            let mut hex =
                || u64::from_str_radix(f.next().unwrap().trim_start_matches("0x"), 16).unwrap();
            let (offset, size) = (hex(), hex());
            Entry {
                offset,
                size,
                object: f.next().unwrap().to_owned(),
                section: f.next().unwrap().to_owned(),
            }
        })
        .collect()
}

/// How ld names an input: `file` or `archive:member`.
fn ld_input(object: &str) -> String {
    match object.strip_suffix(')').and_then(|o| o.split_once('(')) {
        Some((ar, member)) => format!("{ar}:{member}"),
        None => object.to_owned(),
    }
}

/// Links `inputs` with aout and with GNU ld (`ld` and its emulation
/// arguments) at `base`, and compares the images.
/// `exports` are pulled from archives (`--export` for aout, `-u` for ld).
fn golden(
    dir: &Path,
    tag: &str,
    arch: Arch,
    ld: &[&str],
    inputs: &[PathBuf],
    exports: &[&str],
    base: u64,
) {
    let module = dir.join(format!("{tag}.dl"));
    let map = dir.join(format!("{tag}.map"));
    let o = Command::new(env!("CARGO_BIN_EXE_aout"))
        .args(["link", "--no-gc", "--map"])
        .arg(&map)
        .arg("-o")
        .arg(&module)
        .args(exports.iter().flat_map(|e| ["--export", e]))
        .args(inputs)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{tag}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let map = read_map(&map);

    // Imports are bound to their stubs (or, without one, to a made-up
    // address), and ld is told the same.
    let bytes = std::fs::read(&module).unwrap();
    // Thumb code is called at odd addresses.
    let thumb = u64::from(arch == Arch::Arm);
    let view = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
    let mut names: Vec<String> = view.imports().map(|i| i.name.to_owned()).collect();
    names.sort();
    let addr_of = |i: usize, n: &str| -> u64 {
        map.iter()
            .find(|e| e.object == "*" && e.section == format!("stub {n}"))
            .map_or(0x0100_0000 + 16 * i as u64, |e| base + e.offset + thumb)
    };
    let bound: Vec<(String, u64)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), addr_of(i, n)))
        .collect();
    let syms: Vec<Dynsym<'_>> = bound
        .iter()
        .map(|(n, a)| Dynsym::new(n, 0, *a as usize as *const ()))
        .collect();
    let table = ExportTable::new(&syms).unwrap();
    let m = Loader::new(table, &HEAP)
        .arch(arch)
        .relocate_at(base)
        .load(&mut SliceSource::new(&bytes))
        .unwrap_or_else(|e| panic!("{tag}: {e}"));
    // SAFETY: the module's image is `size` initialised bytes at `base`,
    // owned by `m`, which outlives this borrow; nothing writes to it.
    let ours = unsafe { std::slice::from_raw_parts(m.base(), m.image_size()) }.to_vec();

    // The same objects through GNU ld, each input section where aout put it.
    let mut script = String::from("SECTIONS\n{\n");
    for (i, e) in map.iter().filter(|e| e.object != "*").enumerate() {
        script += &format!(
            "  .o{i} {:#x} : {{ KEEP({}({})) }}\n",
            base + e.offset,
            ld_input(&e.object),
            e.section
        );
    }
    script += "  /DISCARD/ : { *(*) }\n}\n";
    let script_path = dir.join(format!("{tag}.ld"));
    std::fs::write(&script_path, &script).unwrap();
    let elf = dir.join(format!("{tag}.elf"));
    let mut cmd = Command::new(ld[0]);
    cmd.args(&ld[1..])
        .arg("-T")
        .arg(&script_path)
        .args(["-e", "0", "-o"])
        .arg(&elf);
    for (n, a) in &bound {
        cmd.arg(format!("--defsym={n}={a:#x}"));
    }
    for e in exports {
        cmd.args(["-u", e]);
    }
    run(cmd.args(inputs));
    let elf_bytes = std::fs::read(&elf).unwrap();
    let file = object::File::parse(&*elf_bytes).unwrap();
    let mut theirs = vec![0u8; ours.len()];
    for s in file.sections() {
        let (Ok(data), a) = (s.data(), s.address()) else {
            continue;
        };
        if data.is_empty() || a < base {
            continue;
        }
        let at = (a - base) as usize;
        assert!(
            at + data.len() <= theirs.len(),
            "{tag}: ld put {} at {a:#x}, outside the image",
            s.name().unwrap_or("?")
        );
        theirs[at..at + data.len()].copy_from_slice(data);
    }

    // Everything but the synthesised areas must match.
    let mut masked = ours.clone();
    let mut compared = 0;
    for e in map.iter().filter(|e| e.object == "*") {
        let r = e.offset as usize..(e.offset + e.size) as usize;
        masked[r.clone()].fill(0);
        theirs[r].fill(0);
    }
    for (i, (a, b)) in masked.iter().zip(&theirs).enumerate() {
        if a != b {
            let e = map
                .iter()
                .find(|e| e.offset <= i as u64 && (i as u64) < e.offset + e.size.max(1));
            panic!(
                "{tag}: image byte {i:#x} (address {:#x}) is {a:#04x}, GNU ld has {b:#04x}; in {}",
                base + i as u64,
                e.map_or("no section".into(), |e| format!(
                    "{} {}",
                    e.object, e.section
                ))
            );
        }
        compared += 1;
    }
    let from_objects: u64 = map.iter().filter(|e| e.object != "*").map(|e| e.size).sum();
    assert!(compared > 0 && from_objects > 0, "{tag}: nothing compared");
    // The GOT holds each import's address.
    let word = arch.word_size();
    if let Some(got) = map.iter().find(|e| e.object == "*" && e.section == "got") {
        let slots: Vec<u64> = ours[got.offset as usize..(got.offset + got.size) as usize]
            .chunks(word)
            .map(|c| c.iter().rev().fold(0, |x, &b| x << 8 | u64::from(b)))
            .collect();
        for (n, a) in &bound {
            assert!(
                slots.contains(a),
                "{tag}: no GOT slot holds {n} ({a:#x}): {slots:x?}"
            );
        }
    }
    eprintln!(
        "{tag}: {} bytes match GNU ld ({} from {} input sections), {} imports",
        compared,
        from_objects,
        map.iter().filter(|e| e.object != "*").count(),
        bound.len()
    );
}

const RUST_EXPORTS: &[&str] = &["rb_area", "rb_classify", "rb_sum"];
const RV32_CC: &str = "riscv64-linux-gnu-gcc";
const RV32_LD: &[&str] = &["riscv64-linux-gnu-ld", "-m", "elf32lriscv", "--no-relax"];
const RV32_BASE: u64 = 0x8004_0000;

#[test]
fn rv32_images_equal_gnu_ld() {
    let dir = workdir("golden-rv32");
    for (i, flags) in [
        "-O2 -mcmodel=medlow",
        "-Os -mcmodel=medlow",
        "-O0 -mcmodel=medany",
        "-O2 -mcmodel=medany -ffunction-sections -fdata-sections",
    ]
    .iter()
    .enumerate()
    {
        let obj = dir.join(format!("bare{i}.o"));
        run(Command::new(RV32_CC)
            .args([
                "-march=rv32imac",
                "-mabi=ilp32",
                "-fno-pic",
                "-ffreestanding",
            ])
            .args(["-fno-asynchronous-unwind-tables", "-I"])
            .arg(root().join("include"))
            .args(flags.split_whitespace())
            .arg("-c")
            .arg(fixture("bare.c"))
            .arg("-o")
            .arg(&obj));
        golden(
            &dir,
            &format!("c{i}"),
            Arch::Riscv32,
            RV32_LD,
            &[obj],
            &[],
            RV32_BASE,
        );
    }
    for opt in ["s", "2"] {
        let lib = dir.join(format!("libbare{opt}.a"));
        run(Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "--target",
                "riscv32imac-unknown-none-elf",
            ])
            .args(["--crate-type", "staticlib", "--crate-name", "bare"])
            .args(["-C", "panic=abort", "-C"])
            .arg(format!("opt-level={opt}"))
            .arg(fixture("bare.rs"))
            .arg("-o")
            .arg(&lib));
        golden(
            &dir,
            &format!("rust-O{opt}"),
            Arch::Riscv32,
            RV32_LD,
            &[lib],
            RUST_EXPORTS,
            RV32_BASE,
        );
    }
}

/// Links one assembly source with aout, expecting an error.
fn link_error(dir: &Path, cc: &[&str], name: &str, src: &str) -> String {
    let s = dir.join(name);
    std::fs::write(&s, src).unwrap();
    let o = s.with_extension("o");
    run(Command::new(cc[0])
        .args(&cc[1..])
        .arg("-c")
        .arg(&s)
        .arg("-o")
        .arg(&o));
    let out = Command::new(env!("CARGO_BIN_EXE_aout"))
        .arg("link")
        .arg("-o")
        .arg(o.with_extension("dl"))
        .arg(&o)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{name} linked");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn rv32_relocations_out_of_range_or_unsupported() {
    let dir = workdir("rv32-refuse");
    let cc = &[RV32_CC, "-march=rv32imac", "-mabi=ilp32"];
    let e = link_error(
        &dir,
        cc,
        "far.s",
        ".option norvc\n.text\n.globl f\nf: j far\n ret\n.space 0x100000\n\
         .section .text.far,\"ax\",@progbits\n.globl far\nfar: ret\n",
    );
    assert!(
        e.contains(
            "far.o: section .text+0x0: relocation R_RISCV_JAL (17) against far: value out of range"
        ),
        "{e}"
    );
    let e = link_error(
        &dir,
        cc,
        "imp.s",
        ".text\n.globl h\nh: lui a0, %hi(ext)\n addi a0, a0, %lo(ext)\n ret\n",
    );
    assert!(
        e.contains("imp.o: section .text+0x0: relocation R_RISCV_HI20 (26) against ext: an import's address cannot be built with lui/addi"),
        "{e}"
    );
}

const ARM_CC: &[&str] = &["arm-none-eabi-gcc", "-mthumb"];
const ARM_LD: &[&str] = &["arm-none-eabi-ld"];
/// 64 KiB aligned, as `movw`/`movt` modules ask.
const ARM_BASE: u64 = 0x2001_0000;

#[test]
fn thumb2_images_equal_gnu_ld() {
    let dir = workdir("golden-thumb");
    for (i, flags) in [
        "-mcpu=cortex-m4 -O2",
        "-mcpu=cortex-m4 -Os",
        "-mcpu=cortex-m4 -O0",
        "-mcpu=cortex-m4 -O2 -mslow-flash-data",
        "-mcpu=cortex-m3 -O2 -ffunction-sections -fdata-sections",
        "-mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 -O2 -mpure-code",
    ]
    .iter()
    .enumerate()
    {
        let obj = dir.join(format!("bare{i}.o"));
        run(Command::new(ARM_CC[0])
            .args(&ARM_CC[1..])
            .args(["-ffreestanding", "-I"])
            .arg(root().join("include"))
            .args(flags.split_whitespace())
            .arg("-c")
            .arg(fixture("bare.c"))
            .arg("-o")
            .arg(&obj));
        golden(
            &dir,
            &format!("c{i}"),
            Arch::Arm,
            ARM_LD,
            &[obj],
            &[],
            ARM_BASE,
        );
    }
    for (target, opt) in [
        ("thumbv7em-none-eabi", "s"),
        ("thumbv7em-none-eabi", "2"),
        ("thumbv7m-none-eabi", "2"),
    ] {
        let lib = dir.join(format!("libbare-{target}-{opt}.a"));
        run(Command::new("rustc")
            .args(["--edition", "2021", "--target", target])
            .args(["--crate-type", "staticlib", "--crate-name", "bare"])
            .args(["-C", "panic=abort", "-C"])
            .arg(format!("opt-level={opt}"))
            .arg(fixture("bare.rs"))
            .arg("-o")
            .arg(&lib));
        golden(
            &dir,
            &format!("rust-{target}-O{opt}"),
            Arch::Arm,
            ARM_LD,
            &[lib],
            RUST_EXPORTS,
            ARM_BASE,
        );
    }
}

#[test]
fn thumb2_relocations_out_of_range_or_unsupported() {
    let dir = workdir("thumb-refuse");
    let cc = &[ARM_CC[0], "-mthumb", "-mcpu=cortex-m4"];
    // b<c>.w reaches 1 MiB; the target lies 2 MiB away, in another section.
    let e = link_error(
        &dir,
        cc,
        "far.s",
        ".syntax unified\n.thumb\n.text\n.globl f\n.thumb_func\nf: beq.w far\n bx lr\n.space 0x200000\n\
         .section .text.far,\"ax\",%progbits\n.globl far\n.thumb_func\nfar: bx lr\n",
    );
    assert!(
        e.contains("far.o: section .text+0x0: relocation R_ARM_THM_JUMP19 (51) against far: value out of range"),
        "{e}"
    );
    // An import's address built with movw/movt.
    let e = link_error(
        &dir,
        cc,
        "imp.s",
        ".syntax unified\n.thumb\n.text\n.globl h\n.thumb_func\nh: movw r0, #:lower16:ext\n movt r0, #:upper16:ext\n bx lr\n",
    );
    assert!(
        e.contains("imp.o: section .text+0x0: relocation R_ARM_THM_MOVW_ABS_NC (47) against ext: an import's address cannot be built with movw/movt"),
        "{e}"
    );
    // ARM (A32) code (a Cortex-A object mixed in).
    let e = link_error(
        &dir,
        &[ARM_CC[0], "-marm", "-mcpu=cortex-a7"],
        "a32.s",
        ".syntax unified\n.arm\n.text\n.globl g\ng: bl ext\n bx lr\n",
    );
    assert!(
        e.contains("a32.o: section .text+0x0: relocation R_ARM_CALL (28) against ext: ARM (A32) code is not supported"),
        "{e}"
    );
}

/// A module whose `movt` halves the loader patches refuses a base that is
/// not 64 KiB aligned, naming the relocation.
#[test]
fn thumb2_movt_needs_an_aligned_base() {
    let dir = workdir("thumb-movt");
    let obj = dir.join("bare.o");
    run(Command::new(ARM_CC[0])
        .args(&ARM_CC[1..])
        .args([
            "-mcpu=cortex-m4",
            "-O2",
            "-mslow-flash-data",
            "-ffreestanding",
            "-I",
        ])
        .arg(root().join("include"))
        .arg("-c")
        .arg(fixture("bare.c"))
        .arg("-o")
        .arg(&obj));
    let module = dir.join("bare.dl");
    run(Command::new(env!("CARGO_BIN_EXE_aout"))
        .arg("link")
        .arg("-o")
        .arg(&module)
        .arg(&obj));
    let bytes = std::fs::read(&module).unwrap();
    let syms = [Dynsym::new("host_tick", 0, 0x0800_0001 as *const ())];
    let load = |base: u64| {
        Loader::new(ExportTable::new(&syms).unwrap(), &HEAP)
            .arch(Arch::Arm)
            .relocate_at(base)
            .load(&mut SliceSource::new(&bytes))
            .map(|_| ())
    };
    assert_eq!(load(ARM_BASE), Ok(()));
    let e = load(ARM_BASE + 0x8000).unwrap_err();
    assert!(matches!(e, dynld::Error::RelocOverflow { .. }), "{e}");
}

/// Reads a little-endian halfword of the image.
fn hw(img: &[u8], at: u64) -> u16 {
    u16::from_le_bytes([img[at as usize], img[at as usize + 1]])
}

/// A Thumb `bl` whose target lies beyond its 16 MiB reach goes through a
/// veneer, which reaches the target wherever the module loads; a call to an
/// import far from the stubs after the text goes through a copy of its
/// stub in the nearest island.
#[test]
fn thumb2_calls_beyond_reach_go_through_veneers() {
    let dir = workdir("thumb-veneer");
    let src = dir.join("far.s");
    std::fs::write(
        &src,
        ".syntax unified\n.thumb\n.text\n.globl f\n.thumb_func\nf: push {r4, lr}\n bl far\n bl ext\n pop {r4, pc}\n\
         .space 0x1000100\n.section .text.far,\"ax\",%progbits\n.globl far\n.thumb_func\nfar: bx lr\n",
    )
    .unwrap();
    let obj = dir.join("far.o");
    run(Command::new(ARM_CC[0])
        .args(["-mthumb", "-mcpu=cortex-m4", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj));
    let (module, map) = link_with_map(&dir, &obj, "far");
    let far = map
        .iter()
        .find(|e| e.section == ".text.far")
        .expect("no .text.far");
    let bytes = std::fs::read(&module).unwrap();
    let ext = [Dynsym::new("ext", 0, 0x0800_1235 as *const ())];
    let m = Loader::new(ExportTable::new(&ext).unwrap(), &HEAP)
        .arch(Arch::Arm)
        .relocate_at(ARM_BASE)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    // SAFETY: the image is `size` bytes owned by `m`, read only here.
    let img = unsafe { std::slice::from_raw_parts(m.base(), m.image_size()) };
    // The target of the bl at `at`.
    let bl = |at: u64| {
        let (h1, h2) = (hw(img, at), hw(img, at + 2));
        assert_eq!((h1 & 0xf800, h2 & 0xd000), (0xf000, 0xd000), "not a bl");
        let s = u32::from(h1 >> 10 & 1);
        let (i1, i2) = (
            !(u32::from(h2 >> 13 & 1) ^ s) & 1,
            !(u32::from(h2 >> 11 & 1) ^ s) & 1,
        );
        let imm = s << 24
            | i1 << 23
            | i2 << 22
            | u32::from(h1 & 0x3ff) << 12
            | u32::from(h2 & 0x7ff) << 1;
        (at as i64 + 4 + i64::from((imm << 7) as i32 >> 7)) as u64
    };
    // `ip` after the movw, movt, add ip, pc at `v`.
    let ip = |v: u64| {
        let imm16 = |a: u16, b: u16| u32::from(dynld::arch::arm::movw_imm(a, b));
        let d = imm16(hw(img, v), hw(img, v + 2)) | imm16(hw(img, v + 4), hw(img, v + 6)) << 16;
        assert_eq!(hw(img, v + 8), 0x44fc, "not add ip, pc");
        (v + 12).wrapping_add(u64::from(d)) as u32
    };
    // bl far at f+2: its target is a veneer: movw ip, movt ip, add ip, pc, bx ip.
    let f = map
        .iter()
        .find(|e| e.section == ".text")
        .expect("no .text")
        .offset;
    let v = bl(f + 2);
    assert!(
        map.iter()
            .any(|e| e.offset == v && e.section.starts_with("veneer")),
        "bl at {:#x} goes to {v:#x}, not to a veneer",
        f + 2
    );
    assert_eq!(hw(img, v + 10), 0x4760, "not bx ip");
    assert_eq!(
        ip(v),
        (far.offset | 1) as u32,
        "the veneer does not reach far"
    );
    // bl ext at f+6: to a copy of ext's stub in an island, which loads the
    // GOT slot holding ext's address.
    let s = bl(f + 6);
    assert!(
        map.iter().any(|e| e.offset == s && e.section == "stub ext"),
        "bl ext goes to {s:#x}, not to a stub"
    );
    let last = map
        .iter()
        .filter(|e| e.section == "stub ext")
        .map(|e| e.offset)
        .max();
    assert!(last > Some(s), "the call does not use an island's copy");
    assert_eq!(
        (hw(img, s + 10), hw(img, s + 12)),
        (0xf8dc, 0xf000),
        "not ldr.w pc, [ip]"
    );
    let slot = ip(s) as usize;
    let got = u32::from_le_bytes(img[slot..slot + 4].try_into().unwrap());
    assert_eq!(got, 0x0800_1235, "the stub's GOT slot does not hold ext");
}

/// An AArch64 `bl` whose target lies beyond its 128 MiB reach goes through
/// a veneer (`adrp`/`add`/`br`), which reaches the target.
#[test]
fn aarch64_calls_beyond_reach_go_through_veneers() {
    let dir = workdir("a64-veneer");
    let src = dir.join("far.s");
    std::fs::write(
        &src,
        ".text\n.globl f\nf: stp x29, x30, [sp, #-16]!\n bl far\n ldp x29, x30, [sp], #16\n ret\n\
         .space 0x8000100\n.section .text.far,\"ax\",@progbits\n.globl far\nfar: ret\n",
    )
    .unwrap();
    let obj = dir.join("far.o");
    run(Command::new("aarch64-linux-gnu-gcc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj));
    let (module, map) = link_with_map(&dir, &obj, "far");
    let f = map
        .iter()
        .find(|e| e.section == ".text")
        .expect("no .text")
        .offset;
    let far = map
        .iter()
        .find(|e| e.section == ".text.far")
        .expect("no .text.far")
        .offset;
    let bytes = std::fs::read(&module).unwrap();
    let base = 0x40_0000_0000;
    let m = Loader::new(ExportTable::new(&[]).unwrap(), &HEAP)
        .arch(Arch::Arm64)
        .relocate_at(base)
        .load(&mut SliceSource::new(&bytes))
        .unwrap();
    // SAFETY: the image is `size` bytes owned by `m`, read only here.
    let img = unsafe { std::slice::from_raw_parts(m.base(), m.image_size()) };
    let word = |at: u64| u32::from_le_bytes(img[at as usize..at as usize + 4].try_into().unwrap());
    let bl = word(f + 4);
    assert_eq!(bl >> 26, 0b100101, "not a bl");
    let v = (f as i64 + 4 + (i64::from((bl << 6) as i32) >> 4)) as u64;
    assert!(
        map.iter()
            .any(|e| e.offset == v && e.section.starts_with("veneer")),
        "bl goes to {v:#x}, not to a veneer"
    );
    // adrp x16, page; add x16, x16, lo12; br x16.
    let (adrp, add, br) = (word(v), word(v + 4), word(v + 8));
    assert_eq!(
        (adrp & 0x9f00_001f, add & 0xffc0_03ff, br),
        (0x9000_0010, 0x9100_0210, 0xd61f_0200)
    );
    let pages = i64::from((((adrp >> 5 & 0x7ffff) << 2 | adrp >> 29 & 3) << 11) as i32) >> 11;
    let to = ((((base + v) as i64) & !0xfff) + (pages << 12)) as u64 + u64::from(add >> 10 & 0xfff);
    assert_eq!(to, base + far, "the veneer does not reach far");
}

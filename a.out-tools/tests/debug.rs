//! What `aout` gives debuggers: the unwind table `aout link --unwind`
//! keeps (one FDE per function in the module, each pointing at its
//! function from where the table was linked to lie; none for functions
//! `--gc` dropped), and `aout addr2line` naming addresses.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use dynld::format::kind;
use dynld::{Limits, ModuleView};
use std::collections::BTreeSet;
use std::process::Command;

/// Two exported functions and a static one they call.
const SRC: &str = r#"
__attribute__((noinline)) static int helper(int x) {
    volatile int b[4];
    b[x & 3] = x;
    return b[(x + 1) & 3];
}
int first(int x) { return helper(x) + 1; }
int second(int x) { return helper(x) * 2 + first(x); }
"#;

/// In an object of its own, global but left out of the exports: `--gc`
/// drops its text, and so its FDE.
const UNUSED: &str = "int unused(int x) { volatile int y = x; return y - 7; }\n";

/// The module, linked with `--gc`, and with `--unwind` if `unwind`; `tag`
/// names its scratch directory (tests run at once).
fn module(tag: &str, unwind: bool) -> Vec<u8> {
    dynld_suite::cc::module_with(&format!("debug-{tag}"), &[SRC, UNUSED], &[], |o| {
        o.unwind = unwind;
        o.gc = true;
        o.exports = Some(["first".to_owned(), "second".to_owned()].into());
    })
    .bytes
}

/// The image offsets of the functions the unwind table's FDEs cover.
fn fde_targets(bytes: &[u8]) -> Vec<u64> {
    let v = ModuleView::parse(bytes, &Limits::DEFAULT).unwrap();
    let e = v.table_entry(kind::UNWIND).expect("an unwind table");
    let t = &bytes[e.offset as usize..(e.offset + e.size) as usize];
    let at = u32::from_be_bytes(t[..4].try_into().unwrap()) as u64;
    assert!(
        at >= v.image_size() as u64 && at & 7 == 0,
        "placed at {at:#x}"
    );
    assert_eq!(t[4..8], [0; 4]);
    let eh = &t[8..];
    let word = |p: usize| u32::from_le_bytes(eh[p..p + 4].try_into().unwrap());
    let (mut pos, mut out, mut cies) = (0, Vec::new(), BTreeSet::new());
    loop {
        let len = word(pos) as usize;
        if len == 0 {
            assert_eq!(pos + 4, eh.len(), "the terminator ends the table");
            break;
        }
        let id = word(pos + 4) as usize;
        if id == 0 {
            cies.insert(pos);
        } else {
            // The CIE pointer leads back to a CIE of this table.
            assert!(cies.contains(&(pos + 4 - id)), "FDE at {pos:#x}");
            let rel = word(pos + 8) as i32 as i64;
            out.push((at as i64 + pos as i64 + 8 + rel) as u64);
        }
        pos += 4 + len;
    }
    out
}

#[test]
fn unwind_tables_cover_the_functions_kept() {
    let bytes = module("unwind", true);
    let v = ModuleView::parse(&bytes, &Limits::DEFAULT).unwrap();
    let funcs: BTreeSet<(String, u64)> = v
        .symbols()
        .filter(|s| (s.value as usize) < v.text_size())
        .map(|s| (s.name.to_owned(), u64::from(s.value)))
        .collect();
    let names: Vec<&str> = funcs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["first", "helper", "second"], "unused was dropped");
    let mut fdes = fde_targets(&bytes);
    fdes.sort();
    let mut want: Vec<u64> = funcs.iter().map(|(_, v)| *v).collect();
    want.sort();
    assert_eq!(fdes, want);
    // Without --unwind, no table.
    let plain = module("plain", false);
    let v = ModuleView::parse(&plain, &Limits::DEFAULT).unwrap();
    assert!(v.table_entry(kind::UNWIND).is_none());
}

fn aout(args: &[&str]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_aout"))
        .args(args)
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8(o.stdout).unwrap(),
        String::from_utf8(o.stderr).unwrap(),
    )
}

#[test]
fn addr2line_names_addresses() {
    let bytes = module("addr", false);
    let v = ModuleView::parse(&bytes, &Limits::DEFAULT).unwrap();
    let sym = |name: &str| {
        let s = v.symbols().find(|s| s.name == name).unwrap();
        (u64::from(s.value), u64::from(s.size))
    };
    let (helper, hsize) = sym("helper");
    let (second, _) = sym("second");
    let dir = std::env::temp_dir().join(format!("aout-debug-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.dl");
    std::fs::write(&path, &bytes).unwrap();
    let p = path.to_str().unwrap();
    let image = v.image_size() as u64;
    let args = [
        format!("{:#x}", helper + 3),
        format!("{}", second),
        format!("{:#x}", image),
    ];
    let (ok, out, err) =
        aout(&[&["addr2line", p][..], &args.each_ref().map(String::as_str)].concat());
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{:#x} helper+0x3", helper + 3),
            format!("{second:#x} second+0x0"),
            format!("{image:#x} ?? (outside the module)"),
        ]
    );
    // Loaded addresses, with the base; one below it is outside.
    let base = 0x7f00_1234_0000u64;
    let (ok, out, err) = aout(&[
        "addr2line",
        "--base",
        &format!("{base:#x}"),
        p,
        &format!("{:#x}", base + helper + hsize - 1),
        &format!("{:#x}", base - 1),
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("{:#x} helper+{:#x}", base + helper + hsize - 1, hsize - 1),
            format!("{:#x} ?? (outside the module)", base - 1),
        ]
    );
    // A bad module is an error, not a crash.
    std::fs::write(&path, b"not a module").unwrap();
    let (ok, _, err) = aout(&["addr2line", p, "0"]);
    assert!(!ok && err.starts_with("aout: "), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// With `--debug`, `aout addr2line` gives each address's file and line,
/// as binutils' addr2line reads them from the same debug file; for a
/// module of two objects (the second's text placed after the first's)
/// with a function `--gc` dropped, whose line entries are tombstoned.
#[test]
fn addr2line_with_the_debug_file_agrees_with_binutils() {
    const OTHER: &str = "int third(int x) { volatile int y = x; return y * 5; }\n";
    let dir = std::env::temp_dir().join(format!("aout-debug-lines-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (module, debug) = (dir.join("m.dl"), dir.join("m.debug"));
    let linked = dynld_suite::cc::module_with("debug-lines", &[SRC, UNUSED, OTHER], &["-g"], |o| {
        o.gc = true;
        o.exports = Some(["first".to_owned(), "second".to_owned(), "third".to_owned()].into());
        o.debug = Some(debug.clone());
    });
    std::fs::write(&module, &linked.bytes).unwrap();
    std::fs::write(&debug, linked.debug.unwrap()).unwrap();
    let v = ModuleView::parse(&linked.bytes, &Limits::DEFAULT).unwrap();
    let third = v.symbols().find(|s| s.name == "third").unwrap();
    assert!(
        third.value != 0,
        "the second object's text is placed after the first's"
    );
    let addrs: Vec<String> = v
        .symbols()
        .filter(|s| (s.value as usize) < v.text_size())
        .map(|s| format!("{:#x}", s.value + s.size / 2))
        .collect();
    let mut args = vec![
        "addr2line",
        "--debug",
        debug.to_str().unwrap(),
        module.to_str().unwrap(),
    ];
    args.extend(addrs.iter().map(String::as_str));
    let (ok, out, err) = aout(&args);
    assert!(ok, "{err}");
    let ours: Vec<String> = out
        .lines()
        .map(|l| l.rsplit(" at ").next().unwrap().to_owned())
        .collect();
    let theirs = Command::new("addr2line")
        .arg("-e")
        .arg(&debug)
        .args(&addrs)
        .output()
        .expect("binutils addr2line");
    assert!(theirs.status.success());
    let theirs: Vec<String> = String::from_utf8(theirs.stdout)
        .unwrap()
        .lines()
        // binutils adds " (discriminator N)" to some lines.
        .map(|l| l.split(" (").next().unwrap().to_owned())
        .collect();
    assert_eq!(ours.len(), 4, "first, helper, second, third: {out}");
    assert_eq!(ours, theirs, "{out}");
    assert!(
        ours.iter().all(|l| l.contains(".c:") && !l.ends_with(":0")),
        "{out}"
    );
    assert!(
        ours.iter().any(|l| l.ends_with("2.c:1")),
        "third is in the third source: {out}"
    );
    // The module names its debug file, which `aout dump` shows.
    let (ok, out, err) = aout(&["dump", module.to_str().unwrap()]);
    assert!(ok, "{err}");
    let want = format!("debug   {} (crc 0x", debug.display());
    assert!(out.lines().any(|l| l.starts_with(&want)), "{out}");
    std::fs::remove_dir_all(&dir).ok();
}

/// The same for AArch64 objects (aarch64-linux-gnu-gcc): the FDEs, whose
/// start fields are R_AARCH64_PREL32, cover the module's functions.
#[test]
fn unwind_tables_on_aarch64() {
    let dir = std::env::temp_dir().join(format!("aout-debug-a64-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut objs = Vec::new();
    for (i, src) in [SRC, UNUSED].iter().enumerate() {
        let (c, o) = (dir.join(format!("{i}.c")), dir.join(format!("{i}.o")));
        std::fs::write(&c, src).unwrap();
        let st = Command::new("aarch64-linux-gnu-gcc")
            .args(["-O2", "-fPIC", "-c"])
            .arg(&c)
            .arg("-o")
            .arg(&o)
            .status()
            .expect("aarch64-linux-gnu-gcc; scripts/test installs it");
        assert!(st.success());
        objs.push(o);
    }
    let linked = aout_tools::link::link(&aout_tools::link::Options {
        inputs: objs,
        gc: true,
        unwind: true,
        exports: Some(["first".to_owned(), "second".to_owned()].into()),
        ..Default::default()
    })
    .unwrap();
    let v = ModuleView::parse(&linked.bytes, &Limits::DEFAULT).unwrap();
    assert_eq!(v.arch(), dynld::Arch::Arm64);
    let mut want: Vec<u64> = v
        .symbols()
        .filter(|s| (s.value as usize) < v.text_size())
        .map(|s| u64::from(s.value))
        .collect();
    want.sort();
    assert_eq!(want.len(), 3, "first, helper, second");
    let mut fdes = fde_targets(&linked.bytes);
    fdes.sort();
    assert_eq!(fdes, want);
    std::fs::remove_dir_all(&dir).ok();
}

/// `aout run` makes the module it loads known to gdb too: a pending
/// breakpoint on its static function hits, and the backtrace goes through
/// the exported caller (by the unwind table) to aout's own code.
#[test]
fn gdb_sees_modules_under_aout_run() {
    let bytes = module("run", true);
    let dir = std::env::temp_dir().join(format!("aout-debug-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.dl");
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new("gdb")
        .args(["-nx", "-batch", "-ex", "set debuginfod enabled off"])
        .args(["-ex", "set breakpoint pending on", "-ex", "break helper"])
        .args([
            "-ex", "run", "-ex", "bt 3", "-ex", "delete", "-ex", "continue",
        ])
        .arg("--args")
        .arg(env!("CARGO_BIN_EXE_aout"))
        .args(["run"])
        .arg(&path)
        .args(["second", "5"])
        .output()
        .expect("gdb; scripts/test installs it");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let frames: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    assert!(
        text.lines()
            .any(|l| l.starts_with("Breakpoint 1, ") && l.contains(" helper ")),
        "{text}"
    );
    assert!(
        frames.get(1).is_some_and(|l| l.contains(" second ")),
        "{text}"
    );
    assert!(
        frames.get(2).is_some_and(|l| l.contains("aout::run")),
        "{text}"
    );
    // And on to the end.
    assert!(text.contains("exited normally"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

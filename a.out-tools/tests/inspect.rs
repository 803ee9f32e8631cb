//! `aout dump` and `aout nm` on the sample module and on a corrupt one.

use std::process::Command;

fn sample(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("aout-inspect-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
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
fn nm_lists_exports_and_imports() {
    let p = sample("calc.dl", &dynld_suite::calc().build().unwrap());
    let (ok, out, err) = aout(&["nm", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 9, "{out}");
    let add = format!(
        "0000000000000000 T add sig={:#010x}",
        dynld::signof!("fn(int, int) int")
    );
    assert_eq!(lines[0], add);
    assert!(lines.contains(&"0000000000001000 D counter sig=0x4151d5bd"));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("0000000000001028 B scratch")));
    assert!(lines[8].trim_start().starts_with("U host_double sig="));
}

#[test]
fn dump_counts_relocations() {
    let p = sample("calc2.dl", &dynld_suite::calc().build().unwrap());
    let (ok, out, err) = aout(&["dump", "--relocs", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(
        out.contains("dynld module, format version 2, amd64"),
        "{out}"
    );
    assert!(out.contains("  base64       3"), "{out}");
    assert!(out.contains("  import64     1"), "{out}");
    assert!(out.contains("00001008 import64     host_double"), "{out}");
    assert!(out.contains("00001018 base64"), "{out}");
    assert!(out.contains("index   none"), "{out}");
    let p = sample(
        "calc3.dl",
        &dynld_suite::calc().index(true).build().unwrap(),
    );
    let (ok, out, err) = aout(&["dump", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("index   16 slots\n"), "{out}");
    assert!(
        out.contains("  hash index                128 bytes at 0x"),
        "{out}"
    );
    assert!(!out.contains("hashes"), "{out}");

    // Stored import hashes: where they are, and how many are wrong.
    let mut bytes = dynld_suite::calc().import_hashes(true).build().unwrap();
    let p = sample("calc4.dl", &bytes);
    let (ok, out, err) = aout(&["dump", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v = dynld::ModuleView::parse(&bytes, &dynld::Limits::DEFAULT).unwrap();
    let t = v
        .tables()
        .find(|t| t.kind == dynld::format::kind::IMPORT_HASHES)
        .unwrap();
    let at = t.offset as usize;
    let line = format!("  import hashes               8 bytes at {at:#x}, 1 entries\n");
    assert!(out.contains(&line), "{out}");
    let line = "hashes  1 import name hash\n";
    assert!(out.contains(line), "{out}");
    bytes[at] ^= 1;
    let p = sample("calc5.dl", &bytes);
    let (ok, out, err) = aout(&["dump", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("1 of them wrong"), "{out}");
}

#[test]
fn corrupt_module_is_an_error() {
    let mut b = dynld_suite::calc().build().unwrap();
    b.truncate(100);
    let p = sample("bad.dl", &b);
    let (ok, _, err) = aout(&["nm", p.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("premature end of module reading"), "{err}");
}

/// The linker's image is exactly text, page padding, data (with the GOT)
/// and bss: for a fixture whose sizes are known, check them.
#[test]
fn linked_sizes_are_exact() {
    let dir = std::env::temp_dir().join(format!("aout-sizes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("s.c");
    std::fs::write(
        &src,
        "long big[100];\nlong small = 3;\nlong get(long i) { return big[i] + small; }\n",
    )
    .unwrap();
    let obj = dir.join("s.o");
    let ok = Command::new("gcc")
        .args(["-O2", "-fno-asynchronous-unwind-tables", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(ok.success());
    let module = dir.join("s.dl");
    let (ok, _, err) = aout(&[
        "link",
        "-o",
        module.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (_, out, _) = aout(&["dump", module.to_str().unwrap()]);
    // data: `small` (8 bytes), no GOT; bss: padding to `big`'s 32-byte
    // alignment (24 bytes), then `big` (800 bytes).
    assert!(out.contains("data    0x8 (8 bytes) at 0x1000"), "{out}");
    assert!(out.contains("bss     0x338 (824 bytes)"), "{out}");
    assert!(out.contains("image   4928 bytes, align 32"), "{out}");
    // Two exports: `--index auto` stores no index, `--index always` does,
    // and the module it makes runs the same.
    assert!(out.contains("index   none"), "{out}");
    assert!(out.contains("symbols 3 (0 local)\n"), "{out}");
    let (ok, _, err) = aout(&[
        "link",
        "--index",
        "always",
        "-o",
        module.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (_, out, _) = aout(&["dump", module.to_str().unwrap()]);
    assert!(out.contains("index   8 slots\n"), "{out}");
    let (ok, out, err) = aout(&["run", module.to_str().unwrap(), "get", "0"]);
    assert!(ok, "{err}");
    assert_eq!(out, "3\n");
    // A small text is not padded by default (headers of 32 + 8 + 24 bytes
    // and a directory of four tables, strings, exports, index and
    // symbols, 64 bytes);
    // `--text-align` pads the header up to the boundary it names, and the
    // module runs the same.
    assert!(
        out_dump(&module).contains("at 0, file offset 0x80"),
        "{}",
        out_dump(&module)
    );
    let (ok, _, err) = aout(&[
        "link",
        "--text-align",
        "4096",
        "-o",
        module.to_str().unwrap(),
        obj.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let out = out_dump(&module);
    assert!(out.contains("at 0, file offset 0x1000"), "{out}");
    assert!(out.contains("extension header 4056 bytes"), "{out}");
    let (ok, out, err) = aout(&["run", module.to_str().unwrap(), "get", "0"]);
    assert!(ok, "{err}");
    assert_eq!(out, "3\n");
    let (ok, _, err) = aout(&["link", "--text-align", "3", "-o", "x.dl", "x.o"]);
    assert!(!ok);
    assert!(
        err.contains("`3`: expected `auto` or a power of two from 1 to 65536"),
        "{err}"
    );
}

fn out_dump(module: &std::path::Path) -> String {
    aout(&["dump", module.to_str().unwrap()]).1
}

/// `aout link` writes a symbols table, static functions and objects
/// included (lower-case kinds in `aout dump --symbols`), unless given
/// `--strip-symbols`; the module runs the same either way.
#[test]
fn symbols_table_and_strip_symbols() {
    let dir = std::env::temp_dir().join(format!("aout-syms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("s.c");
    std::fs::write(
        &src,
        "static long hits;\n\
         static long __attribute__((noinline)) helper(long x) { hits++; return x * 2; }\n\
         long get(long x) { long r = helper(x); return r + hits; }\n",
    )
    .unwrap();
    let obj = dir.join("s.o");
    let ok = Command::new("gcc")
        .args(["-O2", "-fno-asynchronous-unwind-tables", "-c"])
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(ok.success());
    let module = dir.join("s.dl");
    let (m, o) = (module.to_str().unwrap(), obj.to_str().unwrap());
    let (ok, _, err) = aout(&["link", "-o", m, o]);
    assert!(ok, "{err}");
    let (ok, out, err) = aout(&["dump", "--symbols", m]);
    assert!(ok, "{err}");
    assert!(out.contains("symbols 3 (2 local)\n"), "{out}");
    assert!(out.contains("  symbols  "), "the directory lists it: {out}");
    let listed: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("symbols "))
        .skip(1)
        .collect();
    assert_eq!(listed.len(), 3, "{out}");
    assert!(listed.iter().any(|l| l.ends_with(" t helper")), "{out}");
    assert!(listed.iter().any(|l| l.ends_with(" T get")), "{out}");
    assert!(
        listed.iter().any(|l| l.ends_with("        8 b hits")),
        "{out}"
    );
    let (ok, out, _) = aout(&["run", m, "get", "5"]);
    assert!(ok);
    assert_eq!(out, "11\n");
    let (ok, _, err) = aout(&["link", "--strip-symbols", "-o", m, o]);
    assert!(ok, "{err}");
    let (ok, out, _) = aout(&["dump", "--symbols", m]);
    assert!(ok);
    assert!(out.contains("symbols none\n"), "{out}");
    assert!(!out.contains("  symbols  "), "{out}");
    let (ok, out, _) = aout(&["run", m, "get", "5"]);
    assert!(ok);
    assert_eq!(out, "11\n");
    std::fs::remove_dir_all(&dir).ok();
}

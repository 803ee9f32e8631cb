//! The `aout` command line: help text, arguments, hostile names and files,
//! closed output.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Command, Output, Stdio};

mod common;
use common::workdir;
use dynld::{Arch, ModuleBuilder};

fn aout(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_aout"))
        .args(args)
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The lines of `help` from the one starting with `opt` to the next option.
fn option_help<'a>(help: &'a str, opt: &str) -> &'a str {
    let start = help
        .find(&format!("      {opt} "))
        .unwrap_or_else(|| panic!("{opt} not in {help}"));
    let rest = &help[start + opt.len() + 6..];
    let end = rest.find("\n      --").unwrap_or(rest.len());
    &help[start..start + opt.len() + 6 + end]
}

#[test]
fn link_help_describes_each_option_in_its_own_words() {
    let o = aout(&["link", "--help"]);
    assert!(o.status.success());
    let help = text(&o.stdout);
    assert!(!help.contains("[`"), "rustdoc link in help:\n{help}");
    let index = option_help(&help, "--index");
    let hashes = option_help(&help, "--import-hashes");
    assert!(index.contains("at least 32 exports"), "{index}");
    assert!(!index.contains("imports"), "{index}");
    assert!(hashes.contains("at least 32 imports"), "{hashes}");
    assert!(!hashes.contains("exports"), "{hashes}");
    for h in [index, hashes] {
        assert!(h.contains("always") && h.contains("never"), "{h}");
    }
}

/// A module for this machine whose text returns 7 from `seven` and its
/// argument from `ident`, with an
/// export in data (`table`) and one in bss (`scratch`), and the exports and
/// imports `more` adds; `None` where dynld has no loader for this machine.
fn host_module(more: impl FnOnce(&mut ModuleBuilder)) -> Option<Vec<u8>> {
    let ret7: &[u8] = match Arch::HOST? {
        Arch::Amd64 => &[0xb8, 7, 0, 0, 0, 0xc3],
        Arch::Arm64 => &[0xe0, 0x00, 0x80, 0x52, 0xc0, 0x03, 0x5f, 0xd6],
        Arch::Riscv64 => &[0x13, 0x05, 0x70, 0x00, 0x67, 0x80, 0x00, 0x00],
        _ => return None,
    };
    // `ident` returns its first argument.
    let ident: &[u8] = match Arch::HOST? {
        Arch::Amd64 => &[0x48, 0x89, 0xf8, 0xc3],
        Arch::Arm64 => &[0xc0, 0x03, 0x5f, 0xd6],
        _ => &[0x67, 0x80, 0x00, 0x00],
    };
    let mut text = ret7.to_vec();
    text.resize(16, 0);
    text.extend_from_slice(ident);
    let mut b = ModuleBuilder::new(Arch::HOST?);
    b.text(&text).data(&[1; 16]).bss(32);
    let d = b.data_start();
    b.export("seven", 0, 0)
        .export("ident", 0, 16)
        .export("table", 0, d)
        .export("scratch", 0, d + 16);
    more(&mut b);
    Some(b.build().unwrap())
}

/// Names that would forge a line of `aout nm` and drive a terminal.
const FORGED: &str = "x\n0000000000000000 T innocent";
const ESCAPES: &str = "clear\x1b[2J\x1b]0;owned\x07";

fn assert_escaped(out: &str) {
    assert!(!out.contains('\x1b') && !out.contains('\x07'), "{out:?}");
    assert!(
        !out.lines()
            .any(|l| l.starts_with("0000000000000000 T innocent")),
        "{out}"
    );
    assert!(out.contains("x\\n0000000000000000 T innocent"), "{out}");
    assert!(out.contains("clear\\x1b[2J\\x1b]0;owned\\x07"), "{out}");
}

#[test]
fn names_from_a_module_are_escaped() {
    let dir = workdir("names");
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 16]).data(&[0; 8]);
    let d = b.data_start();
    b.export(FORGED, 0, 0).export("größe_日本", 0, 1);
    let imp = b.import(ESCAPES, 0);
    b.reloc(d, dynld::arch::x86_64::IMPORT64, Some(imp));
    let m = dir.join("names.dl");
    std::fs::write(&m, b.build().unwrap()).unwrap();
    let m = m.to_str().unwrap();

    let o = aout(&["nm", m]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 3, "{out}");
    assert_escaped(&out);
    // Printable names, ASCII or not, are shown as they are.
    assert!(out.contains(" T größe_日本 sig="), "{out}");

    let o = aout(&["dump", "--relocs", m]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(!out.contains('\x1b'), "{out:?}");
    assert!(
        out.contains("import64     clear\\x1b[2J\\x1b]0;owned\\x07\n"),
        "{out}"
    );

    // The loader's messages too: the import is undefined.
    let Some(bytes) = host_module(|b| {
        b.import(&format!("{FORGED}{ESCAPES}"), 0);
    }) else {
        return;
    };
    let m = dir.join("undefined.dl");
    std::fs::write(&m, bytes).unwrap();
    let o = aout(&["run", m.to_str().unwrap(), "seven"]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("undefined symbol: x\\n0000000000000000 T innocent"),
        "{err}"
    );
    assert_escaped(&err);
}

/// Runs aout with `args`, its standard output a pipe whose reading end is
/// already closed, as in `aout nm m.dl | head -1` once head has exited.
fn aout_into_closed_pipe(args: &[&str], stdin: Option<&Path>) -> Output {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two new descriptors into the array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: both descriptors were just made and are owned here alone.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(r);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_aout"));
    cmd.args(args).stdout(Stdio::from(w)).stderr(Stdio::piped());
    if let Some(p) = stdin {
        cmd.stdin(std::fs::File::open(p).unwrap());
    }
    cmd.output().unwrap()
}

#[test]
fn closed_output_is_a_normal_end() {
    let dir = workdir("closed");
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 16]).data(&[0; 8]);
    for i in 0..2000 {
        b.export(&format!("export_{i:05}"), 0, 0);
    }
    let m = dir.join("big.dl");
    std::fs::write(&m, b.build().unwrap()).unwrap();
    let m = m.to_str().unwrap();
    let list = dir.join("list.txt");
    std::fs::write(&list, "a fn(int) int\nb\n").unwrap();
    let list = list.to_str().unwrap();
    let mut cases: Vec<(Vec<&str>, Option<&Path>)> = vec![
        (vec!["nm", m], None),
        (vec!["dump", "--relocs", m], None),
        (vec!["exports", list], None),
        (vec!["exports", "--lang", "c"], Some(Path::new(list))),
    ];
    let seven = dir.join("seven.dl");
    if let Some(bytes) = host_module(|_| {}) {
        std::fs::write(&seven, bytes).unwrap();
        cases.push((vec!["run", seven.to_str().unwrap(), "seven"], None));
    }
    for (args, stdin) in cases {
        let o = aout_into_closed_pipe(&args, stdin);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stderr), "", "{args:?}");
    }
}

/// Runs `aout args` with its address space limited to 4 GiB, so that a
/// read without bound fails instead of filling the machine.
fn aout_limited(args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 4194304 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_aout"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn endless_and_odd_files_are_refused() {
    for cmd in ["nm", "dump"] {
        let o = aout_limited(&[cmd, "/dev/zero"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{cmd}: {err}");
        assert_eq!(
            err,
            "aout: /dev/zero: not a regular file and longer than 256 MiB, \
             the most aout reads from a pipe or device\n",
            "{cmd}"
        );
    }
    let dir = workdir("odd-files");
    let d = dir.to_str().unwrap();
    for args in [vec!["nm", d], vec!["dump", d], vec!["run", d, "f"]] {
        let o = aout(&args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        assert_eq!(
            text(&o.stderr),
            format!("aout: {d}: Is a directory (os error 21)\n"),
            "{args:?}"
        );
    }
}

/// `aout link` reads its inputs by the same rule as `nm`, `dump` and `run`:
/// a device at most 256 MiB, a directory refused with the system's
/// message, a pipe to its end.
#[test]
fn link_reads_inputs_within_bounds() {
    let dir = workdir("link-inputs");
    let src = dir.join("x.c");
    std::fs::write(&src, "long x(void) { return 7; }\n").unwrap();
    let obj = dir.join("x.o");
    let cc = Command::new("cc")
        .arg("-c")
        .arg(&src)
        .arg("-o")
        .arg(&obj)
        .status()
        .unwrap();
    assert!(cc.success());
    let (obj, out) = (obj.to_str().unwrap(), dir.join("x.dl"));
    let out = out.to_str().unwrap();
    let o = aout_limited(&["link", "-o", out, obj, "/dev/zero"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stderr),
        "aout: /dev/zero: not a regular file and longer than 256 MiB, \
         the most aout reads from a pipe or device\n"
    );
    let d = dir.to_str().unwrap();
    let o = aout(&["link", "-o", out, obj, d]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        text(&o.stderr),
        format!("aout: {d}: Is a directory (os error 21)\n")
    );
    let p = dir.join("x.fifo");
    let t = fifo(&p, std::fs::read(obj).unwrap());
    let o = aout(&["link", "-o", out, p.to_str().unwrap()]);
    t.join().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&aout(&["nm", out]).stdout).contains(" T x sig="));
}

/// Serves `bytes` once through a new FIFO at `path`.
fn fifo(path: &Path, bytes: Vec<u8>) -> std::thread::JoinHandle<()> {
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo reads the NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let _ = f.write_all(&bytes);
    })
}

#[test]
fn modules_are_read_from_pipes() {
    let dir = workdir("pipes");
    let Some(bytes) = host_module(|_| {}) else {
        return;
    };
    let p = dir.join("nm.fifo");
    let t = fifo(&p, bytes.clone());
    let o = aout(&["nm", p.to_str().unwrap()]);
    t.join().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(" T seven sig="));
    let p = dir.join("run.fifo");
    let t = fifo(&p, bytes);
    let o = aout(&["run", p.to_str().unwrap(), "seven"]);
    t.join().unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "7\n");
}

#[test]
fn run_calls_only_the_text() {
    let dir = workdir("run-data");
    let Some(bytes) = host_module(|_| {}) else {
        return;
    };
    let m = dir.join("m.dl");
    std::fs::write(&m, bytes).unwrap();
    let m = m.to_str().unwrap();
    let o = aout(&["run", m, "seven"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "7\n");
    for (sym, kind) in [("table", "data"), ("scratch", "bss")] {
        let o = aout(&["run", m, sym]);
        assert_eq!(o.status.code(), Some(1), "{sym}: {}", text(&o.stderr));
        assert_eq!(
            text(&o.stderr),
            format!("aout: {m}: {sym} is in the {kind}, not the text: not a function to call\n")
        );
    }
}

#[test]
fn run_takes_the_integers_the_man_page_allows() {
    let dir = workdir("run-ints");
    let Some(bytes) = host_module(|_| {}) else {
        return;
    };
    let m = dir.join("m.dl");
    std::fs::write(&m, bytes).unwrap();
    let m = m.to_str().unwrap();
    for (arg, want) in [
        ("-0x10", "-16"),
        ("0x10", "16"),
        ("-16", "-16"),
        ("-9223372036854775808", "-9223372036854775808"),
        ("-0x8000000000000000", "-9223372036854775808"),
        ("9223372036854775807", "9223372036854775807"),
        ("0xffffffffffffffff", "-1"),
        ("18446744073709551615", "-1"),
        ("-0", "0"),
    ] {
        let o = aout(&["run", "--ret", "i64", m, "ident", arg]);
        assert!(o.status.success(), "{arg}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), format!("{want}\n"), "{arg}");
    }
    for arg in [
        "-9223372036854775809",
        "-0x8000000000000001",
        "18446744073709551616",
        "-x",
        "0x",
    ] {
        let o = aout(&["run", "--ret", "i64", m, "ident", arg]);
        assert_eq!(o.status.code(), Some(2), "{arg}: {}", text(&o.stdout));
        assert!(
            text(&o.stderr).contains(&format!("invalid value '{arg}'")),
            "{arg}: {}",
            text(&o.stderr)
        );
    }
}

//! gdb over QEMU sees the modules of the Cortex-M3 kernel: the kernel
//! (`examples/kernel`, its `gdb` feature: dynld's `modlist`, modules built
//! with `-g` and `aout link --debug`) runs under `qemu-system-arm -S` with
//! QEMU's gdb stub; `gdb-multiarch -batch` connects, sources
//! `scripts/dynld-gdb.py` and runs `dynld-symbols` on the kernel's build
//! directory. A breakpoint set by name on a module function before the
//! module exists hits once the kernel's registry loads it, and `bt` names
//! it with file and line; when the module is unloaded and another loads
//! at its address, gdb follows.
#![cfg(all(target_arch = "x86_64", target_os = "linux"))]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TARGET: &str = "thumbv7m-none-eabi";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Builds the kernel with its `gdb` feature; the ELF and the directory
/// holding its modules' debug files.
fn build() -> (PathBuf, PathBuf) {
    let tdir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-gdb");
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(root().join("examples/kernel"));
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" {
            cmd.env_remove(k);
        }
    }
    cmd.args([
        "build",
        "--release",
        "--features",
        "gdb",
        "--target",
        TARGET,
    ])
    .arg("--target-dir")
    .arg(&tdir);
    assert!(
        cmd.status().expect("run cargo").success(),
        "building the kernel failed"
    );
    let release = tdir.join(TARGET).join("release");
    // The build script's output directory that has the debug files (the
    // newest, if the kernel was built before).
    let out = std::fs::read_dir(release.join("build"))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("out"))
        .filter(|o| o.join("cmath.debug").is_file())
        .max_by_key(|o| {
            o.join("cmath.debug")
                .metadata()
                .and_then(|m| m.modified())
                .ok()
        })
        .expect("the kernel's modules' debug files");
    (release.join("kernel"), out)
}

/// A TCP port free now, for QEMU's gdb stub.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `cmd`, killed after `timeout`: what it printed (both streams).
fn output(mut cmd: Command, timeout: Duration) -> String {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); scripts/test installs it"));
    let mut pipes = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || {
        let (mut a, mut b) = (String::new(), String::new());
        pipes.0.read_to_string(&mut a).ok();
        pipes.1.read_to_string(&mut b).ok();
        a + &b
    });
    let start = Instant::now();
    while child.try_wait().expect("waiting").is_none() {
        if start.elapsed() > timeout {
            child.kill().ok();
            let out = reader.join().unwrap_or_default();
            panic!("{program} did not finish in {timeout:?}:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap_or_default()
}

/// The kernel under QEMU, stopped at its first instruction until gdb
/// connects to `port`; killed when dropped.
struct Qemu(std::process::Child);

impl Qemu {
    /// Starts the kernel, its console going to the file `serial`.
    fn start(elf: &Path, port: u16, serial: &Path) -> Qemu {
        let child = Command::new("qemu-system-arm")
            .args([
                "-M",
                "mps2-an385",
                "-semihosting-config",
                "enable=on,target=native",
            ])
            .args(["-display", "none", "-monitor", "none", "-serial"])
            .arg(format!("file:{}", serial.display()))
            .args(["-S", "-gdb", &format!("tcp:127.0.0.1:{port}")])
            .arg("-kernel")
            .arg(elf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot run qemu-system-arm; scripts/test installs it");
        Qemu(child)
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[test]
fn breakpoints_on_module_functions_hit_under_qemu() {
    let (elf, out) = build();
    let port = free_port();
    let serial = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kernel-gdb-serial.txt");
    std::fs::remove_file(&serial).ok();
    let qemu = Qemu::start(&elf, port, &serial);
    // QEMU listens before it runs anything; give it a moment to.
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "QEMU's gdb stub never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let script = root().join("scripts/dynld-gdb.py");
    let mut gdb = Command::new("gdb-multiarch");
    gdb.args([
        "-nx",
        "-batch",
        "-ex",
        "set pagination off",
        "-ex",
        "set confirm off",
    ]);
    let cmds = [
        format!("target remote 127.0.0.1:{port}"),
        format!("source {}", script.display()),
        format!("dynld-symbols {}", out.display()),
        "set breakpoint pending on".into(),
        "break c_fib".into(),
        "continue".into(),
        "bt 3".into(),
        "dynld-modules".into(),
        // Then late.dl, loaded where cmath was once cmath is gone.
        "delete 1".into(),
        "break late_fib".into(),
        "continue".into(),
        "bt 1".into(),
        "dynld-modules".into(),
        // On to the end, where the kernel dumps its putbuf.
        "delete".into(),
        "continue".into(),
    ];
    for c in &cmds {
        gdb.args(["-ex", c]);
    }
    gdb.arg(&elf);
    let text = output(gdb, Duration::from_secs(120));
    eprintln!("--- gdb-multiarch:\n{text}---");
    assert!(text.contains("Breakpoint 1 (c_fib) pending."), "{text}");
    let frames: Vec<&str> = text.lines().filter(|l| l.starts_with('#')).collect();
    // c_fib, called from rstat's r_fib_sum, with its file and line.
    assert!(
        text.lines()
            .any(|l| l.starts_with("Breakpoint 1, c_fib (n=") && l.contains("cmath.c:")),
        "c_fib's breakpoint did not hit:\n{text}"
    );
    assert!(
        frames
            .first()
            .is_some_and(|l| l.contains(" c_fib (") && l.contains("cmath.c:")),
        "{text}"
    );
    assert!(
        frames.get(1).is_some_and(|l| l.contains(" r_fib_sum ")),
        "{text}"
    );
    assert!(
        text.contains("dynld: cmath (id 1) at 0x") && text.contains("dynld: rstat (id 2) at 0x"),
        "{text}"
    );
    let listed = |l: &str, id: u32, name: &str| {
        let w: Vec<&str> = l.split_whitespace().collect();
        w.len() >= 3 && w[0] == id.to_string() && w[1] == name && w[2].starts_with("0x")
    };
    assert!(text.lines().any(|l| listed(l, 1, "cmath")), "{text}");
    // late_fib, in late.dl (id 3), with cmath (id 1) unloaded and forgotten.
    assert!(text.contains("dynld: cmath unloaded"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("Breakpoint 2, late_fib (n=") && l.contains("late.c:")),
        "late_fib's breakpoint did not hit:\n{text}"
    );
    assert!(
        frames
            .iter()
            .any(|l| l.starts_with("#0") && l.contains(" late_fib (")),
        "{text}"
    );
    assert!(text.lines().any(|l| listed(l, 3, "late")), "{text}");
    // The kernel ran to its end and dumped the registry's messages (its
    // putbuf): every load, unload and refusal, in order.
    drop(qemu);
    let console = std::fs::read_to_string(&serial).unwrap_or_default();
    let putbuf: Vec<&str> = console
        .lines()
        .skip_while(|l| !l.starts_with("putbuf ("))
        .skip(1)
        .take_while(|l| !l.starts_with("refused: "))
        .collect();
    let loaded = |name: &str, id: u32| {
        putbuf.iter().any(|l| {
            l.starts_with(&format!("loaded {name} (id {id}) at 0x2001")) && l.ends_with(" bytes")
        })
    };
    assert!(loaded("cmath", 1) && loaded("late", 3), "{console}");
    for line in [
        "unload cmath refused: module cmath in use: 0 holds, 1 dependent (rstat)",
        "unloaded rstat (id 2)",
        "unloaded cmath (id 1)",
        "load abi2 refused: module abi2 requires ABI kernel 2.0; the host offers kernel 1.2",
        "unloaded cmath (id 4)",
        // Loaded by the first call through an autoload stub, then by ustubs.
        "unload cmath refused: module cmath in use: 1 hold, 0 dependents",
        "unloaded many (id 7)",
    ] {
        assert!(
            putbuf.contains(&line),
            "no {line:?} in the putbuf:\n{console}"
        );
    }
    assert_eq!(putbuf.len(), 19, "{console}");
    assert!(console.ends_with("done\n"), "{console}");
}

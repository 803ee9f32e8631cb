//! Running a bare-metal image under QEMU for the tests: its exit status
//! and console output, or a failure naming what did not run or finish.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs `cmd` (a QEMU system emulator with its arguments, the image
/// among them) with its console on stdout, for at most `timeout`; returns
/// its exit status and what it printed. Panics, with the output so far,
/// if it does not finish in time, or if it cannot be started.
pub fn run(mut cmd: Command, timeout: Duration) -> (Option<i32>, String) {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} ({e}); scripts/test installs it"));
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for qemu") {
            break s;
        }
        if start.elapsed() > timeout {
            child.kill().ok();
            let out = reader.join().unwrap_or_default();
            panic!("{program} did not finish in {timeout:?}; output so far:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), reader.join().unwrap_or_default())
}

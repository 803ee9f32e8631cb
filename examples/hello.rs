//! The host side of the main job: load a module with `dynloadgen` through
//! read/seek callbacks, bind it to the host's signed exports, run its
//! constructors, and call it through handles typed by Rust's own types.
//! `scripts/demo` builds the module from `examples/hello/` and runs this.

use dynld::{dynloadgen, signof, Dynsym, Error};
use std::ffi::CStr;
use std::io::{Read, Seek, SeekFrom};

extern "C" fn host_log(s: *const std::ffi::c_char) -> i32 {
    // SAFETY: the module passes a NUL-terminated string.
    let s = unsafe { CStr::from_ptr(s) };
    println!("  host_log: {}", s.to_string_lossy());
    0
}

extern "C" fn host_ticks() -> i64 {
    42
}

type LogFn = extern "C" fn(*const std::ffi::c_char) -> i32;
type TicksFn = extern "C" fn() -> i64;

/// The host's export table: sorted by name, each signature computed from
/// the Rust type; the module's C source states the same types in C terms.
static EXPORTS: [Dynsym; 2] = [
    Dynsym::new(
        "host_log",
        dynld::sig::of_fn::<LogFn>(),
        host_log as *const (),
    ),
    Dynsym::new(
        "host_ticks",
        dynld::sig::of_fn::<TicksFn>(),
        host_ticks as *const (),
    ),
];

fn read(f: &mut std::fs::File, buf: &mut [u8]) -> isize {
    f.read(buf).map_or(-1, |n| n as isize)
}

fn seek(f: &mut std::fs::File, off: i64, whence: i32) -> i64 {
    let pos = match whence {
        0 => SeekFrom::Start(off as u64),
        1 => SeekFrom::Current(off),
        _ => SeekFrom::End(off),
    };
    f.seek(pos).map_or(-1, |p| p as i64)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: hello MODULE (scripts/demo builds one)")?;
    let mut file = std::fs::File::open(&path)?;
    let mut module = dynloadgen(
        &mut file,
        read,
        seek,
        &mut |e: &Error| eprintln!("dynloadgen: {e}"),
        &EXPORTS,
        1 << 20,
    )?;
    println!(
        "loaded {path} at {:p}: text {} data {} bss {}",
        module.base(),
        module.text_size(),
        module.data_size(),
        module.bss_size()
    );
    for s in module.exports() {
        println!("  export {:<8} {:#010x} at {:p}", s.name, s.sig, s.addr);
    }
    for i in module.imports() {
        println!(
            "  import {:<10} {:#010x} bound to {:p}",
            i.name, i.sig, i.addr
        );
    }

    module.init();
    // Each handle's type is checked against the export's signature, and
    // the handle borrows the module: it cannot be called once it is gone.
    let greet = module.get::<extern "C" fn(*const std::ffi::c_char) -> i64>("greet")?;
    println!("greet(\"dynld\") = {}", greet.call(c"dynld".as_ptr()));
    let mean = module.get::<extern "C" fn(*const i64, i64) -> i64>("mean")?;
    println!(
        "mean([10, 20, 60]) = {}",
        mean.call([10i64, 20, 60].as_ptr(), 3)
    );

    // A host that gives host_log another type cannot load the module.
    let wrong = [
        Dynsym::new("host_log", signof!("fn(int) int"), host_log as *const ()),
        EXPORTS[1],
    ];
    file.seek(SeekFrom::Start(0))?;
    if let Err(e) = dynloadgen(&mut file, read, seek, &mut |_: &Error| {}, &wrong, 0) {
        println!("with host_log typed fn(int) int: {e}");
    }
    Ok(())
}

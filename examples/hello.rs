//! The main job: build a sample module, load it with `dynloadgen` through
//! read/seek callbacks, bind it to the host's signed exports, and call it.
//!
//! The module is the `calc` sample (hand-assembled x86-64 code put together
//! with dynld's writer) until `aout link` builds it from C and Rust sources.

use dynld::{dynloadgen, signof, Dynsym, Error};
use std::io::{Read, Seek, SeekFrom};

extern "C" fn host_double(x: i32) -> i32 {
    println!("  host_double({x}) called from the module");
    2 * x
}

/// The host's export table: sorted by name, each entry with its signature.
static EXPORTS: [Dynsym; 1] = [Dynsym::new(
    "host_double",
    signof!("fn(int) int"),
    host_double as *const (),
)];

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
    if dynld::Arch::HOST != Some(dynld::Arch::Amd64) {
        return Err("this sample module is x86-64 code".into());
    }
    let path = std::env::temp_dir().join("dynld-hello.dl");
    let bytes = dynld_suite::calc().build()?;
    std::fs::write(&path, &bytes)?;
    println!("built {} ({} bytes)", path.display(), bytes.len());

    let mut file = std::fs::File::open(&path)?;
    let module = dynloadgen(
        &mut file,
        read,
        seek,
        &mut |e: &Error| eprintln!("dynloadgen: {e}"),
        &EXPORTS,
        1 << 20,
    )?;
    println!(
        "loaded at {:p}: text {} data {} bss {}, {} exports, {} import",
        module.base(),
        module.text(),
        module.data(),
        module.bss(),
        module.nexport(),
        module.nimport()
    );

    // SAFETY: the calc module's exports have these types, and the
    // signatures are checked against the ones the module records.
    let (add, twice_plus_one, bump) = unsafe {
        (
            module.import::<extern "C" fn(i32, i32) -> i32>("add", signof!("fn(int, int) int"))?,
            module.import::<extern "C" fn(i32) -> i32>("twice_plus_one", signof!("fn(int) int"))?,
            module.import::<extern "C" fn(i32) -> i32>("bump", signof!("fn(int) int"))?,
        )
    };
    println!("add(2, 3) = {}", add(2, 3));
    println!("twice_plus_one(20) = {}", twice_plus_one(20));
    println!("bump(10) = {}", bump(10));

    // Asking for the wrong type is refused.
    if let Err(e) = module.lookup("add", signof!("fn(double) double")) {
        println!("lookup with the wrong signature: {e}");
    }
    std::fs::remove_file(&path)?;
    Ok(())
}

//! C fixtures for the end-to-end tests: sources compiled by gcc at test
//! time and linked by `aout link`.

use std::path::Path;

/// The gcc for the architecture the tests are built for (a cross gcc when
/// they run under qemu-user).
pub fn gcc() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-linux-gnu-gcc"
    } else if cfg!(target_arch = "riscv64") {
        "riscv64-linux-gnu-gcc"
    } else {
        "gcc"
    }
}

/// Compiles the C sources `srcs` with [`gcc`] (`-O2 -fPIC`, `include/` on
/// the include path), one object each, in a scratch directory named after
/// `name`, and links them with `aout link` (default options, or without
/// the symbols table if `strip_symbols`); returns the module.
pub fn module(name: &str, srcs: &[&str], strip_symbols: bool) -> Vec<u8> {
    module_with(name, srcs, &[], |o| o.strip_symbols = strip_symbols).bytes
}

/// [`module`] with `cflags` added to gcc's and the link's options set by
/// `set` (the inputs are the compiled objects): the whole link's result.
pub fn module_with(
    name: &str,
    srcs: &[&str],
    cflags: &[&str],
    set: impl FnOnce(&mut aout_tools::link::Options),
) -> aout_tools::link::Linked {
    let dir = std::env::temp_dir().join(format!("dynld-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let include = Path::new(env!("CARGO_MANIFEST_DIR")).join("include");
    let mut objs = Vec::new();
    for (i, src) in srcs.iter().enumerate() {
        let (c, o) = (dir.join(format!("{i}.c")), dir.join(format!("{i}.o")));
        std::fs::write(&c, src).unwrap();
        let st = std::process::Command::new(gcc())
            .args(["-O2", "-fPIC"])
            .args(cflags)
            .args(["-c", "-I"])
            .arg(&include)
            .arg(&c)
            .arg("-o")
            .arg(&o)
            .status()
            .expect("gcc");
        assert!(st.success(), "gcc failed on {name}");
        objs.push(o);
    }
    let mut opts = aout_tools::link::Options::default();
    set(&mut opts);
    opts.inputs = objs;
    let linked = aout_tools::link::link(&opts).unwrap_or_else(|e| panic!("aout link {name}: {e}"));
    std::fs::remove_dir_all(&dir).ok();
    linked
}

//! A host for registry tests over C modules: it exports `note(int)`, which
//! records what modules pass it (constructors, destructors, setup), so that
//! a test can check what ran and in which order.

use dynld::{signof, Dynsym, ExportTable};
use std::sync::Mutex;

static NOTES: Mutex<Vec<i32>> = Mutex::new(Vec::new());

extern "C" fn note(v: i32) {
    NOTES.lock().unwrap_or_else(|e| e.into_inner()).push(v);
}

/// What modules passed to `note` since the last call, in order.
pub fn notes() -> Vec<i32> {
    std::mem::take(&mut *NOTES.lock().unwrap_or_else(|e| e.into_inner()))
}

static HOST_SYMS: [Dynsym<'static>; 1] = [Dynsym::new(
    "note",
    signof!("fn(int) void"),
    note as *const (),
)];

/// The host's table: `note`.
pub fn host() -> ExportTable<'static> {
    ExportTable::new_const(&HOST_SYMS)
}

/// What a C module's source starts with to call `note`.
pub const HEADER: &str =
    "#include \"dynld.h\"\nextern void note(int);\nDYNLD_IMPORT(note, \"fn(int) void\");\n";

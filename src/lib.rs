//! Sample modules, a guarded memory provider and the fuzz targets' checks,
//! for dynld's tests, benchmarks and fuzzing.
//!
//! The samples are x86-64 machine code assembled by hand (each
//! instruction's bytes are listed beside its assembly) and put together with
//! [`ModuleBuilder`], so the loader's tests do not depend on the linker;
//! `a.out-tools/tests` covers modules linked from compiler output.

pub mod cc;
pub mod counting;
pub mod fuzzing;
pub mod guard;
pub mod notes;
pub mod patch;
pub mod qemu;

use dynld::arch::x86_64::{BASE64, IMPORT64, IMPORT_PC32};
use dynld::format::{Dynhdr, TableEntry};
use dynld::{signof, Arch, Limits, ModuleBuilder, ModuleView};

/// Image offsets of the `calc` sample's symbols.
pub mod calc {
    /// `int add(int a, int b)`: `a + b`.
    pub const ADD: u32 = 0x00;
    /// `int twice_plus_one(int x)`: `host_double(x) + 1`, calling the host
    /// through a GOT slot bound to the import.
    pub const TWICE_PLUS_ONE: u32 = 0x10;
    /// `int *counter_ptr(void)`: the address of `counter`, read from a data
    /// word relocated by the load base.
    pub const COUNTER_PTR: u32 = 0x30;
    /// `int bump(int n)`: `counter += n`, returning the new value
    /// (PC-relative access to data, resolved at link time).
    pub const BUMP: u32 = 0x40;
    /// `int call_op1(int n)`: calls `ops[1](n)` through the function table.
    pub const CALL_OP1: u32 = 0x50;
    /// Bytes of text.
    pub const TEXT_LEN: usize = super::CALC_TEXT.len();
    /// Start of data.
    pub const DATA: u32 = 0x1000;
    /// `int counter = 5`.
    pub const COUNTER: u32 = DATA;
    /// GOT slot for the import `host_double`.
    pub const GOT: u32 = DATA + 0x08;
    /// `int *counter_ref = &counter`.
    pub const COUNTER_REF: u32 = DATA + 0x10;
    /// `int (*ops[2])(int, int) = { add, bump }`.
    pub const OPS: u32 = DATA + 0x18;
    /// `uchar scratch[16]` in bss.
    pub const SCRATCH: u32 = DATA + 0x28;
}

/// x86-64 text of the `calc` sample.
#[rustfmt::skip]
pub const CALC_TEXT: [u8; 0x60] = [
    // 0x00 add:
    0x8d, 0x04, 0x37,                   // lea eax, [rdi+rsi]
    0xc3,                               // ret
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
    // 0x10 twice_plus_one:
    0x48, 0x83, 0xec, 0x08,             // sub rsp, 8
    0xff, 0x15, 0xee, 0x0f, 0x00, 0x00, // call [rip + GOT]      (0x1008 - 0x1a)
    0x48, 0x83, 0xc4, 0x08,             // add rsp, 8
    0x83, 0xc0, 0x01,                   // add eax, 1
    0xc3,                               // ret
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
    // 0x30 counter_ptr:
    0x48, 0x8b, 0x05, 0xd9, 0x0f, 0x00, 0x00, // mov rax, [rip + COUNTER_REF] (0x1010 - 0x37)
    0xc3,                                     // ret
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
    // 0x40 bump:
    0x8b, 0x05, 0xba, 0x0f, 0x00, 0x00, // mov eax, [rip + counter] (0x1000 - 0x46)
    0x01, 0xf8,                         // add eax, edi
    0x89, 0x05, 0xb2, 0x0f, 0x00, 0x00, // mov [rip + counter], eax (0x1000 - 0x4e)
    0xc3,                               // ret
    0xcc,
    // 0x50 call_op1:
    0x48, 0x8b, 0x05, 0xc9, 0x0f, 0x00, 0x00, // mov rax, [rip + ops+8] (0x1020 - 0x57)
    0xff, 0xe0,                               // jmp rax
    0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
];

/// The `calc` sample: five functions, data with a counter, a pointer to it,
/// a function-pointer table, bss, and one import (`host_double`, `fn(int) int`)
/// called through a GOT slot.
pub fn calc() -> ModuleBuilder {
    let mut data = [0u8; 0x28];
    data[0..4].copy_from_slice(&5i32.to_le_bytes()); // counter = 5
    data[0x10..0x18].copy_from_slice(&u64::from(calc::COUNTER).to_le_bytes());
    data[0x18..0x20].copy_from_slice(&u64::from(calc::ADD).to_le_bytes());
    data[0x20..0x28].copy_from_slice(&u64::from(calc::BUMP).to_le_bytes());
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&CALC_TEXT)
        .data(&data)
        .bss(16)
        .data_offset(calc::DATA);
    let fn_ii_i = signof!("fn(int, int) int");
    let fn_i_i = signof!("fn(int) int");
    b.export("add", fn_ii_i, calc::ADD)
        .export("twice_plus_one", fn_i_i, calc::TWICE_PLUS_ONE)
        .export("counter_ptr", signof!("fn(void) *int"), calc::COUNTER_PTR)
        .export("bump", fn_i_i, calc::BUMP)
        .export("call_op1", fn_i_i, calc::CALL_OP1)
        .export("counter", signof!("int"), calc::COUNTER)
        .export("ops", signof!("[2]*fn(int, int) int"), calc::OPS)
        .export("scratch", signof!("[16]uchar"), calc::SCRATCH);
    let host = b.import("host_double", fn_i_i);
    b.reloc(calc::GOT, IMPORT64, Some(host))
        .reloc(calc::COUNTER_REF, BASE64, None)
        .reloc(calc::OPS, BASE64, None)
        .reloc(calc::OPS + 8, BASE64, None);
    b
}

/// A module whose text calls the import `far` with a direct `call rel32`
/// (mode `IMPORT_PC32`): it loads only if `far` lies within 2 GiB of it.
pub fn far_call() -> ModuleBuilder {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    // call far ; ret   (the field holds the addend -4)
    b.text(&[0xe8, 0xfc, 0xff, 0xff, 0xff, 0xc3]);
    b.export("go", signof!("fn(void) int"), 0);
    let far = b.import("far", 0);
    b.reloc(1, IMPORT_PC32, Some(far));
    b
}

/// A field of [`long_stream`]: its data offset, the import it is relocated
/// against (the base if `None`) and the addend it holds.
pub type StreamField = (usize, Option<u32>, u64);

/// A module whose relocation stream is many times the loader's read buffer:
/// `data_len` bytes of data holding 64-bit fields, each relocated against
/// the base or one of `imports`, at gaps that make records of every size
/// (1-, 2- and 4-byte offset deltas; 1- and 2-byte import indices, given
/// more than 255 imports). Returns the builder and its fields.
pub fn long_stream(imports: &[&str], data_len: usize) -> (ModuleBuilder, Vec<StreamField>) {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    for n in imports {
        b.import(n, 0);
    }
    b.text(&[0xc3; 16]);
    let dataoff = b.data_start() as usize;
    let mut data = vec![0u8; data_len];
    let mut fields = Vec::new();
    let (mut off, mut seed) = (0usize, 0x2545_f491_4f6c_dd1du64);
    loop {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        off += match seed % 1024 {
            0 => 70_000,    // a 4-byte delta
            1..=100 => 308, // a 2-byte delta
            _ => 8,         // a 1-byte delta
        };
        if off + 8 > data.len() {
            break;
        }
        let import = ((seed >> 8) % 4 == 0 && !imports.is_empty())
            .then(|| ((seed >> 16) % imports.len() as u64) as u32);
        let addend = seed >> 40;
        data[off..off + 8].copy_from_slice(&addend.to_le_bytes());
        let mode = if import.is_some() { IMPORT64 } else { BASE64 };
        b.reloc((dataoff + off) as u32, mode, import);
        fields.push((dataoff + off, import, addend));
    }
    b.data(&data);
    (b, fields)
}

/// A module with 16 bytes of text, 16 of data at 0x1000, 16 of bss, one
/// import (`host_double`) and one relocation, written unchecked: for
/// testing how the loader treats that relocation.
pub fn one_reloc(offset: u32, mode: u8, import: Option<u32>) -> Vec<u8> {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3; 16])
        .data(&[0; 16])
        .bss(16)
        .data_offset(0x1000)
        .keep_order();
    b.import("host_double", 0);
    b.reloc(offset, mode, import);
    b.build().expect("one_reloc")
}

/// The module `bytes` with one more table, of `kind` with `flags`,
/// holding `payload`, appended to the file and listed last in the
/// directory. The module must have room for the entry in its header (from
/// [`ModuleBuilder::text_file_align`]).
pub fn add_table(bytes: &[u8], kind: u16, flags: u16, payload: &[u8]) -> Vec<u8> {
    let v = ModuleView::parse(bytes, &Limits::DEFAULT).expect("add_table: a valid module");
    let exec = v.arch().exec_size();
    let n = v.header().ntable as usize;
    let at = exec + Dynhdr::SIZE + n * TableEntry::SIZE;
    assert!(
        at + TableEntry::SIZE <= v.text_offset() as usize,
        "add_table: no room for another directory entry"
    );
    let mut out = bytes.to_vec();
    TableEntry {
        kind,
        flags,
        count: 0,
        offset: out.len() as u32,
        size: payload.len() as u32,
    }
    .write(&mut out[at..])
    .expect("entry");
    out[exec + 20..exec + 24].copy_from_slice(&(n as u32 + 1).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A module whose header claims 1 byte of text, data at 4 KiB and `data`
/// bytes of it, the file ending after the text: a loader must refuse it
/// without committing memory for data it never reads.
pub fn claims_data(data: u32) -> Vec<u8> {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3]).data_offset(4096);
    let mut m = b.build().expect("claims_data");
    m[8..12].copy_from_slice(&data.to_be_bytes());
    m
}

/// A module with 1 byte of text (exported as `f`) and its (empty) data at
/// image offset `dataoff`: an image of `dataoff` bytes, nearly all
/// padding, that loads without committing memory for the padding.
pub fn claims_dataoff(dataoff: u32) -> Vec<u8> {
    let mut b = ModuleBuilder::new(Arch::Amd64);
    b.text(&[0xc3]).data_offset(dataoff).export("f", 0, 0);
    b.build().expect("claims_dataoff")
}

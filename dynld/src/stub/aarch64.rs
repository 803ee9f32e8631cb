//! AArch64 (AAPCS64) trampolines. An entry's stub puts the entry in `x16`
//! (IP0, free at a call boundary) and branches here.
//!
//! Both save `x0`-`x7`, `x8` (the indirect result register) and
//! `q0`-`q7`. `dynld_stub_tail` asks [`super::dynld_stub_resolve`] where to
//! go, restores them and branches there with the caller's `lr`, leaving
//! its stack arguments as they were. `dynld_stub_wrap` asks
//! [`super::dynld_stub_enter`] for the function and a hold, copies the
//! entry's `argnword` stack words below its own frame, calls the function,
//! keeps `x0`, `x1` and `q0`-`q3` (the result registers, homogeneous
//! aggregates included) while [`super::dynld_stub_leave`] gives the hold
//! back, and returns.

// Frame (224 bytes): fp, lr; x0-x7 at 16; x8 at 80; q0-q7 at 96.
core::arch::global_asm!(
    ".pushsection .text.dynld_stub_tail,\"ax\",%progbits",
    ".globl dynld_stub_tail",
    ".type dynld_stub_tail,%function",
    ".p2align 2",
    "dynld_stub_tail:",
    "stp x29, x30, [sp, #-224]!",
    "mov x29, sp",
    "stp x0, x1, [sp, #16]",
    "stp x2, x3, [sp, #32]",
    "stp x4, x5, [sp, #48]",
    "stp x6, x7, [sp, #64]",
    "str x8, [sp, #80]",
    "stp q0, q1, [sp, #96]",
    "stp q2, q3, [sp, #128]",
    "stp q4, q5, [sp, #160]",
    "stp q6, q7, [sp, #192]",
    "mov x0, x16",
    "bl {resolve}",
    "mov x16, x0",
    "ldp x0, x1, [sp, #16]",
    "ldp x2, x3, [sp, #32]",
    "ldp x4, x5, [sp, #48]",
    "ldp x6, x7, [sp, #64]",
    "ldr x8, [sp, #80]",
    "ldp q0, q1, [sp, #96]",
    "ldp q2, q3, [sp, #128]",
    "ldp q4, q5, [sp, #160]",
    "ldp q6, q7, [sp, #192]",
    "ldp x29, x30, [sp], #224",
    "br x16",
    ".size dynld_stub_tail, . - dynld_stub_tail",
    ".popsection",
    resolve = sym super::dynld_stub_resolve,
);

// Frame (256 bytes): as above, then x19, x20 at 224 and the hold at 240.
// The caller's stack arguments start at fp + 256.
core::arch::global_asm!(
    ".pushsection .text.dynld_stub_wrap,\"ax\",%progbits",
    ".globl dynld_stub_wrap",
    ".type dynld_stub_wrap,%function",
    ".p2align 2",
    "dynld_stub_wrap:",
    "stp x29, x30, [sp, #-256]!",
    "mov x29, sp",
    "stp x0, x1, [sp, #16]",
    "stp x2, x3, [sp, #32]",
    "stp x4, x5, [sp, #48]",
    "stp x6, x7, [sp, #64]",
    "str x8, [sp, #80]",
    "stp q0, q1, [sp, #96]",
    "stp q2, q3, [sp, #128]",
    "stp q4, q5, [sp, #160]",
    "stp q6, q7, [sp, #192]",
    "stp x19, x20, [sp, #224]",
    "mov x19, x16",
    "mov x0, x16",
    "add x1, x29, #240",
    "bl {enter}",
    "mov x10, x0",
    "ldrh w20, [x19, #{argn}]",
    // Room for the stack words, 16-byte aligned, then the copy.
    "add x11, x20, #1",
    "and x11, x11, #-2",
    "lsl x11, x11, #3",
    "sub sp, sp, x11",
    "add x13, x29, #256",
    "mov x12, #0",
    "2:",
    "cmp x12, x20",
    "b.hs 3f",
    "ldr x14, [x13, x12, lsl #3]",
    "str x14, [sp, x12, lsl #3]",
    "add x12, x12, #1",
    "b 2b",
    "3:",
    "ldp x0, x1, [x29, #16]",
    "ldp x2, x3, [x29, #32]",
    "ldp x4, x5, [x29, #48]",
    "ldp x6, x7, [x29, #64]",
    "ldr x8, [x29, #80]",
    "ldp q0, q1, [x29, #96]",
    "ldp q2, q3, [x29, #128]",
    "ldp q4, q5, [x29, #160]",
    "ldp q6, q7, [x29, #192]",
    "blr x10",
    "stp x0, x1, [x29, #16]",
    "stp q0, q1, [x29, #96]",
    "stp q2, q3, [x29, #128]",
    "ldr x0, [x29, #240]",
    "bl {leave}",
    "ldp x0, x1, [x29, #16]",
    "ldp q0, q1, [x29, #96]",
    "ldp q2, q3, [x29, #128]",
    "mov sp, x29",
    "ldp x19, x20, [sp, #224]",
    "ldp x29, x30, [sp], #256",
    "ret",
    ".size dynld_stub_wrap, . - dynld_stub_wrap",
    ".popsection",
    enter = sym super::dynld_stub_enter,
    leave = sym super::dynld_stub_leave,
    argn = const super::ARGN_OFFSET,
);

unsafe extern "C" {
    /// The `stub` trampoline (entry in `x16`).
    pub fn dynld_stub_tail();
    /// The `ustub`/`wstub` trampoline (entry in `x16`).
    pub fn dynld_stub_wrap();
}

/// An entry's stub: the entry's address in `x16`, then the trampoline.
#[doc(hidden)]
#[macro_export]
macro_rules! __stub_code {
    ($tramp:literal, $m:ident, $e:ident) => {
        ::core::arch::global_asm!(
            concat!(
                ".pushsection .text.dynld_stub_", stringify!($m), "_", stringify!($e),
                ",\"ax\",%progbits\n",
                ".globl dynld_stub_", stringify!($m), "_", stringify!($e), "\n",
                ".type dynld_stub_", stringify!($m), "_", stringify!($e), ",%function\n",
                ".p2align 2\n",
                "dynld_stub_", stringify!($m), "_", stringify!($e), ":\n",
                "adrp x16, {entry}\n",
                "add x16, x16, :lo12:{entry}\n",
                "b ", $tramp, "\n",
                ".popsection"
            ),
            entry = sym $e,
        );
    };
}

//! Thumb-2 (AAPCS, soft-float as on `thumbv7m`/`thumbv7em-none-eabi`)
//! trampolines. An entry's stub puts the entry in `r12` (ip, free at a call
//! boundary) and branches here.
//!
//! `dynld_stub_tail` saves `r0`-`r3` and `lr`, asks
//! [`super::dynld_stub_resolve`] where to go, restores them and branches
//! there, leaving the caller's stack arguments as they were.
//! `dynld_stub_wrap` asks [`super::dynld_stub_enter`] for the function and
//! a hold, copies the entry's `argnword` stack words below its own frame,
//! calls the function, keeps `r0` and `r1` while
//! [`super::dynld_stub_leave`] gives the hold back, and returns.

// Tail frame: r0-r3, r4 (kept for alignment), lr: 24 bytes.
// Wrap frame: r4-r7, lr (20 bytes) above 28 bytes: r0-r3 at 0, the hold at
// 16; r7 is the frame base and the caller's stack arguments are at r7 + 48.
core::arch::global_asm!(
    ".syntax unified",
    ".thumb",
    ".pushsection .text.dynld_stub_tail,\"ax\",%progbits",
    ".globl dynld_stub_tail",
    ".type dynld_stub_tail,%function",
    ".p2align 2",
    ".thumb_func",
    "dynld_stub_tail:",
    "push {{r0-r4, lr}}",
    "mov r0, r12",
    "bl {resolve}",
    "mov r12, r0",
    "pop {{r0-r4, lr}}",
    "bx r12",
    ".size dynld_stub_tail, . - dynld_stub_tail",
    ".popsection",
    ".pushsection .text.dynld_stub_wrap,\"ax\",%progbits",
    ".globl dynld_stub_wrap",
    ".type dynld_stub_wrap,%function",
    ".p2align 2",
    ".thumb_func",
    "dynld_stub_wrap:",
    "push {{r4-r7, lr}}",
    "sub sp, sp, #28",
    "str r0, [sp]",
    "str r1, [sp, #4]",
    "str r2, [sp, #8]",
    "str r3, [sp, #12]",
    "mov r4, r12",
    "mov r7, sp",
    "mov r0, r12",
    "add r1, sp, #16",
    "bl {enter}",
    "mov r5, r0",
    "ldrh r6, [r4, #{argn}]",
    // Room for the stack words, 8-byte aligned, then the copy.
    "adds r0, r6, #1",
    "bic r0, r0, #1",
    "lsls r0, r0, #2",
    "sub sp, sp, r0",
    "add r2, r7, #48",
    "movs r1, #0",
    "2:",
    "cmp r1, r6",
    "bhs 3f",
    "ldr r3, [r2, r1, lsl #2]",
    "str r3, [sp, r1, lsl #2]",
    "adds r1, r1, #1",
    "b 2b",
    "3:",
    "ldr r0, [r7]",
    "ldr r1, [r7, #4]",
    "ldr r2, [r7, #8]",
    "ldr r3, [r7, #12]",
    "blx r5",
    "str r0, [r7]",
    "str r1, [r7, #4]",
    "ldr r0, [r7, #16]",
    "bl {leave}",
    "ldr r0, [r7]",
    "ldr r1, [r7, #4]",
    "mov sp, r7",
    "add sp, sp, #28",
    "pop {{r4-r7, pc}}",
    ".size dynld_stub_wrap, . - dynld_stub_wrap",
    ".popsection",
    resolve = sym super::dynld_stub_resolve,
    enter = sym super::dynld_stub_enter,
    leave = sym super::dynld_stub_leave,
    argn = const super::ARGN_OFFSET,
);

unsafe extern "C" {
    /// The `stub` trampoline (entry in `r12`).
    pub fn dynld_stub_tail();
    /// The `ustub`/`wstub` trampoline (entry in `r12`).
    pub fn dynld_stub_wrap();
}

/// An entry's stub: the entry's address in `r12`, then the trampoline.
#[doc(hidden)]
#[macro_export]
macro_rules! __stub_code {
    ($tramp:literal, $m:ident, $e:ident) => {
        ::core::arch::global_asm!(
            concat!(
                ".syntax unified\n.thumb\n",
                ".pushsection .text.dynld_stub_", stringify!($m), "_", stringify!($e),
                ",\"ax\",%progbits\n",
                ".globl dynld_stub_", stringify!($m), "_", stringify!($e), "\n",
                ".type dynld_stub_", stringify!($m), "_", stringify!($e), ",%function\n",
                ".p2align 2\n",
                ".thumb_func\n",
                "dynld_stub_", stringify!($m), "_", stringify!($e), ":\n",
                "movw r12, :lower16:{entry}\n",
                "movt r12, :upper16:{entry}\n",
                "b.w ", $tramp, "\n",
                ".popsection"
            ),
            entry = sym $e,
        );
    };
}

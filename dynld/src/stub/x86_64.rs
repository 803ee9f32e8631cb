//! x86-64 (System V) trampolines. An entry's stub puts the entry in `r11`
//! (a scratch register no argument travels in) and jumps here.
//!
//! Both save the six integer argument registers, `rax` (the vector
//! register count of a variadic call) and `xmm0`-`xmm7`. `dynld_stub_tail`
//! asks [`super::dynld_stub_resolve`] where to go, restores them and jumps
//! there, leaving the caller's frame and stack arguments as they were.
//! `dynld_stub_wrap` asks [`super::dynld_stub_enter`] for the function and
//! a hold, copies the entry's `argnword` stack words below its own frame,
//! calls the function, keeps `rax`, `rdx`, `xmm0` and `xmm1` (every
//! register a result comes back in but `st0`) while
//! [`super::dynld_stub_leave`] gives the hold back, and returns.

core::arch::global_asm!(
    ".pushsection .text.dynld_stub_tail,\"ax\",@progbits",
    ".globl dynld_stub_tail",
    ".type dynld_stub_tail,@function",
    ".p2align 4",
    "dynld_stub_tail:",
    "push rbp",
    "mov rbp, rsp",
    "sub rsp, 192",
    "mov [rsp], rdi",
    "mov [rsp + 8], rsi",
    "mov [rsp + 16], rdx",
    "mov [rsp + 24], rcx",
    "mov [rsp + 32], r8",
    "mov [rsp + 40], r9",
    "mov [rsp + 48], rax",
    "movaps [rsp + 64], xmm0",
    "movaps [rsp + 80], xmm1",
    "movaps [rsp + 96], xmm2",
    "movaps [rsp + 112], xmm3",
    "movaps [rsp + 128], xmm4",
    "movaps [rsp + 144], xmm5",
    "movaps [rsp + 160], xmm6",
    "movaps [rsp + 176], xmm7",
    "mov rdi, r11",
    "call {resolve}",
    "mov r11, rax",
    "mov rdi, [rsp]",
    "mov rsi, [rsp + 8]",
    "mov rdx, [rsp + 16]",
    "mov rcx, [rsp + 24]",
    "mov r8, [rsp + 32]",
    "mov r9, [rsp + 40]",
    "mov rax, [rsp + 48]",
    "movaps xmm0, [rsp + 64]",
    "movaps xmm1, [rsp + 80]",
    "movaps xmm2, [rsp + 96]",
    "movaps xmm3, [rsp + 112]",
    "movaps xmm4, [rsp + 128]",
    "movaps xmm5, [rsp + 144]",
    "movaps xmm6, [rsp + 160]",
    "movaps xmm7, [rsp + 176]",
    "leave",
    "jmp r11",
    ".size dynld_stub_tail, . - dynld_stub_tail",
    ".popsection",
    resolve = sym super::dynld_stub_resolve,
);

// The frame: rbp-8 rbx, rbp-16 r12, then 208 bytes at rbp-224: the
// argument registers as in dynld_stub_tail (0..192) and the hold (192).
core::arch::global_asm!(
    ".pushsection .text.dynld_stub_wrap,\"ax\",@progbits",
    ".globl dynld_stub_wrap",
    ".type dynld_stub_wrap,@function",
    ".p2align 4",
    "dynld_stub_wrap:",
    "push rbp",
    "mov rbp, rsp",
    "push rbx",
    "push r12",
    "sub rsp, 208",
    "mov [rsp], rdi",
    "mov [rsp + 8], rsi",
    "mov [rsp + 16], rdx",
    "mov [rsp + 24], rcx",
    "mov [rsp + 32], r8",
    "mov [rsp + 40], r9",
    "mov [rsp + 48], rax",
    "movaps [rsp + 64], xmm0",
    "movaps [rsp + 80], xmm1",
    "movaps [rsp + 96], xmm2",
    "movaps [rsp + 112], xmm3",
    "movaps [rsp + 128], xmm4",
    "movaps [rsp + 144], xmm5",
    "movaps [rsp + 160], xmm6",
    "movaps [rsp + 176], xmm7",
    "mov rbx, r11",
    "mov rdi, r11",
    "lea rsi, [rsp + 192]",
    "call {enter}",
    "mov r10, rax",
    "movzx r12d, word ptr [rbx + {argn}]",
    // Room for the stack words, 16-byte aligned, then the copy.
    "lea rax, [r12 * 8 + 15]",
    "and rax, -16",
    "sub rsp, rax",
    "xor ecx, ecx",
    "2:",
    "cmp rcx, r12",
    "jae 3f",
    "mov rax, [rbp + rcx * 8 + 16]",
    "mov [rsp + rcx * 8], rax",
    "inc rcx",
    "jmp 2b",
    "3:",
    "mov rdi, [rbp - 224]",
    "mov rsi, [rbp - 216]",
    "mov rdx, [rbp - 208]",
    "mov rcx, [rbp - 200]",
    "mov r8, [rbp - 192]",
    "mov r9, [rbp - 184]",
    "mov rax, [rbp - 176]",
    "movaps xmm0, [rbp - 160]",
    "movaps xmm1, [rbp - 144]",
    "movaps xmm2, [rbp - 128]",
    "movaps xmm3, [rbp - 112]",
    "movaps xmm4, [rbp - 96]",
    "movaps xmm5, [rbp - 80]",
    "movaps xmm6, [rbp - 64]",
    "movaps xmm7, [rbp - 48]",
    "call r10",
    "mov [rbp - 224], rax",
    "mov [rbp - 216], rdx",
    "movaps [rbp - 160], xmm0",
    "movaps [rbp - 144], xmm1",
    "mov rdi, [rbp - 32]",
    "call {leave}",
    "mov rax, [rbp - 224]",
    "mov rdx, [rbp - 216]",
    "movaps xmm0, [rbp - 160]",
    "movaps xmm1, [rbp - 144]",
    "lea rsp, [rbp - 16]",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".size dynld_stub_wrap, . - dynld_stub_wrap",
    ".popsection",
    enter = sym super::dynld_stub_enter,
    leave = sym super::dynld_stub_leave,
    argn = const super::ARGN_OFFSET,
);

unsafe extern "C" {
    /// The `stub` trampoline (entry in `r11`).
    pub fn dynld_stub_tail();
    /// The `ustub`/`wstub` trampoline (entry in `r11`).
    pub fn dynld_stub_wrap();
}

/// An entry's stub: the entry's address in `r11`, then the trampoline.
#[doc(hidden)]
#[macro_export]
macro_rules! __stub_code {
    ($tramp:literal, $m:ident, $e:ident) => {
        ::core::arch::global_asm!(
            concat!(
                ".pushsection .text.dynld_stub_", stringify!($m), "_", stringify!($e),
                ",\"ax\",@progbits\n",
                ".globl dynld_stub_", stringify!($m), "_", stringify!($e), "\n",
                ".type dynld_stub_", stringify!($m), "_", stringify!($e), ",@function\n",
                ".p2align 4\n",
                "dynld_stub_", stringify!($m), "_", stringify!($e), ":\n",
                "lea r11, [rip + {entry}]\n",
                "jmp ", $tramp, "\n",
                ".popsection"
            ),
            entry = sym $e,
        );
    };
}

//! QEMU `virt` with RV32 (`-bios none`): the hart starts in machine mode
//! at 0x80000000; a 16550 UART, and the SiFive test device for the exit
//! status.

use core::arch::{asm, global_asm};
use core::ptr::addr_of_mut;

/// The board, as the kernel names it.
pub const NAME: &str = "virt (RV32IMAC)";

const UART_THR: *mut u8 = 0x1000_0000 as *mut u8;
const UART_LSR: *const u8 = 0x1000_0005 as *const u8;
const LSR_THR_EMPTY: u8 = 1 << 5;
const TEST_DEVICE: *mut u32 = 0x10_0000 as *mut u32;

// Start-up: a stack, a trap vector, then Rust.
global_asm!(
    ".section .text.start, \"ax\"",
    ".globl _start",
    "_start:",
    "    la sp, _stack_top",
    "    la t0, trap_entry",
    "    csrw mtvec, t0",
    "    call rv_start",
    "1:  j 1b",
    ".p2align 2",
    "trap_entry:",
    "    j trap",
);

unsafe extern "C" {
    static mut _sbss: u32;
    static mut _ebss: u32;
}

#[unsafe(no_mangle)]
unsafe extern "C" fn rv_start() -> ! {
    // SAFETY: this runs first and alone; the linker script defines the
    // word-aligned bounds of .bss, and no Rust static is used before.
    unsafe { super::zero_words(addr_of_mut!(_sbss), addr_of_mut!(_ebss)) };
    super::kernel_main()
}

#[unsafe(no_mangle)]
extern "C" fn trap() -> ! {
    let (cause, pc): (usize, usize);
    // SAFETY: reads of machine-mode CSRs.
    unsafe { asm!("csrr {0}, mcause", "csrr {1}, mepc", out(reg) cause, out(reg) pc) };
    let _ = core::fmt::Write::write_fmt(
        &mut super::Console,
        format_args!("kernel: trap, mcause {cause:#x} at {pc:#x}\n"),
    );
    exit(false)
}

/// Nothing to set up: QEMU's UART is ready at reset.
pub fn init() {}

/// Writes bytes to the UART.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: the 16550's line status and transmit registers.
        unsafe {
            while UART_LSR.read_volatile() & LSR_THR_EMPTY == 0 {}
            UART_THR.write_volatile(b);
        }
    }
}

/// Ends the run through the test device: QEMU exits with status 0, or 1.
pub fn exit(ok: bool) -> ! {
    let code = if ok { 0x5555 } else { (1 << 16) | 0x3333 };
    // SAFETY: the SiFive test device's register; the write ends the run.
    unsafe { TEST_DEVICE.write_volatile(code) };
    loop {
        // SAFETY: waits for an interrupt; only reached if the exit failed.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Makes freshly written code visible to instruction fetch (`fence.i`,
/// spelled as its encoding: the target's base ISA string lacks Zifencei).
pub fn flush_icache(_start: *const u8, _len: usize) {
    // SAFETY: a fence only.
    unsafe { asm!(".4byte 0x0000100f", options(nostack, preserves_flags)) };
}

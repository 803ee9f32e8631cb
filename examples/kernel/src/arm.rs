//! QEMU `mps2-an385`: a Cortex-M3, its CMSDK UART0, and semihosting for the
//! exit status.

use core::arch::{asm, global_asm};
use core::ptr::{addr_of, addr_of_mut};

/// The board, as the kernel names it.
pub const NAME: &str = "mps2-an385 (Cortex-M3, Thumb-2)";

const UART0: usize = 0x4000_4000;
const UART_DATA: *mut u32 = UART0 as *mut u32;
const UART_STATE: *const u32 = (UART0 + 4) as *const u32;
const UART_CTRL: *mut u32 = (UART0 + 8) as *mut u32;
const STATE_TX_FULL: u32 = 1;
const CTRL_TX_ENABLE: u32 = 1;

// The vector table: the initial stack pointer, then the handlers. Every
// fault ends the run with a message rather than hanging it.
global_asm!(
    ".section .vectors, \"a\"",
    ".p2align 2",
    ".word _stack_top",
    ".word reset",
    ".word fault", // NMI
    ".word fault", // HardFault
    ".word fault", // MemManage
    ".word fault", // BusFault
    ".word fault", // UsageFault
);

unsafe extern "C" {
    static mut _sbss: u32;
    static mut _ebss: u32;
    static mut _sdata: u32;
    static mut _edata: u32;
    static _sidata: u32;
}

/// The reset handler: zero the bss, copy the data from flash, start the kernel.
#[unsafe(no_mangle)]
unsafe extern "C" fn reset() -> ! {
    // SAFETY: this runs first and alone. The linker script defines the
    // symbols as word-aligned bounds of .bss, of .data in RAM and of its
    // image in flash, and no Rust static is used before they are set up.
    unsafe {
        super::zero_words(addr_of_mut!(_sbss), addr_of_mut!(_ebss));
        let (mut d, mut s) = (addr_of_mut!(_sdata), addr_of!(_sidata));
        while d < addr_of_mut!(_edata) {
            d.write_volatile(s.read());
            d = d.add(1);
            s = s.add(1);
        }
    }
    super::kernel_main()
}

#[unsafe(no_mangle)]
extern "C" fn fault() -> ! {
    write(b"kernel: fault\n");
    exit(false)
}

/// Enables the UART's transmitter.
pub fn init() {
    // SAFETY: UART0's control register, a device register of this board.
    unsafe { UART_CTRL.write_volatile(CTRL_TX_ENABLE) };
}

/// Writes bytes to UART0.
pub fn write(bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: UART0's state and data registers.
        unsafe {
            while UART_STATE.read_volatile() & STATE_TX_FULL != 0 {}
            UART_DATA.write_volatile(u32::from(b));
        }
    }
}

/// Ends the run through semihosting `SYS_EXIT`: QEMU exits with status 0
/// for "application exit", 1 for anything else.
pub fn exit(ok: bool) -> ! {
    const SYS_EXIT: u32 = 0x18;
    let reason: u32 = if ok { 0x2_0026 } else { 0x2_0023 };
    // SAFETY: the semihosting call takes its operation in r0 and, for
    // SYS_EXIT on 32-bit Arm, the reason code in r1; it does not return
    // under QEMU with semihosting enabled.
    unsafe { asm!("bkpt #0xab", in("r0") SYS_EXIT, in("r1") reason, options(nostack)) };
    loop {
        // SAFETY: waits for an interrupt; only reached if the exit failed.
        unsafe { asm!("wfi", options(nomem, nostack)) };
    }
}

/// Makes freshly written code visible to instruction fetch. The Cortex-M3
/// has no caches; the barriers order the writes before the first call.
pub fn flush_icache(_start: *const u8, _len: usize) {
    // SAFETY: barriers only.
    unsafe { asm!("dsb", "isb", options(nostack, preserves_flags)) };
}

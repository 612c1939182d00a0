//! A program the host must refuse: it grows its heap with PolkaVM's `sbrk` instruction (as
//! allocators written for PolkaVM's other hosts do), which would escape the memory limit.
#![no_std]
#![no_main]

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    // SAFETY: `unimp` traps.
    unsafe { core::arch::asm!("unimp", options(noreturn)) }
}

#[polkavm_derive::polkavm_export]
extern "C" fn main() -> u32 {
    let top: usize;
    // SAFETY: PolkaVM's `sbrk` (custom-0, funct3 1): grows the heap by 1 MiB, returns its end.
    unsafe {
        core::arch::asm!(
            ".insn r 0xb, 1, 0, {dst}, {size}, zero",
            size = in(reg) 1usize << 20,
            dst = lateout(reg) top,
        );
    }
    u32::from(top != 0)
}

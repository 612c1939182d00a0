//! The global allocator: picoalloc on the heap the host grows through the `sbrk` host call (the
//! `sbrk` instruction is refused by the host: its growth would escape the memory limit).

use picoalloc::{Allocator, Env, Mutex, Size};

use crate::sys;

/// The span of address space the allocator may use (the host's memory limit is the real
/// bound).
const ADDRESS_SPACE: usize = 3 << 30;

struct HostHeap;

fn heap_top() -> usize {
    // SAFETY: an increment of 0 only reads the heap's end.
    unsafe { sys::sbrk(0) }
}

fn grow(bytes: usize) -> bool {
    // SAFETY: the host grows the heap or refuses (0).
    unsafe { sys::sbrk(bytes) != 0 }
}

impl Env for HostHeap {
    fn total_space(&self) -> Size {
        const { Size::from_bytes_usize(ADDRESS_SPACE).unwrap() }
    }

    unsafe fn allocate_address_space(&mut self) -> *mut u8 {
        let top = heap_top();
        let aligned = top.next_multiple_of(32);
        if aligned > top && !grow(aligned - top) {
            return core::ptr::null_mut();
        }
        core::ptr::without_provenance_mut::<u8>(aligned)
    }

    unsafe fn expand_memory_until(&mut self, base: *mut u8, size: Size) -> bool {
        let have = heap_top() - base.addr();
        let want = size.bytes() as usize;
        have >= want || grow(want - have)
    }

    unsafe fn free_address_space(&mut self, _base: *mut u8) {}
}

// SAFETY: a RISC-V program runs on one thread; picoalloc's mutex serialises anyway.
unsafe impl Send for HostHeap {}

#[global_allocator]
static GLOBAL: Mutex<Allocator<HostHeap>> = Mutex::new(Allocator::new(HostHeap));

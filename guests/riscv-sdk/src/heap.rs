//! The global allocator: picoalloc, first on a 64 KiB arena in the program's own data, then
//! on the heap the host grows through the `sbrk` host call (the `sbrk` instruction is refused
//! by the host: its growth would escape the memory limit).
//!
//! Growing the heap of a recompiled program costs two round trips to its worker process
//! (tens of microseconds), so a small program never asks (its allocations fit the arena), and
//! the heap grows in steps: at least 64 KiB, then as much again as it has (at most 4 MiB at a
//! time). A step the memory limit refuses is asked again for exactly what is needed, so a
//! program can still use all the memory it is given.

use core::alloc::{GlobalAlloc, Layout};

use picoalloc::{Allocator, Array, ArrayPointer, Env, Mutex, Size};

use crate::sys;

/// The span of address space the allocator may use (the host's memory limit is the real
/// bound).
const ADDRESS_SPACE: usize = 3 << 30;
const MIN_STEP: usize = 64 << 10;
const MAX_STEP: usize = 4 << 20;

/// The heap: its start and end once known (0: not asked yet).
struct HostHeap {
    base: usize,
    top: usize,
}

fn sbrk(increment: usize) -> usize {
    // SAFETY: the host grows the heap by `increment` or refuses (0); 0 only reads its end.
    unsafe { sys::sbrk(increment) }
}

impl HostHeap {
    /// Grows the heap so that it ends at `end` at least; false when the limit refuses.
    fn grow_to(&mut self, end: usize) -> bool {
        if self.top == 0 {
            self.top = sbrk(0);
        }
        if end <= self.top {
            return true;
        }
        let needed = end - self.top;
        let have = self.top - self.base;
        let step = needed.max(have.clamp(MIN_STEP, MAX_STEP));
        for ask in [step, needed] {
            let top = sbrk(ask);
            if top != 0 {
                self.top = top;
                return true;
            }
        }
        false
    }
}

impl Env for HostHeap {
    fn total_space(&self) -> Size {
        const { Size::from_bytes_usize(ADDRESS_SPACE).unwrap() }
    }

    unsafe fn allocate_address_space(&mut self) -> *mut u8 {
        self.top = sbrk(0);
        self.base = self.top.next_multiple_of(32);
        if !self.grow_to(self.base) {
            return core::ptr::null_mut();
        }
        core::ptr::without_provenance_mut::<u8>(self.base)
    }

    unsafe fn expand_memory_until(&mut self, base: *mut u8, size: Size) -> bool {
        self.grow_to(base.addr() + size.bytes() as usize)
    }

    unsafe fn free_address_space(&mut self, _base: *mut u8) {}
}

// SAFETY: a RISC-V program runs on one thread; picoalloc's mutex serialises anyway.
unsafe impl Send for HostHeap {}

/// The arena: part of the program's fixed memory (which the run's memory limit counts).
///
/// Small, because PolkaVM's interpreter (where the recompiler cannot run) zero-fills the
/// program's read-write data up to the highest address written, at every run.
const ARENA: usize = 64 << 10;

static mut ARENA_BYTES: Array<ARENA> = Array([0; ARENA]);

/// The arena as picoalloc's address space.
struct Arena(ArrayPointer<ARENA>);

// SAFETY: a RISC-V program runs on one thread; the arena is used only through `SMALL`.
unsafe impl Send for Arena {}

impl Env for Arena {
    fn total_space(&self) -> Size {
        self.0.total_space()
    }

    unsafe fn allocate_address_space(&mut self) -> *mut u8 {
        // SAFETY: forwarded.
        unsafe { self.0.allocate_address_space() }
    }

    unsafe fn expand_memory_until(&mut self, base: *mut u8, size: Size) -> bool {
        // SAFETY: forwarded.
        unsafe { self.0.expand_memory_until(base, size) }
    }

    unsafe fn free_address_space(&mut self, base: *mut u8) {
        // SAFETY: forwarded.
        unsafe { self.0.free_address_space(base) }
    }
}

// SAFETY: `ARENA_BYTES` is used only through this allocator, which its mutex serialises.
static SMALL: Mutex<Allocator<Arena>> =
    Mutex::new(Allocator::new(Arena(unsafe { ArrayPointer::new(&raw mut ARENA_BYTES) })));

static LARGE: Mutex<Allocator<HostHeap>> =
    Mutex::new(Allocator::new(HostHeap { base: 0, top: 0 }));

/// The arena first, the heap when the arena is full.
struct TwoTier;

fn in_arena(ptr: *mut u8) -> bool {
    let start = (&raw const ARENA_BYTES).addr();
    (start..start + ARENA).contains(&ptr.addr())
}

// SAFETY: each pointer goes back to the allocator whose region holds it.
unsafe impl GlobalAlloc for TwoTier {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as the trait requires, forwarded.
        unsafe {
            let p = SMALL.alloc(layout);
            if p.is_null() { LARGE.alloc(layout) } else { p }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator of its region.
        unsafe {
            if in_arena(ptr) {
                SMALL.dealloc(ptr, layout);
            } else {
                LARGE.dealloc(ptr, layout);
            }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as in `dealloc`; a block leaving the arena is copied, then freed there.
        unsafe {
            if !in_arena(ptr) {
                return LARGE.realloc(ptr, layout, new_size);
            }
            let p = SMALL.realloc(ptr, layout, new_size);
            if !p.is_null() {
                return p;
            }
            let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
                return core::ptr::null_mut();
            };
            let moved = LARGE.alloc(new_layout);
            if !moved.is_null() {
                core::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                SMALL.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[global_allocator]
static GLOBAL: TwoTier = TwoTier;

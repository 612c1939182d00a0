//! Freed memory given back to the system after heavy work. mimalloc (the binary's allocator,
//! `main.rs`) keeps what a thread freed in that thread's own heap until the thread allocates
//! again or collects; the threads that compile (rayon's, the blocking pool's) may then sit on
//! hundreds of MB that nothing will reuse soon. Compiling is rare (plug-ins at start, a
//! JavaScript runtime and its snapshots at set-up), so collecting after it costs little.

/// Collects every rayon thread's heap and this thread's (blocks until each has done so; call
/// it from a blocking thread).
pub fn collect_everywhere() {
    // SAFETY: `mi_collect` takes no pointers; `force` frees the pages of the calling thread's
    // heap that are empty and reclaims segments abandoned by exited threads, which mimalloc
    // synchronises itself (it is meant to be called from any thread). Under another global
    // allocator (the library's tests) it only collects mimalloc's own, empty, heaps.
    #[allow(unsafe_code)]
    let collect = |_: rayon::BroadcastContext<'_>| unsafe { libmimalloc_sys::mi_collect(true) };
    rayon::broadcast(collect);
    // SAFETY: as above, for this thread.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true)
    };
}

//! Misbehaving guest: allocates until the host refuses to grow its memory.

fn main() {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        // Touch every page so the memory is really committed.
        hoard.push(vec![0xAB; 16 * 1024 * 1024]);
        std::hint::black_box(&hoard);
    }
}

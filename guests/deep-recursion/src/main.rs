//! Misbehaving guest: unbounded recursion. The host must trap it (stack exhausted), not crash.

#[inline(never)]
#[allow(unconditional_recursion)] // the point of this guest
fn descend(depth: u64, acc: u64) -> u64 {
    // black_box keeps the optimiser from turning this into a loop.
    let next = std::hint::black_box(acc.wrapping_mul(31).wrapping_add(depth));
    descend(depth + 1, next).wrapping_add(1)
}

fn main() {
    println!("{}", descend(0, 1));
}

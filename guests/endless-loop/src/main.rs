//! Misbehaving guest: spins forever. The host must stop it at the deadline.

fn main() {
    println!("spinning");
    let mut x: u64 = 0;
    loop {
        x = std::hint::black_box(x.wrapping_add(1));
    }
}

//! A guest that holds its instance for a while: sleeps for its first argument in milliseconds
//! (default 1000) through `wasi:clocks`, then prints how long it slept. The load benchmark uses
//! it to keep many executions live at the same time.

use std::time::{Duration, Instant};

fn main() {
    let ms: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(ms));
    println!("slept {} ms", started.elapsed().as_millis());
}

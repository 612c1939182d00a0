//! Misbehaving guest: imports `example:foreign/raw-network`, which is neither WASI nor
//! `hypervisor:host`. The host must refuse it before running it, naming the import.

wit_bindgen::generate!({
    path: "wit",
    world: "foreign",
    generate_all,
});

fn main() {
    // Using the import keeps it in the final component.
    let handle = example::foreign::raw_network::open_socket("10.0.0.1:22");
    println!("opened {handle}");
}

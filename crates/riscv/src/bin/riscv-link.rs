//! A linking child for [`hypervisor_riscv::isolate::IsolatedLinker`] outside the host (the host
//! binary serves the same requests itself, `hypervisor __link-riscv`): the crate's tests use
//! it. Reads an ELF file on standard input, answers on standard output.

fn main() -> std::process::ExitCode {
    hypervisor_riscv::isolate::serve_link_request(256 << 20)
}

//! RISC-V programs as the host takes them in, in the host's own process (`crates/riscv`): any
//! bytes are recognised as a kind or not (`recognise`, `check_elf_header`, which agree); read
//! as the linking child's answer (`isolate::decode_answer`); read as a PolkaVM blob and checked
//! against the contract (`Program::from_blob`: entry point, imports, no `sbrk`), then compiled
//! for PolkaVM's interpreter. Each is accepted or refused with an error, never a panic.
//!
//! PolkaVM's linker is not fuzzed here: it panics on malformed ELF files (this target found
//! `unable to map section index` in seconds when it linked in process), so the host runs it
//! in a child process (`crates/riscv/src/isolate.rs`), whose crash is a refusal.
#![no_main]

use std::sync::OnceLock;

use hypervisor_riscv::isolate::decode_answer;
use hypervisor_riscv::program::check_elf_header;
use hypervisor_riscv::{
    BackendChoice, Executor, ExecutorConfig, Program, ProgramKind, Recognised, recognise,
};
use libfuzzer_sys::fuzz_target;

fn interpreter() -> &'static Executor {
    static EXECUTOR: OnceLock<Executor> = OnceLock::new();
    EXECUTOR.get_or_init(|| {
        Executor::new(&ExecutorConfig {
            backend: BackendChoice::Interpreter,
            idle_workers: 0,
            warm_instances: 0,
        })
        .expect("the interpreter starts")
    })
}

fuzz_target!(|data: &[u8]| {
    assert_eq!(
        check_elf_header(data).is_ok(),
        recognise(data) == Recognised::Kind(ProgramKind::Riscv)
    );
    if let Ok(blob) = decode_answer(data) {
        assert_eq!(blob, data[1..]);
    }
    if let Ok(program) = Program::from_blob(data.to_vec()) {
        assert_eq!(program.blob_len(), data.len());
        let _ = interpreter().compile(&program);
    }
});

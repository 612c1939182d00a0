//! Linking in a child process (`hypervisor_riscv::isolate`): the same blob as in process; the
//! linker's panics, crashes, hangs and appetite contained and reported as refusals.

mod common;

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hypervisor_riscv::isolate::{IsolatedLinker, LinkLimits};
use hypervisor_riscv::program::link;
use hypervisor_riscv::{IntakeError, Program};

fn linker() -> IsolatedLinker {
    IsolatedLinker {
        program: env!("CARGO_BIN_EXE_riscv-link").into(),
        args: Vec::new(),
        limits: LinkLimits::default(),
    }
}

/// `sh -c SCRIPT` in place of the linker.
fn shell(script: &str, limits: LinkLimits) -> IsolatedLinker {
    IsolatedLinker {
        program: "/bin/sh".into(),
        args: vec![OsString::from("-c"), OsString::from(script)],
        limits,
    }
}

#[test]
fn a_child_links_what_the_linker_links_in_process() {
    for name in ["hello", "grep"] {
        let elf = common::elf(name);
        let blob = linker().link(&elf).expect("a child").expect("links");
        assert_eq!(blob, link(&elf).expect("links in process"));
        Program::from_blob(blob).expect("a program");
    }
}

#[test]
fn a_linker_panic_is_a_refusal() {
    // Found by fuzz/fuzz_targets/riscv_program.rs: the linker panics on it in process.
    let crash = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/linker-panic.elf"),
    )
    .expect("fixture");
    let refused = linker().link(&crash).expect("a child");
    let Err(IntakeError::Link(message)) = refused else {
        panic!("{refused:?}")
    };
    assert!(message.contains("unable to map section index"), "{message}");
}

#[test]
fn other_files_never_reach_a_child() {
    let never = shell("exit 99", LinkLimits::default());
    assert!(matches!(
        never.link(b"\0asm\x0d\0\x01\0"),
        Ok(Err(IntakeError::NotElf(_)))
    ));
}

#[test]
fn a_crash_a_hang_and_a_failure_are_refusals_with_their_cause() {
    let hello = common::elf("hello");
    let crashed = shell("kill -SEGV $$", LinkLimits::default())
        .link(&hello)
        .expect("a child");
    assert_eq!(
        crashed,
        Err(IntakeError::Link(
            "the linker crashed (signal 11) on this file".into()
        ))
    );

    let started = Instant::now();
    let hung = shell(
        "exec sleep 30",
        LinkLimits {
            timeout: Duration::from_millis(300),
            ..LinkLimits::default()
        },
    )
    .link(&hello)
    .expect("a child");
    assert_eq!(
        hung,
        Err(IntakeError::Link(
            "the linker did not finish within 300ms".into()
        ))
    );
    assert!(started.elapsed() < Duration::from_secs(10));

    // A child over its data limit cannot grow: Python's allocation fails.
    let greedy = shell(
        "exec python3 -c 'bytearray(1 << 30)'",
        LinkLimits {
            data_bytes: 64 << 20,
            data_per_elf_byte: 0,
            ..LinkLimits::default()
        },
    )
    .link(&hello)
    .expect("a child");
    assert_eq!(
        greedy,
        Err(IntakeError::Link(
            "the linker failed (exit code 1) on this file".into()
        ))
    );
}

#[test]
fn the_childs_limits_hold_from_its_first_instruction() {
    // Set after the child started, a limit could come after its allocator had reserved more
    // than it (and its next allocation then failed): seen under load with the host binary.
    let hello = common::elf("hello");
    let limits = LinkLimits {
        data_bytes: 64 << 20,
        data_per_elf_byte: 8,
        cpu_seconds: 7,
        ..LinkLimits::default()
    };
    let answer = shell("printf '\\0'; ulimit -d; ulimit -t", limits)
        .link(&hello)
        .expect("a child")
        .expect("an answer");
    let data_kib = ((64 << 20) + 8 * hello.len()) / 1024;
    assert_eq!(
        String::from_utf8(answer).unwrap(),
        format!("{data_kib}\n7\n")
    );
}

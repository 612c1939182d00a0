//! Subcommands of the `hypervisor-client` binary that live outside `main.rs`.

pub mod agent;

//! What kind of program a byte string is (`docs/PROTOCOL.md` §6d): a WebAssembly binary, a
//! RISC-V ELF file, or neither. Only the first bytes are read (the magic numbers, and an ELF
//! header's class, byte order and machine), so the check costs nothing whatever the size.

use serde::{Deserialize, Serialize};

/// What instruction set a program is for (`program_kind`): a WebAssembly component, or a
/// RISC-V ELF file. Absent from a request, the host recognises the kind by the program's first
/// bytes ([`recognise`]); given, the program must be of that kind (`program_kind_mismatch`
/// otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgramKind {
    /// A WebAssembly binary (a component): starts `\0asm`.
    Wasm,
    /// A RISC-V ELF file (32- or 64-bit, little-endian, `e_machine` 243), run by PolkaVM.
    Riscv,
}

impl ProgramKind {
    /// `wasm` or `riscv`, as on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Wasm => "wasm",
            Self::Riscv => "riscv",
        }
    }
}

/// What the first bytes of a program say it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recognised {
    /// A program of a kind this host runs.
    Kind(ProgramKind),
    /// An ELF file, but not one for RISC-V (or not little-endian): its header facts.
    OtherElf(ElfHeader),
    /// Neither magic number.
    Unknown,
}

/// The ELF header fields that decide whether a file is a RISC-V program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfHeader {
    /// `EI_CLASS`: 1 for 32-bit, 2 for 64-bit.
    pub class: u8,
    /// `EI_DATA`: 1 for little-endian, 2 for big-endian.
    pub data: u8,
    /// `e_machine`, read in the file's own byte order (243 is `EM_RISCV`).
    pub machine: u16,
}

impl ElfHeader {
    /// A human name for the machine, for error messages.
    pub fn machine_name(&self) -> String {
        match self.machine {
            EM_RISCV => "RISC-V".into(),
            3 => "x86".into(),
            62 => "x86-64".into(),
            40 => "ARM".into(),
            183 => "AArch64".into(),
            8 => "MIPS".into(),
            20 => "PowerPC".into(),
            21 => "PowerPC64".into(),
            247 => "BPF".into(),
            258 => "LoongArch".into(),
            other => format!("machine {other}"),
        }
    }
}

/// `\0asm`: the first four bytes of every WebAssembly binary.
pub const WASM_MAGIC: [u8; 4] = *b"\0asm";
/// `\x7fELF`: the first four bytes of every ELF file.
pub const ELF_MAGIC: [u8; 4] = *b"\x7fELF";
/// `e_machine` of RISC-V (the ELF psABI).
pub const EM_RISCV: u16 = 243;

/// Reads what kind of program `bytes` is.
pub fn recognise(bytes: &[u8]) -> Recognised {
    if bytes.starts_with(&WASM_MAGIC) {
        return Recognised::Kind(ProgramKind::Wasm);
    }
    if !bytes.starts_with(&ELF_MAGIC) {
        return Recognised::Unknown;
    }
    // e_ident[EI_CLASS] at 4, e_ident[EI_DATA] at 5, e_machine (2 bytes) at 18: the same
    // offsets in 32- and 64-bit headers.
    let (Some(&class), Some(&data), Some(machine)) =
        (bytes.get(4), bytes.get(5), bytes.get(18..20))
    else {
        return Recognised::OtherElf(ElfHeader {
            class: 0,
            data: 0,
            machine: 0,
        });
    };
    let machine = [machine[0], machine[1]];
    let header = ElfHeader {
        class,
        data,
        machine: if data == 2 {
            u16::from_be_bytes(machine)
        } else {
            u16::from_le_bytes(machine)
        },
    };
    if header.machine == EM_RISCV && header.data == 1 && matches!(class, 1 | 2) {
        Recognised::Kind(ProgramKind::Riscv)
    } else {
        Recognised::OtherElf(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elf(class: u8, data: u8, machine: [u8; 2]) -> Vec<u8> {
        let mut header = vec![0u8; 64];
        header[..4].copy_from_slice(&ELF_MAGIC);
        header[4] = class;
        header[5] = data;
        header[18..20].copy_from_slice(&machine);
        header
    }

    #[test]
    fn recognises_each_kind_by_its_header() {
        assert_eq!(
            recognise(b"\0asm\x0d\0\x01\0"),
            Recognised::Kind(ProgramKind::Wasm)
        );
        for class in [1, 2] {
            assert_eq!(
                recognise(&elf(class, 1, EM_RISCV.to_le_bytes())),
                Recognised::Kind(ProgramKind::Riscv)
            );
        }
        let x86 = recognise(&elf(2, 1, 62u16.to_le_bytes()));
        let Recognised::OtherElf(header) = x86 else {
            panic!("{x86:?}")
        };
        assert_eq!(header.machine_name(), "x86-64");
        // big-endian RISC-V does not exist in PolkaVM's world: refused, its machine still read
        let Recognised::OtherElf(header) = recognise(&elf(2, 2, EM_RISCV.to_be_bytes())) else {
            panic!()
        };
        assert_eq!((header.machine, header.data), (EM_RISCV, 2));
        // a bad class is not a program either
        assert!(matches!(
            recognise(&elf(3, 1, EM_RISCV.to_le_bytes())),
            Recognised::OtherElf(_)
        ));
        assert_eq!(recognise(b"#!/bin/sh"), Recognised::Unknown);
        assert_eq!(recognise(b""), Recognised::Unknown);
        // a truncated header is an ELF file that is not a program
        assert!(matches!(recognise(b"\x7fELF\x02"), Recognised::OtherElf(_)));
    }
}

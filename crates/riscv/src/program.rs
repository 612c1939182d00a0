//! A RISC-V program's intake: the guest's ELF file linked into a PolkaVM program blob, and the
//! blob checked against the contract of [`crate::abi`] before anything runs.
//!
//! What is refused, and why:
//! - a file that is not a little-endian RISC-V ELF ([`crate::kind`]), or that the linker
//!   cannot turn into a blob;
//! - a blob without the entry point `main`;
//! - an import that is not a host call of the ABI (there is nothing else to link it to);
//! - the `sbrk` instruction: PolkaVM's recompiler grows such a heap inside its worker
//!   process, beyond the host's reach and up to 4 GiB. A program grows its heap with the
//!   `sbrk` host call instead, which the memory limit governs (`guests/riscv-sdk` does).

use polkavm::program::Instruction;
use polkavm::{ProgramBlob, ProgramCounter};

use crate::abi::{self, HostCall};
use hypervisor_protocol::program::{ProgramKind, Recognised, recognise};

/// Why a file is not a RISC-V program this host runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// Not an ELF file at all (the message says what it looks like).
    #[error("{0}")]
    NotElf(String),
    /// An ELF file for another machine, or big-endian.
    #[error(
        "an ELF file for {machine} ({class}-bit, {endian}), not a little-endian RISC-V program"
    )]
    OtherMachine {
        /// The machine's name.
        machine: String,
        /// 32, 64, or 0 for an unknown class.
        class: u8,
        /// `little-endian` or `big-endian` (or `unknown byte order`).
        endian: &'static str,
    },
    /// PolkaVM's linker refused the ELF file.
    #[error("the RISC-V program cannot be linked: {0}")]
    Link(String),
    /// The linked blob does not parse (a linker bug, or a corrupt cached blob).
    #[error("the RISC-V program's linked blob is invalid: {0}")]
    Blob(String),
    /// No `main` export.
    #[error(
        "the RISC-V program exports no `{}` (declare `#[polkavm_derive::polkavm_export] extern \"C\" fn main() -> u32`)",
        abi::ENTRY_POINT
    )]
    NoEntryPoint,
    /// An import outside the ABI.
    #[error(
        "the RISC-V program imports `{0}`, which is not a host call of this host (docs/PROTOCOL.md, RISC-V programs)"
    )]
    UnknownImport(String),
    /// The `sbrk` instruction.
    #[error(
        "the RISC-V program uses the `sbrk` instruction, which escapes the memory limit: grow the heap with the `sbrk` host call (guests/riscv-sdk does)"
    )]
    SbrkInstruction,
}

/// A program that passed intake: its blob, entry point, imports resolved to host calls.
#[derive(Clone)]
pub struct Program {
    pub(crate) blob: ProgramBlob,
    pub(crate) entry: ProgramCounter,
    pub(crate) imports: Vec<HostCall>,
    blob_len: usize,
}

impl std::fmt::Debug for Program {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Program")
            .field("entry", &self.entry)
            .field("imports", &self.imports)
            .field("is_64_bit", &self.blob.is_64_bit())
            .finish_non_exhaustive()
    }
}

impl Program {
    /// Links `elf` (the file the guest's toolchain produced) and checks the blob.
    ///
    /// # Errors
    /// Every [`IntakeError`].
    #[cfg(feature = "link")]
    pub fn from_elf(elf: &[u8]) -> Result<Self, IntakeError> {
        Self::from_blob(link(elf)?)
    }

    /// Checks a blob [`link`] made.
    ///
    /// # Errors
    /// [`IntakeError::Blob`], [`IntakeError::NoEntryPoint`], [`IntakeError::UnknownImport`],
    /// [`IntakeError::SbrkInstruction`].
    pub fn from_blob(blob: Vec<u8>) -> Result<Self, IntakeError> {
        let blob_len = blob.len();
        let blob = ProgramBlob::parse(blob.into()).map_err(|e| IntakeError::Blob(e.to_string()))?;
        let entry = blob
            .exports()
            .find(|e| e.symbol().as_bytes() == abi::ENTRY_POINT.as_bytes())
            .map(|e| e.program_counter())
            .ok_or(IntakeError::NoEntryPoint)?;
        let imports = blob
            .imports()
            .iter()
            .map(|symbol| {
                let Some(symbol) = symbol else {
                    return Err(IntakeError::Blob("an import's name does not parse".into()));
                };
                HostCall::by_name(symbol.as_bytes()).ok_or_else(|| {
                    IntakeError::UnknownImport(
                        String::from_utf8_lossy(symbol.as_bytes()).into_owned(),
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if blob
            .instructions()
            .any(|i| matches!(i.kind, Instruction::sbrk(..)))
        {
            return Err(IntakeError::SbrkInstruction);
        }
        Ok(Self {
            blob,
            entry,
            imports,
            blob_len,
        })
    }

    /// Whether it is a 64-bit program (RV64) rather than a 32-bit one (RV32).
    pub fn is_64_bit(&self) -> bool {
        self.blob.is_64_bit()
    }

    /// The host calls it imports, in import order.
    pub fn imports(&self) -> &[HostCall] {
        &self.imports
    }

    /// The blob's size in bytes.
    pub fn blob_len(&self) -> usize {
        self.blob_len
    }
}

/// Refuses anything but a little-endian RISC-V ELF file, naming what it is instead.
///
/// # Errors
/// [`IntakeError::NotElf`], [`IntakeError::OtherMachine`].
pub fn check_elf_header(bytes: &[u8]) -> Result<(), IntakeError> {
    match recognise(bytes) {
        Recognised::Kind(ProgramKind::Riscv) => Ok(()),
        Recognised::Kind(ProgramKind::Wasm) => Err(IntakeError::NotElf(
            "a WebAssembly binary, not a RISC-V ELF file".into(),
        )),
        Recognised::Unknown => Err(IntakeError::NotElf(
            "not an ELF file (it does not start with \\x7fELF)".into(),
        )),
        Recognised::OtherElf(h) => Err(IntakeError::OtherMachine {
            machine: h.machine_name(),
            class: match h.class {
                1 => 32,
                2 => 64,
                _ => 0,
            },
            endian: match h.data {
                1 => "little-endian",
                2 => "big-endian",
                _ => "unknown byte order",
            },
        }),
    }
}

/// Links a RISC-V ELF file into a PolkaVM program blob (PolkaVM's own linker, in process),
/// stripped of debug information. A panic inside the linker is caught and reported as a
/// refusal.
///
/// # Errors
/// [`IntakeError::NotElf`], [`IntakeError::OtherMachine`] before linking; [`IntakeError::Link`]
/// when the linker refuses the file.
#[cfg(feature = "link")]
pub fn link(elf: &[u8]) -> Result<Vec<u8>, IntakeError> {
    check_elf_header(elf)?;
    let mut config = polkavm_linker::Config::default();
    config.set_strip(true);
    let linked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        polkavm_linker::program_from_elf(config, polkavm_linker::TargetInstructionSet::Latest, elf)
    }));
    match linked {
        Ok(Ok(blob)) => Ok(blob),
        Ok(Err(e)) => Err(IntakeError::Link(e.to_string())),
        Err(panic) => Err(IntakeError::Link(format!(
            "the linker failed on this file ({})",
            panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into())
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_files_are_refused_by_their_header_before_linking() {
        assert_eq!(
            link(b"\0asm\x01\0\0\0"),
            Err(IntakeError::NotElf(
                "a WebAssembly binary, not a RISC-V ELF file".into()
            ))
        );
        let mut x86 = vec![0u8; 64];
        x86[..4].copy_from_slice(b"\x7fELF");
        x86[4] = 2;
        x86[5] = 1;
        x86[18] = 62;
        let e = link(&x86).expect_err("x86-64 ELF");
        assert_eq!(
            e.to_string(),
            "an ELF file for x86-64 (64-bit, little-endian), not a little-endian RISC-V program"
        );
    }

    #[test]
    fn a_riscv_header_with_nothing_behind_it_is_a_link_error() {
        let mut elf = vec![0u8; 64];
        elf[..4].copy_from_slice(b"\x7fELF");
        elf[4] = 2;
        elf[5] = 1;
        elf[18..20].copy_from_slice(&243u16.to_le_bytes());
        assert!(matches!(link(&elf), Err(IntakeError::Link(_))));
        assert!(matches!(link(&elf[..20]), Err(IntakeError::Link(_))));
    }

    #[test]
    fn garbage_blobs_are_refused() {
        assert!(matches!(
            Program::from_blob(b"PVM\0garbage".to_vec()),
            Err(IntakeError::Blob(_))
        ));
        assert!(matches!(
            Program::from_blob(Vec::new()),
            Err(IntakeError::Blob(_))
        ));
    }

    #[test]
    fn blobs_are_checked_for_entry_point_imports_and_sbrk() {
        use polkavm::Reg::{A0, A1};
        use polkavm_common::program::{InstructionSetKind, asm};
        use polkavm_common::writer::ProgramBlobBuilder;

        let blob = |export: &[u8], imports: &[&[u8]], code: &[Instruction]| {
            let mut builder = ProgramBlobBuilder::new(InstructionSetKind::Latest64);
            builder.add_export_by_basic_block(0, export);
            for import in imports {
                builder.add_import(import);
            }
            builder.set_code(code, &[]);
            builder.into_vec().expect("a blob")
        };
        let ok = Program::from_blob(blob(
            b"main",
            &[b"fd_write", b"proc_exit"],
            &[asm::load_imm(A0, 7), asm::ret()],
        ))
        .expect("valid");
        assert!(ok.is_64_bit());
        assert_eq!(ok.imports(), [HostCall::FdWrite, HostCall::ProcExit]);
        assert_eq!(
            Program::from_blob(blob(b"start", &[], &[asm::ret()])).expect_err("no main"),
            IntakeError::NoEntryPoint
        );
        assert_eq!(
            Program::from_blob(blob(b"main", &[b"fd_write", b"socket"], &[asm::ret()]))
                .expect_err("socket"),
            IntakeError::UnknownImport("socket".into())
        );
        assert_eq!(
            Program::from_blob(blob(b"main", &[], &[asm::sbrk(A0, A1), asm::ret()]))
                .expect_err("sbrk"),
            IntakeError::SbrkInstruction
        );
    }
}

use core::marker::PhantomData;
use std::collections::HashMap;
use std::sync::Arc;

use polkavm_assembler::{Assembler, Label};
use polkavm_common::abi::VM_CODE_ADDRESS_ALIGNMENT;
use polkavm_common::cast::cast;
use polkavm_common::program::{scan_is_jump_target_valid, InstructionSetKind, JumpTable, ProgramCounter, ProgramExport, RawReg};
use polkavm_common::utils::{Bitness, BitnessT, GasVisitorT};
use polkavm_common::zygote::{JUMP_TABLE_INVALID_ADDRESS, VM_COMPILER_MAXIMUM_INSTRUCTION_LENGTH};

use crate::error::Error;

use crate::api::CompileError;
use crate::config::{CustomCodegen, GasMeteringKind, ModuleConfig, SandboxKind};
use crate::mutex::Mutex;
use crate::sandbox::{Sandbox, SandboxInit, SandboxProgram};
use crate::utils::{FlatMap, GuestInit};

#[cfg(target_arch = "x86_64")]
mod amd64;

#[cfg(target_arch = "x86_64")]
pub use crate::compiler::amd64::{extract_gas_cost, on_page_fault, on_signal_trap, step_prelude_length};

#[cfg(all(target_arch = "x86_64", feature = "generic-sandbox"))]
pub(crate) use crate::compiler::amd64::{are_we_executing_memset, indirect_memory_operand, MemsetKind};

const CONTINUE_BASIC_BLOCK: usize = 0;
const END_BASIC_BLOCK_UNCONDITIONAL: usize = 1;
const END_BASIC_BLOCK_CONDITIONAL: usize = 2;
const END_BASIC_BLOCK_INVALID: usize = 3;

struct CachePerCompilation {
    assembler: Assembler,
    program_counter_to_label: FlatMap<Label, false>,
    gas_cost_for_basic_block: Vec<u32>,
    export_to_label: HashMap<u32, Label>,
}

struct CachePerModule {
    program_counter_to_machine_code_offset_list: Vec<(ProgramCounter, u32)>,
    program_counter_to_machine_code_offset_map: HashMap<ProgramCounter, u32>,
    gas_metering_stub_offsets: Vec<u32>,
}

#[derive(Default)]
struct Cache {
    per_compilation: Vec<CachePerCompilation>,
    per_module: Vec<CachePerModule>,
}

#[derive(Clone, Default)]
pub(crate) struct CompilerCache(Arc<Mutex<Cache>>);

pub(crate) struct CompilerVisitor<'a, S, B, G>
where
    S: Sandbox,
    B: BitnessT,
    G: GasVisitorT,
{
    init: GuestInit<'a>,
    jump_table: JumpTable<'a>,
    code: &'a [u8],
    bitmask: &'a [u8],
    asm: Assembler,
    program_counter_to_label: FlatMap<Label, false>,
    step_tracing: bool,
    ecall_label: Label,
    export_to_label: HashMap<u32, Label>,
    exports: &'a [ProgramExport<&'a [u8]>],
    gas_metering: Option<GasMeteringKind>,
    gas_visitor: G,
    jump_table_label: Label,
    program_counter_to_machine_code_offset_list: Vec<(ProgramCounter, u32)>,
    program_counter_to_machine_code_offset_map: HashMap<ProgramCounter, u32>,
    gas_metering_stub_offsets: Vec<u32>,
    gas_cost_for_basic_block: Vec<u32>,
    sbrk_label: Label,
    step_label: Label,
    trap_label: Label,
    memset_label: Label,
    div32u_label: Label,
    div32s_label: Label,
    div64u_label: Label,
    div64s_label: Label,
    rem32u_label: Label,
    rem32s_label: Label,
    rem64u_label: Label,
    rem64s_label: Label,
    invalid_jump_label: Label,
    instruction_set: InstructionSetKind,
    last_basic_block_start: u32,
    memset_trampoline_start: usize,
    memset_trampoline_end: usize,
    custom_codegen: Option<Arc<dyn CustomCodegen>>,
    first_invalid_offset: Option<ProgramCounter>,

    _phantom: PhantomData<(S, B)>,
}

#[repr(transparent)]
pub(crate) struct ArchVisitor<'r, 'a, S, B, G>(pub &'r mut CompilerVisitor<'a, S, B, G>)
where
    S: Sandbox,
    B: BitnessT,
    G: GasVisitorT;

impl<'r, 'a, S, B, G> core::ops::Deref for ArchVisitor<'r, 'a, S, B, G>
where
    S: Sandbox,
    B: BitnessT,
    G: GasVisitorT,
{
    type Target = CompilerVisitor<'a, S, B, G>;
    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl<'r, 'a, S, B, G> core::ops::DerefMut for ArchVisitor<'r, 'a, S, B, G>
where
    S: Sandbox,
    B: BitnessT,
    G: GasVisitorT,
{
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.0
    }
}

impl<'a, S, B, G> CompilerVisitor<'a, S, B, G>
where
    S: Sandbox,
    B: BitnessT,
    G: GasVisitorT,
{
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        cache: &CompilerCache,
        config: &'a ModuleConfig,
        instruction_set: InstructionSetKind,
        jump_table: JumpTable<'a>,
        code: &'a [u8],
        bitmask: &'a [u8],
        exports: &'a [ProgramExport<&'a [u8]>],
        step_tracing: bool,
        code_length: u32,
        init: GuestInit<'a>,
        gas_visitor: G,
    ) -> Result<(Self, S::AddressSpace), Error>
    where
        S: Sandbox,
    {
        let native_page_size = crate::sandbox::get_native_page_size();
        if native_page_size > config.page_size as usize || config.page_size as usize % native_page_size != 0 {
            return Err(format!(
                "configured page size of {} is incompatible with the native page size of {}",
                config.page_size, native_page_size
            )
            .into());
        }

        let address_space = S::reserve_address_space().map_err(Error::from_display)?;
        let native_code_origin = crate::sandbox::SandboxAddressSpace::native_code_origin(&address_space);

        let (per_compilation_cache, per_module_cache) = {
            let mut cache = cache.0.lock();
            (cache.per_compilation.pop(), cache.per_module.pop())
        };

        let mut asm;
        let mut gas_cost_for_basic_block: Vec<u32>;
        let program_counter_to_label;
        let export_to_label;

        if let Some(per_compilation_cache) = per_compilation_cache {
            asm = per_compilation_cache.assembler;
            program_counter_to_label = FlatMap::new_reusing_memory(per_compilation_cache.program_counter_to_label, code_length + 2);
            gas_cost_for_basic_block = per_compilation_cache.gas_cost_for_basic_block;
            export_to_label = per_compilation_cache.export_to_label;
        } else {
            asm = Assembler::new();
            program_counter_to_label = FlatMap::new(code_length + 2);
            gas_cost_for_basic_block = Vec::new();
            export_to_label = HashMap::new();
        }

        let program_counter_to_machine_code_offset_list: Vec<(ProgramCounter, u32)>;
        let program_counter_to_machine_code_offset_map: HashMap<ProgramCounter, u32>;
        let mut gas_metering_stub_offsets: Vec<u32>;
        if let Some(per_module_cache) = per_module_cache {
            program_counter_to_machine_code_offset_list = per_module_cache.program_counter_to_machine_code_offset_list;
            program_counter_to_machine_code_offset_map = per_module_cache.program_counter_to_machine_code_offset_map;
            gas_metering_stub_offsets = per_module_cache.gas_metering_stub_offsets;
        } else {
            program_counter_to_machine_code_offset_list = Vec::with_capacity(code_length as usize);
            program_counter_to_machine_code_offset_map = HashMap::with_capacity(exports.len());
            gas_metering_stub_offsets = Vec::with_capacity(code_length as usize);
        }

        let ecall_label = asm.forward_declare_label();
        let trap_label = asm.forward_declare_label();
        let invalid_jump_label = asm.forward_declare_label();
        let step_label = asm.forward_declare_label();
        let jump_table_label = asm.forward_declare_label();
        let sbrk_label = asm.forward_declare_label();
        let memset_label = asm.forward_declare_label();
        let div32u_label = asm.forward_declare_label();
        let div32s_label = asm.forward_declare_label();
        let div64u_label = asm.forward_declare_label();
        let div64s_label = asm.forward_declare_label();
        let rem32u_label = asm.forward_declare_label();
        let rem32s_label = asm.forward_declare_label();
        let rem64u_label = asm.forward_declare_label();
        let rem64s_label = asm.forward_declare_label();

        polkavm_common::static_assert!(polkavm_common::zygote::VM_SANDBOX_MAXIMUM_NATIVE_CODE_SIZE < u32::MAX);

        if config.gas_metering.is_some() {
            gas_metering_stub_offsets.reserve(code_length as usize);
            gas_cost_for_basic_block.reserve(code_length as usize);
        }

        asm.set_origin(native_code_origin);

        let mut visitor = CompilerVisitor {
            gas_visitor,
            asm,
            exports,
            program_counter_to_label,
            init,
            jump_table,
            code,
            bitmask,
            export_to_label,
            ecall_label,
            trap_label,
            invalid_jump_label,
            step_label,
            jump_table_label,
            sbrk_label,
            memset_label,
            div32u_label,
            div32s_label,
            div64u_label,
            div64s_label,
            rem32u_label,
            rem32s_label,
            rem64u_label,
            rem64s_label,
            gas_metering: config.gas_metering,
            step_tracing,
            program_counter_to_machine_code_offset_list,
            program_counter_to_machine_code_offset_map,
            gas_metering_stub_offsets,
            gas_cost_for_basic_block,
            instruction_set,
            last_basic_block_start: 0,
            memset_trampoline_start: 0,
            memset_trampoline_end: 0,
            custom_codegen: config.custom_codegen.clone(),
            first_invalid_offset: None,
            _phantom: PhantomData,
        };

        ArchVisitor(&mut visitor).emit_trap_trampoline();
        ArchVisitor(&mut visitor).emit_ecall_trampoline();
        ArchVisitor(&mut visitor).emit_sbrk_trampoline();
        ArchVisitor(&mut visitor).emit_divrem_trampoline();

        if config.gas_metering.is_some() {
            visitor.memset_trampoline_start = visitor.asm.len();
            ArchVisitor(&mut visitor).emit_memset_trampoline();
            visitor.memset_trampoline_end = visitor.asm.len();
        }

        if step_tracing {
            ArchVisitor(&mut visitor).emit_step_trampoline();
        }

        log::trace!("Emitting code...");
        visitor
            .program_counter_to_machine_code_offset_list
            .push((ProgramCounter(0), visitor.asm.len() as u32));

        visitor.force_start_new_basic_block(0, visitor.scan_is_jump_target_valid(0));
        Ok((visitor, address_space))
    }

    fn scan_is_jump_target_valid(&self, offset: u32) -> bool {
        scan_is_jump_target_valid(self.instruction_set, self.code, self.bitmask, offset)
    }

    pub(crate) fn finish_compilation(
        mut self,
        global: &S::GlobalState,
        cache: &CompilerCache,
        address_space: S::AddressSpace,
    ) -> Result<CompiledModule<S>, CompileError>
    where
        S: Sandbox,
    {
        if matches!(self.instruction_set, InstructionSetKind::JamV1) {
            if let Some(pc) = self.first_invalid_offset {
                return Err(CompileError::ValidationFailed(format!("validation failed at offset {pc}")));
            }
        }

        log::trace!("Finishing compilation...");
        let code_length = cast(
            self.program_counter_to_machine_code_offset_list
                .last()
                .map(|&(_, offset)| offset)
                .unwrap(),
        )
        .to_usize();

        if self.asm.len() > code_length {
            // Revert the prologue we've already emitted.
            log::trace!("Truncating code from 0x{:x} to 0x{code_length:x}...", self.asm.len());
            self.asm.truncate(code_length);
            if self.gas_metering.is_some() {
                self.gas_metering_stub_offsets.pop();
                self.gas_cost_for_basic_block.truncate(self.gas_metering_stub_offsets.len());
            }
        }

        self.program_counter_to_machine_code_offset_list.shrink_to_fit();

        let gas_metering_stub_offsets = core::mem::take(&mut self.gas_metering_stub_offsets);
        let mut gas_cost_for_basic_block = core::mem::take(&mut self.gas_cost_for_basic_block);
        if self.gas_metering.is_some() {
            log::trace!("Finalizing block costs...");
            assert_eq!(gas_metering_stub_offsets.len(), gas_cost_for_basic_block.len());
            for (&native_code_offset, &cost) in gas_metering_stub_offsets.iter().zip(gas_cost_for_basic_block.iter()) {
                log::trace!("  0x{:08x}: {}", self.asm.origin() + u64::from(native_code_offset), cost);
                ArchVisitor(&mut self).emit_weight(cast(native_code_offset).to_usize(), cost);
            }
        }

        let label_sysenter = ArchVisitor(&mut self).emit_sysenter();
        let label_sysreturn = ArchVisitor(&mut self).emit_sysreturn();
        let native_code_origin = self.asm.origin();
        let native_page_size = crate::sandbox::get_native_page_size();
        let vm_code_address_alignment = VM_CODE_ADDRESS_ALIGNMENT as usize;

        let invalid_address = JUMP_TABLE_INVALID_ADDRESS as usize;
        let jump_table_length = (self.jump_table.len() as usize + 1) * vm_code_address_alignment;
        let mut native_jump_table = S::allocate_jump_table(global, jump_table_length).map_err(Error::from_display)?;
        assert_eq!(core::mem::size_of_val(native_jump_table.as_ref()) % native_page_size, 0);
        {
            let native_jump_table = native_jump_table.as_mut();
            native_jump_table[..vm_code_address_alignment].fill(invalid_address); // First entry is always invalid.
            native_jump_table[jump_table_length..].fill(invalid_address); // Fill in the padding, since the size is page-aligned.

            let native_jump_table = &mut native_jump_table[vm_code_address_alignment..jump_table_length];
            assert_eq!(native_jump_table.len(), self.jump_table.len() as usize * vm_code_address_alignment);

            for (jump_table_index, code_offset) in self.jump_table.iter().enumerate() {
                let mut address = invalid_address;
                if let Some(label) = self.program_counter_to_label.get(code_offset.0) {
                    if let Some(native_code_offset) = self.asm.get_label_origin_offset(label) {
                        address = native_code_origin.checked_add_signed(native_code_offset as i64).expect("overflow") as usize;
                    }
                }

                let offset = jump_table_index * vm_code_address_alignment;
                native_jump_table[offset] = address;
                native_jump_table[offset + 1..offset + vm_code_address_alignment].fill(invalid_address);
            }
        }

        assert!(self.program_counter_to_machine_code_offset_map.is_empty());
        for export in self.exports {
            let native_offset = if let Ok(index) = self
                .program_counter_to_machine_code_offset_list
                .binary_search_by_key(&export.program_counter(), |&(code_offset, _)| code_offset)
            {
                self.program_counter_to_machine_code_offset_list[index].1
            } else {
                self.program_counter_to_machine_code_offset_list.last().unwrap().1
            };

            log::trace!(
                "Export at {}: {} => 0x{:08x}",
                export.program_counter(),
                export.symbol(),
                native_code_origin + u64::from(native_offset)
            );
            self.program_counter_to_machine_code_offset_map
                .insert(export.program_counter(), native_offset);
        }

        let sysenter_address = native_code_origin
            .checked_add_signed(self.asm.get_label_origin_offset_or_panic(label_sysenter) as i64)
            .expect("overflow");

        let sysreturn_address = native_code_origin
            .checked_add_signed(self.asm.get_label_origin_offset_or_panic(label_sysreturn) as i64)
            .expect("overflow");

        match S::KIND {
            SandboxKind::Linux => {}
            SandboxKind::Generic => {
                let native_page_size = crate::sandbox::get_native_page_size();
                let padded_length = polkavm_common::utils::align_to_next_page_usize(native_page_size, self.asm.len()).unwrap();
                self.asm.resize(padded_length, ArchVisitor::<S, B, G>::PADDING_BYTE);
                self.asm.define_label(self.jump_table_label);
            }
        }

        let module = {
            let init = SandboxInit {
                guest_init: self.init,
                code: &self.asm.finalize(),
                jump_table: native_jump_table,
                sysenter_address,
                sysreturn_address,
            };

            let sandbox_program = S::prepare_program(global, init, address_space).map_err(Error::from_display)?;
            CompiledModule {
                sandbox_program,
                native_code_origin,
                program_counter_to_machine_code_offset_list: self.program_counter_to_machine_code_offset_list,
                program_counter_to_machine_code_offset_map: self.program_counter_to_machine_code_offset_map,
                gas_metering_stub_offsets,
                cache: cache.clone(),
                bitness: B::BITNESS,
                step_tracing: self.step_tracing,
                memset_trampoline_start: polkavm_common::cast::cast(self.memset_trampoline_start).to_u64(),
                memset_trampoline_end: polkavm_common::cast::cast(self.memset_trampoline_end).to_u64(),
            }
        };

        {
            let mut cache = cache.0.lock();
            if cache.per_compilation.is_empty() {
                self.asm.clear();
                self.program_counter_to_label.clear();
                self.export_to_label.clear();
                gas_cost_for_basic_block.clear();

                cache.per_compilation.push(CachePerCompilation {
                    assembler: self.asm,
                    program_counter_to_label: self.program_counter_to_label,
                    export_to_label: self.export_to_label,
                    gas_cost_for_basic_block,
                });
            }
        }

        Ok(module)
    }

    #[inline(always)]
    fn force_start_new_basic_block(&mut self, program_counter: u32, is_valid_jump_target: bool) {
        log::trace!("Starting new basic block at: {program_counter}");
        self.last_basic_block_start = program_counter;
        if is_valid_jump_target {
            if let Some(label) = self.program_counter_to_label.get(program_counter) {
                log::trace!("Label: {label} -> {program_counter} -> {:08x}", self.asm.current_address());
                self.asm.define_label(label);
            } else {
                let label = self.asm.create_label();
                log::trace!("Label: {label} -> {program_counter} -> {:08x}", self.asm.current_address());
                self.program_counter_to_label.insert(program_counter, label);
            }
        }

        if self.step_tracing {
            self.step(program_counter);
        }

        if let Some(gas_metering) = self.gas_metering {
            self.gas_metering_stub_offsets.push(cast(self.asm.len()).to_u32_or_debug_panic());
            ArchVisitor(self).emit_gas_metering_stub(gas_metering);
        }
    }

    fn before_instruction(&self, program_counter: u32) {
        if log::log_enabled!(log::Level::Trace) {
            self.trace_compiled_instruction(program_counter);
        }
    }

    fn after_instruction<const KIND: usize>(&mut self, program_counter: u32, length: u32) {
        const {
            assert!(
                KIND == CONTINUE_BASIC_BLOCK
                    || KIND == END_BASIC_BLOCK_CONDITIONAL
                    || KIND == END_BASIC_BLOCK_UNCONDITIONAL
                    || KIND == END_BASIC_BLOCK_INVALID
            );
        }

        if cfg!(debug_assertions) && !self.step_tracing && self.custom_codegen.is_none() {
            let offset = self.program_counter_to_machine_code_offset_list.last().unwrap().1 as usize;
            let instruction_length = self.asm.len() - offset;
            if instruction_length > VM_COMPILER_MAXIMUM_INSTRUCTION_LENGTH as usize {
                self.panic_on_too_long_instruction(program_counter, instruction_length)
            }
        }

        let next_program_counter = program_counter + length;
        self.program_counter_to_machine_code_offset_list
            .push((ProgramCounter(next_program_counter), self.asm.len() as u32));

        if KIND != CONTINUE_BASIC_BLOCK {
            if KIND == END_BASIC_BLOCK_INVALID && self.first_invalid_offset.is_none() {
                self.first_invalid_offset = Some(ProgramCounter(program_counter));
            }

            if self.gas_metering.is_some() {
                let cost = self.gas_visitor.take_block_cost().unwrap();
                self.gas_cost_for_basic_block.push(cost);
            }

            self.force_start_new_basic_block(next_program_counter, cast(next_program_counter).to_usize() < self.code.len());
        } else if self.step_tracing {
            self.step(next_program_counter);
        }
    }

    #[inline(never)]
    #[cold]
    fn step(&mut self, program_counter: u32) {
        ArchVisitor(self).trace_execution(Some(program_counter));
    }

    #[cold]
    fn current_instruction(&self, program_counter: u32) -> impl core::fmt::Display {
        crate::api::Module::display_instruction_at_impl(
            self.instruction_set,
            self.code,
            self.bitmask,
            matches!(B::BITNESS, Bitness::B64),
            ProgramCounter(program_counter),
        )
    }

    #[cold]
    fn panic_on_too_long_instruction(&self, program_counter: u32, instruction_length: usize) -> ! {
        panic!(
            "maximum instruction length of {} exceeded with {} bytes for instruction: {}",
            VM_COMPILER_MAXIMUM_INSTRUCTION_LENGTH,
            instruction_length,
            self.current_instruction(program_counter),
        );
    }

    #[inline(never)]
    #[cold]
    fn trace_compiled_instruction(&self, program_counter: u32) {
        log::trace!("Compiling {}", self.current_instruction(program_counter));
    }

    fn get_or_forward_declare_label(&mut self, program_counter: u32) -> Option<Label> {
        match self.program_counter_to_label.get(program_counter) {
            Some(label) => Some(label),
            None => {
                // The map's length is `code_length + 2`, so a target equal to its length is also out of range. (See #392.)
                if program_counter >= self.program_counter_to_label.len() {
                    return None;
                }

                let label = self.asm.forward_declare_label();
                log::trace!("Label: {label} -> {program_counter} (forward declare)");

                self.program_counter_to_label.insert(program_counter, label);
                Some(label)
            }
        }
    }

    fn define_label(&mut self, label: Label) {
        log::trace!("Label: {} -> {:08x}", label, self.asm.current_address());
        self.asm.define_label(label);
    }

    #[cold]
    fn broken_fallthrough(&mut self, code_offset: u32, length: u32) {
        ArchVisitor(self).trap(code_offset);
        self.after_instruction::<END_BASIC_BLOCK_INVALID>(code_offset, length);
    }

    #[inline]
    fn with_possible_fallthrough(&mut self, code_offset: u32, length: u32, callback: impl FnOnce(&mut Self)) {
        let next_program_counter = cast(code_offset + length).to_usize();
        if next_program_counter < self.code.len() {
            callback(self);
            self.after_instruction::<END_BASIC_BLOCK_CONDITIONAL>(code_offset, length);
        } else {
            self.broken_fallthrough(code_offset, length)
        }
    }
}

macro_rules! emit_instruction {
    ($self:ident, $code_offset:ident, $length:ident, $kind:ident, $name:ident($($arg:expr),*)) => {{
        $self.before_instruction($code_offset);
        $self.gas_visitor.$name($code_offset, $length $(, $arg)*);
        ArchVisitor($self).$name($($arg),*);
        $self.after_instruction::<$kind>($code_offset, $length);
    }};
}

macro_rules! emit_branch {
    ($self:ident, $code_offset:ident, $length:ident, $name:ident($($arg:expr),*)) => {{
        $self.before_instruction($code_offset);
        $self.gas_visitor.$name($code_offset, $length $(, $arg)*);
        $self.with_possible_fallthrough($code_offset, $length, move |itself| {
            ArchVisitor(itself).$name($($arg),*)
        });
    }};
}

impl<'a, S, B, G> polkavm_common::program::ParsingVisitor for CompilerVisitor<'a, S, B, G>
where
    S: Sandbox,
    B: BitnessT,
    G: GasVisitorT,
{
    type ReturnTy = ();

    fn and_inverted(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, and_inverted(d, s1, s2));
    }

    fn or_inverted(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, or_inverted(d, s1, s2));
    }

    fn xnor(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, xnor(d, s1, s2));
    }

    fn maximum(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, maximum(d, s1, s2));
    }

    fn maximum_unsigned(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, maximum_unsigned(d, s1, s2));
    }

    fn minimum(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, minimum(d, s1, s2));
    }

    fn minimum_unsigned(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, minimum_unsigned(d, s1, s2));
    }

    fn rotate_left_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_left_32(d, s1, s2));
    }

    fn rotate_left_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_left_64(d, s1, s2));
    }

    fn rotate_right_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_right_32(d, s1, s2));
    }

    fn rotate_right_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_right_64(d, s1, s2));
    }

    #[inline(always)]
    fn invalid(&mut self, code_offset: u32, length: u32) -> Self::ReturnTy {
        self.before_instruction(code_offset);
        self.gas_visitor.trap(code_offset, length);
        ArchVisitor(self).invalid(code_offset);
        self.after_instruction::<END_BASIC_BLOCK_INVALID>(code_offset, length);
    }

    #[inline(always)]
    fn trap(&mut self, code_offset: u32, length: u32) -> Self::ReturnTy {
        self.before_instruction(code_offset);
        self.gas_visitor.trap(code_offset, length);
        ArchVisitor(self).trap(code_offset);
        self.after_instruction::<END_BASIC_BLOCK_UNCONDITIONAL>(code_offset, length);
    }

    #[inline(always)]
    fn fallthrough(&mut self, code_offset: u32, length: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, fallthrough());
    }

    #[inline(always)]
    fn unlikely(&mut self, code_offset: u32, length: u32) -> Self::ReturnTy {
        self.before_instruction(code_offset);
        self.gas_visitor.unlikely(code_offset, length);
        self.after_instruction::<CONTINUE_BASIC_BLOCK>(code_offset, length);
    }

    #[inline(always)]
    fn sbrk(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, sbrk(d, s));
    }

    #[inline(always)]
    fn memset(&mut self, code_offset: u32, length: u32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, memset());
    }

    #[inline(always)]
    fn ecalli(&mut self, code_offset: u32, length: u32, imm: i32) -> Self::ReturnTy {
        self.before_instruction(code_offset);
        self.gas_visitor.ecalli(code_offset, length, imm);
        ArchVisitor(self).ecalli(code_offset, length, imm);
        self.after_instruction::<CONTINUE_BASIC_BLOCK>(code_offset, length);
    }

    #[inline(always)]
    fn set_less_than_unsigned(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, set_less_than_unsigned(d, s1, s2));
    }

    #[inline(always)]
    fn set_less_than_signed(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, set_less_than_signed(d, s1, s2));
    }

    #[inline(always)]
    fn shift_logical_right_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, shift_logical_right_32(d, s1, s2));
    }

    #[inline(always)]
    fn shift_logical_right_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, shift_logical_right_64(d, s1, s2));
    }

    #[inline(always)]
    fn shift_arithmetic_right_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_arithmetic_right_32(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_arithmetic_right_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_arithmetic_right_64(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_logical_left_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, shift_logical_left_32(d, s1, s2));
    }

    #[inline(always)]
    fn shift_logical_left_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, shift_logical_left_64(d, s1, s2));
    }

    #[inline(always)]
    fn xor(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, xor(d, s1, s2));
    }

    #[inline(always)]
    fn and(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, and(d, s1, s2));
    }

    #[inline(always)]
    fn or(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, or(d, s1, s2));
    }

    #[inline(always)]
    fn add_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, add_32(d, s1, s2));
    }

    #[inline(always)]
    fn add_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, add_64(d, s1, s2));
    }

    #[inline(always)]
    fn sub_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, sub_32(d, s1, s2));
    }

    #[inline(always)]
    fn sub_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, sub_64(d, s1, s2));
    }

    #[inline(always)]
    fn mul_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, mul_32(d, s1, s2));
    }

    #[inline(always)]
    fn mul_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, mul_64(d, s1, s2));
    }

    #[inline(always)]
    fn mul_upper_signed_signed(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, mul_upper_signed_signed(d, s1, s2));
    }

    #[inline(always)]
    fn mul_upper_unsigned_unsigned(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            mul_upper_unsigned_unsigned(d, s1, s2)
        );
    }

    #[inline(always)]
    fn mul_upper_signed_unsigned(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            mul_upper_signed_unsigned(d, s1, s2)
        );
    }

    #[inline(always)]
    fn div_unsigned_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, div_unsigned_32(d, s1, s2));
    }

    #[inline(always)]
    fn div_unsigned_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, div_unsigned_64(d, s1, s2));
    }

    #[inline(always)]
    fn div_signed_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, div_signed_32(d, s1, s2));
    }

    #[inline(always)]
    fn div_signed_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, div_signed_64(d, s1, s2));
    }

    #[inline(always)]
    fn rem_unsigned_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rem_unsigned_32(d, s1, s2));
    }

    #[inline(always)]
    fn rem_unsigned_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rem_unsigned_64(d, s1, s2));
    }

    #[inline(always)]
    fn rem_signed_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rem_signed_32(d, s1, s2));
    }

    #[inline(always)]
    fn rem_signed_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: RawReg) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rem_signed_64(d, s1, s2));
    }

    #[inline(always)]
    fn mul_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, mul_imm_32(d, s1, s2));
    }

    #[inline(always)]
    fn mul_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, mul_imm_64(d, s1, s2));
    }

    #[inline(always)]
    fn set_less_than_unsigned_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            set_less_than_unsigned_imm(d, s1, s2)
        );
    }

    #[inline(always)]
    fn set_less_than_signed_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, set_less_than_signed_imm(d, s1, s2));
    }

    #[inline(always)]
    fn set_greater_than_unsigned_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            set_greater_than_unsigned_imm(d, s1, s2)
        );
    }

    #[inline(always)]
    fn set_greater_than_signed_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            set_greater_than_signed_imm(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_logical_right_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_right_imm_32(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_logical_right_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_right_imm_64(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_arithmetic_right_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_arithmetic_right_imm_32(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_arithmetic_right_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_arithmetic_right_imm_64(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_logical_left_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_left_imm_32(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_logical_left_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_left_imm_64(d, s1, s2)
        );
    }

    #[inline(always)]
    fn shift_logical_right_imm_alt_32(&mut self, code_offset: u32, length: u32, d: RawReg, s2: RawReg, s1: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_right_imm_alt_32(d, s2, s1)
        );
    }

    #[inline(always)]
    fn shift_logical_right_imm_alt_64(&mut self, code_offset: u32, length: u32, d: RawReg, s2: RawReg, s1: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_right_imm_alt_64(d, s2, s1)
        );
    }

    #[inline(always)]
    fn shift_arithmetic_right_imm_alt_32(&mut self, code_offset: u32, length: u32, d: RawReg, s2: RawReg, s1: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_arithmetic_right_imm_alt_32(d, s2, s1)
        );
    }

    #[inline(always)]
    fn shift_arithmetic_right_imm_alt_64(&mut self, code_offset: u32, length: u32, d: RawReg, s2: RawReg, s1: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_arithmetic_right_imm_alt_64(d, s2, s1)
        );
    }

    #[inline(always)]
    fn shift_logical_left_imm_alt_32(&mut self, code_offset: u32, length: u32, d: RawReg, s2: RawReg, s1: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_left_imm_alt_32(d, s2, s1)
        );
    }

    #[inline(always)]
    fn shift_logical_left_imm_alt_64(&mut self, code_offset: u32, length: u32, d: RawReg, s2: RawReg, s1: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            shift_logical_left_imm_alt_64(d, s2, s1)
        );
    }

    #[inline(always)]
    fn or_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, imm: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, or_imm(d, s, imm));
    }

    #[inline(always)]
    fn and_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, imm: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, and_imm(d, s, imm));
    }

    #[inline(always)]
    fn xor_imm(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, imm: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, xor_imm(d, s, imm));
    }

    #[inline(always)]
    fn move_reg(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, move_reg(d, s));
    }

    fn count_leading_zero_bits_32(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, count_leading_zero_bits_32(d, s));
    }

    fn count_leading_zero_bits_64(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, count_leading_zero_bits_64(d, s));
    }

    fn count_trailing_zero_bits_32(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, count_trailing_zero_bits_32(d, s));
    }

    fn count_trailing_zero_bits_64(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, count_trailing_zero_bits_64(d, s));
    }

    fn count_set_bits_32(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, count_set_bits_32(d, s));
    }

    fn count_set_bits_64(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, count_set_bits_64(d, s));
    }

    fn sign_extend_8(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, sign_extend_8(d, s));
    }

    fn sign_extend_16(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, sign_extend_16(d, s));
    }

    fn zero_extend_16(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, zero_extend_16(d, s));
    }

    fn reverse_byte(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, reverse_byte(d, s));
    }

    #[inline(always)]
    fn cmov_if_zero(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, c: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, cmov_if_zero(d, s, c));
    }

    #[inline(always)]
    fn cmov_if_not_zero(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, c: RawReg) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, cmov_if_not_zero(d, s, c));
    }

    #[inline(always)]
    fn cmov_if_zero_imm(&mut self, code_offset: u32, length: u32, d: RawReg, c: RawReg, s: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, cmov_if_zero_imm(d, c, s));
    }

    #[inline(always)]
    fn cmov_if_not_zero_imm(&mut self, code_offset: u32, length: u32, d: RawReg, c: RawReg, s: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, cmov_if_not_zero_imm(d, c, s));
    }

    #[inline(always)]
    fn rotate_right_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, c: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_right_imm_32(d, s, c));
    }

    #[inline(always)]
    fn rotate_right_imm_alt_32(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, c: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_right_imm_alt_32(d, s, c));
    }

    #[inline(always)]
    fn rotate_right_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, c: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_right_imm_64(d, s, c));
    }

    #[inline(always)]
    fn rotate_right_imm_alt_64(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, c: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, rotate_right_imm_alt_64(d, s, c));
    }

    #[inline(always)]
    fn add_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, imm: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, add_imm_32(d, s, imm));
    }

    #[inline(always)]
    fn add_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s: RawReg, imm: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, add_imm_64(d, s, imm));
    }

    #[inline(always)]
    fn negate_and_add_imm_32(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, negate_and_add_imm_32(d, s1, s2));
    }

    #[inline(always)]
    fn negate_and_add_imm_64(&mut self, code_offset: u32, length: u32, d: RawReg, s1: RawReg, s2: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, negate_and_add_imm_64(d, s1, s2));
    }

    #[inline(always)]
    fn store_imm_indirect_u8(&mut self, code_offset: u32, length: u32, base: RawReg, offset: i32, value: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_imm_indirect_u8(base, offset, value)
        );
    }

    #[inline(always)]
    fn store_imm_indirect_u16(&mut self, code_offset: u32, length: u32, base: RawReg, offset: i32, value: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_imm_indirect_u16(base, offset, value)
        );
    }

    #[inline(always)]
    fn store_imm_indirect_u32(&mut self, code_offset: u32, length: u32, base: RawReg, offset: i32, value: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_imm_indirect_u32(base, offset, value)
        );
    }

    #[inline(always)]
    fn store_imm_indirect_u64(&mut self, code_offset: u32, length: u32, base: RawReg, offset: i32, value: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_imm_indirect_u64(base, offset, value)
        );
    }

    #[inline(always)]
    fn store_indirect_u8(&mut self, code_offset: u32, length: u32, src: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_indirect_u8(src, base, offset)
        );
    }

    #[inline(always)]
    fn store_indirect_u16(&mut self, code_offset: u32, length: u32, src: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_indirect_u16(src, base, offset)
        );
    }

    #[inline(always)]
    fn store_indirect_u32(&mut self, code_offset: u32, length: u32, src: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_indirect_u32(src, base, offset)
        );
    }

    #[inline(always)]
    fn store_indirect_u64(&mut self, code_offset: u32, length: u32, src: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            store_indirect_u64(src, base, offset)
        );
    }

    #[inline(always)]
    fn store_imm_u8(&mut self, code_offset: u32, length: u32, value: i32, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_imm_u8(value, offset));
    }

    #[inline(always)]
    fn store_imm_u16(&mut self, code_offset: u32, length: u32, value: i32, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_imm_u16(value, offset));
    }

    #[inline(always)]
    fn store_imm_u32(&mut self, code_offset: u32, length: u32, value: i32, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_imm_u32(value, offset));
    }

    #[inline(always)]
    fn store_imm_u64(&mut self, code_offset: u32, length: u32, value: i32, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_imm_u64(value, offset));
    }

    #[inline(always)]
    fn store_u8(&mut self, code_offset: u32, length: u32, src: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_u8(src, offset));
    }

    #[inline(always)]
    fn store_u16(&mut self, code_offset: u32, length: u32, src: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_u16(src, offset));
    }

    #[inline(always)]
    fn store_u32(&mut self, code_offset: u32, length: u32, src: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_u32(src, offset));
    }

    #[inline(always)]
    fn store_u64(&mut self, code_offset: u32, length: u32, src: RawReg, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, store_u64(src, offset));
    }

    #[inline(always)]
    fn load_indirect_u8(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_indirect_u8(dst, base, offset));
    }

    #[inline(always)]
    fn load_indirect_i8(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_indirect_i8(dst, base, offset));
    }

    #[inline(always)]
    fn load_indirect_u16(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            load_indirect_u16(dst, base, offset)
        );
    }

    #[inline(always)]
    fn load_indirect_i16(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            load_indirect_i16(dst, base, offset)
        );
    }

    #[inline(always)]
    fn load_indirect_u32(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            load_indirect_u32(dst, base, offset)
        );
    }

    #[inline(always)]
    fn load_indirect_i32(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            load_indirect_i32(dst, base, offset)
        );
    }

    #[inline(always)]
    fn load_indirect_u64(&mut self, code_offset: u32, length: u32, dst: RawReg, base: RawReg, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(
            self,
            code_offset,
            length,
            CONTINUE_BASIC_BLOCK,
            load_indirect_u64(dst, base, offset)
        );
    }

    #[inline(always)]
    fn load_u8(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_u8(dst, offset));
    }

    #[inline(always)]
    fn load_i8(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_i8(dst, offset));
    }

    #[inline(always)]
    fn load_u16(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_u16(dst, offset));
    }

    #[inline(always)]
    fn load_i16(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_i16(dst, offset));
    }

    #[inline(always)]
    fn load_u32(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_u32(dst, offset));
    }

    #[inline(always)]
    fn load_i32(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_i32(dst, offset));
    }

    #[inline(always)]
    fn load_u64(&mut self, code_offset: u32, length: u32, dst: RawReg, offset: i32) -> Self::ReturnTy {
        assert_eq!(B::BITNESS, Bitness::B64);
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_u64(dst, offset));
    }

    #[inline(always)]
    fn branch_less_unsigned(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: RawReg, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_less_unsigned(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_less_signed(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: RawReg, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_less_signed(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_greater_or_equal_unsigned(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: RawReg, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_greater_or_equal_unsigned(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_greater_or_equal_signed(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: RawReg, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_greater_or_equal_signed(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_eq(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: RawReg, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_eq(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_not_eq(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: RawReg, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_not_eq(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_eq_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_eq_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_not_eq_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_not_eq_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_less_unsigned_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_less_unsigned_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_less_signed_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_less_signed_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_greater_or_equal_unsigned_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_greater_or_equal_unsigned_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_greater_or_equal_signed_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_greater_or_equal_signed_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_less_or_equal_unsigned_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_less_or_equal_unsigned_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_less_or_equal_signed_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_less_or_equal_signed_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_greater_unsigned_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_greater_unsigned_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn branch_greater_signed_imm(&mut self, code_offset: u32, length: u32, s1: RawReg, s2: i32, imm: u32) -> Self::ReturnTy {
        emit_branch!(self, code_offset, length, branch_greater_signed_imm(s1, s2, imm));
    }

    #[inline(always)]
    fn load_imm(&mut self, code_offset: u32, length: u32, dst: RawReg, value: i32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_imm(dst, value));
    }

    #[inline(always)]
    fn load_imm64(&mut self, code_offset: u32, length: u32, dst: RawReg, value: u64) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, CONTINUE_BASIC_BLOCK, load_imm64(dst, value));
    }

    #[inline(always)]
    fn load_imm_and_jump(&mut self, code_offset: u32, length: u32, ra: RawReg, value: i32, target: u32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            END_BASIC_BLOCK_UNCONDITIONAL,
            load_imm_and_jump(ra, value, target)
        );
    }

    #[inline(always)]
    fn load_imm_and_jump_indirect(
        &mut self,
        code_offset: u32,
        length: u32,
        ra: RawReg,
        base: RawReg,
        value: i32,
        offset: i32,
    ) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            END_BASIC_BLOCK_UNCONDITIONAL,
            load_imm_and_jump_indirect(ra, base, value, offset)
        );
    }

    #[inline(always)]
    fn jump(&mut self, code_offset: u32, length: u32, target: u32) -> Self::ReturnTy {
        emit_instruction!(self, code_offset, length, END_BASIC_BLOCK_UNCONDITIONAL, jump(target));
    }

    #[inline(always)]
    fn jump_indirect(&mut self, code_offset: u32, length: u32, base: RawReg, offset: i32) -> Self::ReturnTy {
        emit_instruction!(
            self,
            code_offset,
            length,
            END_BASIC_BLOCK_UNCONDITIONAL,
            jump_indirect(base, offset)
        );
    }
}

pub(crate) struct CompiledModule<S>
where
    S: Sandbox,
{
    pub(crate) sandbox_program: S::Program,
    pub(crate) native_code_origin: u64,
    // A sorted list which maps guest code offsets to native code offsets.
    program_counter_to_machine_code_offset_list: Vec<(ProgramCounter, u32)>,
    // Maps guest code offsets for exports to native code offsets.
    // Used to make sure calls into exports are always O(1) instead of O(log n).
    program_counter_to_machine_code_offset_map: HashMap<ProgramCounter, u32>,
    // Basic block offsets.
    gas_metering_stub_offsets: Vec<u32>,
    cache: CompilerCache,
    step_tracing: bool,
    pub(crate) bitness: Bitness,

    pub(crate) memset_trampoline_start: u64,
    pub(crate) memset_trampoline_end: u64,
}

impl<S> CompiledModule<S>
where
    S: Sandbox,
{
    pub fn machine_code(&self) -> &[u8] {
        self.sandbox_program.machine_code()
    }

    pub fn program_counter_to_machine_code_offset(&self) -> &[(ProgramCounter, u32)] {
        &self.program_counter_to_machine_code_offset_list
    }

    pub fn lookup_gas_metering_offset_for_basic_block_if_address_is_in_the_middle(
        &self,
        machine_code_address: u64,
        is_start_of_basic_block: bool,
    ) -> Option<u32> {
        if is_start_of_basic_block {
            return None;
        }

        let machine_code_offset = machine_code_address.checked_sub(self.native_code_origin)?;
        let machine_code_offset = cast(machine_code_offset).to_u32_or_debug_panic();

        if !self.step_tracing {
            // Every basic block starts with a gas metering stub.
            match self.gas_metering_stub_offsets.binary_search(&machine_code_offset) {
                Ok(index) => {
                    // The program counter lies inside a basic block whose remaining
                    // instructions generate no machine code, so the address coincides
                    // with the next block's gas metering stub; the containing block
                    // still has to be charged.
                    index.checked_sub(1).map(|index| self.gas_metering_stub_offsets[index])
                }
                Err(0) => None,
                Err(index) => Some(self.gas_metering_stub_offsets[index - 1]),
            }
        } else {
            // Every basic block starts with a stepping stub, and *then* a gas metering stub.
            match self.gas_metering_stub_offsets.binary_search(&machine_code_offset) {
                Ok(index) => {
                    // We've got an address which exactly matches the gas metering stub?!
                    //
                    // This should never happen, but nevertheless logically this is not the
                    // start of the basic block, so return the offset.
                    Some(self.gas_metering_stub_offsets[index])
                }
                Err(index) => {
                    if let Some(next_stub_offset) = self.gas_metering_stub_offsets.get(index) {
                        let basic_block_boundary =
                            cast(*next_stub_offset).to_u64() - cast(step_prelude_length::<S>()).to_u64() + self.native_code_origin;

                        if machine_code_address == basic_block_boundary {
                            return None;
                        }
                    }

                    Some(self.gas_metering_stub_offsets[index.checked_sub(1)?])
                }
            }
        }
    }

    pub fn native_code_offset_to_address(&self, offset: u32) -> u64 {
        self.native_code_origin + cast(offset).to_u64()
    }

    pub fn lookup_native_code_address(&self, program_counter: ProgramCounter) -> Option<u64> {
        if let Some((last_program_counter, _)) = self.program_counter_to_machine_code_offset_list.last() {
            if program_counter.0 >= last_program_counter.0 {
                return None;
            }
        }

        self.program_counter_to_machine_code_offset_map
            .get(&program_counter)
            .copied()
            .or_else(|| {
                let index = self
                    .program_counter_to_machine_code_offset_list
                    .binary_search_by_key(&program_counter, |&(pc, _)| pc)
                    .ok()?;
                Some(self.program_counter_to_machine_code_offset_list[index].1)
            })
            .map(|native_offset| self.native_code_origin + u64::from(native_offset))
    }

    pub fn program_counter_by_native_code_offset(&self, offset: u64, strict: bool) -> Option<ProgramCounter> {
        let index = match self
            .program_counter_to_machine_code_offset_list
            .binary_search_by_key(&offset, |&(_, native_offset)| u64::from(native_offset))
        {
            Ok(index) => index,
            Err(index) => {
                if !strict && index > 0 && index < self.program_counter_to_machine_code_offset_list.len() {
                    index - 1
                } else {
                    return None;
                }
            }
        };

        Some(self.program_counter_to_machine_code_offset_list[index].0)
    }
}

impl<S> Drop for CompiledModule<S>
where
    S: Sandbox,
{
    fn drop(&mut self) {
        let mut program_counter_to_machine_code_offset_list = core::mem::take(&mut self.program_counter_to_machine_code_offset_list);
        let mut program_counter_to_machine_code_offset_map = core::mem::take(&mut self.program_counter_to_machine_code_offset_map);
        let mut gas_metering_stub_offsets = core::mem::take(&mut self.gas_metering_stub_offsets);
        {
            let mut cache = self.cache.0.lock();
            if cache.per_module.is_empty() {
                program_counter_to_machine_code_offset_list.clear();
                program_counter_to_machine_code_offset_map.clear();
                gas_metering_stub_offsets.clear();
                cache.per_module.push(CachePerModule {
                    program_counter_to_machine_code_offset_list,
                    program_counter_to_machine_code_offset_map,
                    gas_metering_stub_offsets,
                });
            }
        }
    }
}

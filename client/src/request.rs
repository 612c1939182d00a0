//! Building requests: what to execute ([`ExecuteInput`]) and its encryption under a session's
//! envelope, with the input digests the result's commitment is later checked against.

use hypervisor_protocol::wire::{ExecuteRequest, Limits, ProgramKind, PythonRequest};
use hypervisor_protocol::{InputDigests, ProtocolError, Role};

use crate::Session;

/// What to execute.
#[derive(Debug, Clone)]
pub struct ExecuteInput<'a> {
    /// The program: component bytes, or a script's UTF-8 source on the Python routes.
    pub program: &'a [u8],
    /// Arguments (after `argv[0]`).
    pub args: Vec<Vec<u8>>,
    /// Standard input.
    pub stdin: Option<&'a [u8]>,
    /// Limits to ask for.
    pub limits: Option<Limits>,
    /// The program's kind, if the client says (`None`: the host recognises it).
    pub program_kind: Option<ProgramKind>,
}

impl<'a> ExecuteInput<'a> {
    /// A program (component or script) with no arguments.
    pub fn new(program: &'a [u8]) -> Self {
        Self {
            program,
            args: Vec::new(),
            stdin: None,
            limits: None,
            program_kind: None,
        }
    }

    /// Sets the arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<[u8]>,
    {
        self.args = args.into_iter().map(|a| a.as_ref().to_vec()).collect();
        self
    }

    /// Sets stdin.
    #[must_use]
    pub fn stdin(mut self, stdin: &'a [u8]) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// Sets limits.
    #[must_use]
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Declares the program's kind (the host refuses a program of another kind).
    #[must_use]
    pub fn program_kind(mut self, kind: ProgramKind) -> Self {
        self.program_kind = Some(kind);
        self
    }
}

impl Session {
    /// Encrypts an execution request, returning it with the digests needed to check the
    /// result's commitment later.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn encrypt_execution(
        &self,
        input: &ExecuteInput<'_>,
    ) -> Result<(ExecuteRequest, InputDigests), ProtocolError> {
        let (mut req, program, digests) = self.encrypt_execution_parts(input)?;
        req.encrypted_wasm = hex::encode(program);
        Ok((req, digests))
    }

    /// As [`Self::encrypt_execution`], with the program's envelope returned as bytes and left
    /// out of the request (`encrypted_wasm` empty): for a multipart upload, whose binary part
    /// carries it.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn encrypt_execution_parts(
        &self,
        input: &ExecuteInput<'_>,
    ) -> Result<(ExecuteRequest, Vec<u8>, InputDigests), ProtocolError> {
        let env = self.envelope();
        let mut encrypted_arguments = Vec::with_capacity(input.args.len());
        for (i, a) in input.args.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| ProtocolError::Encrypt)?;
            encrypted_arguments.push(hex::encode(env.seal(Role::Argument(i), a)?));
        }
        let program = env.seal(Role::Program, input.program)?;
        let req = ExecuteRequest {
            encrypted_wasm: String::new(),
            program_kind: input.program_kind,
            encrypted_arguments,
            encrypted_stdin: match input.stdin {
                Some(s) => Some(hex::encode(env.seal(Role::Stdin, s)?)),
                None => None,
            },
            public_key: self.client_public.to_hex(),
            session_id: Some(self.id),
            limits: input.limits,
        };
        let digests =
            InputDigests::compute(input.program, &input.args, input.stdin.unwrap_or_default());
        Ok((req, program, digests))
    }

    /// Encrypts a Python script request (the Python routes): the same envelopes as an
    /// execution, with the script's source as the program.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn encrypt_python(
        &self,
        input: &ExecuteInput<'_>,
    ) -> Result<(PythonRequest, InputDigests), ProtocolError> {
        let (req, digests) = self.encrypt_execution(input)?;
        let req = PythonRequest {
            encrypted_python: req.encrypted_wasm,
            encrypted_arguments: req.encrypted_arguments,
            encrypted_stdin: req.encrypted_stdin,
            public_key: req.public_key,
            session_id: req.session_id,
            limits: req.limits,
        };
        Ok((req, digests))
    }
}

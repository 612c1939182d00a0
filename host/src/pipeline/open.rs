//! The pipeline's one door: every request that runs code becomes an [`Opened`] request here,
//! whichever front it came through.
//!
//! - **Encrypted** requests ([`Pipeline::open`]): find the session and check it belongs to the
//!   caller's key, decode every hex field (cheap) before decrypting any, then open each
//!   envelope under its own role, check the arguments are UTF-8, and resolve the limits.
//! - **Clear** requests ([`Opened::clear`]): the public agents' invocations, whose fields
//!   arrive in the clear.
//!
//! The program is either a ciphertext opened here (execute routes) or code the host already
//! holds, known by its hash (deployed agents); the input is stdin (commands, CLI agents) or an
//! event (handler agents), each with its own envelope role.

use std::sync::Arc;

use bytes::Bytes;
use hypervisor_protocol::wire::{Limits, decode_hex};
use hypervisor_protocol::{EncodedPublicKey, Envelope, InputDigests, Role, sha256};
use uuid::Uuid;

use super::binary::Sent;
use super::route::RouteKind;
use super::{Pipeline, resolve_limits};
use crate::crypto::plaintext::Plaintext;
use crate::engine::RunLimits;
use crate::error::ApiError;
use crate::session::Session;

/// Where a request's program comes from.
pub(super) enum ProgramSource<'a> {
    /// Encrypted to the caller's session under role program: the field's name (for error
    /// messages: `encrypted_wasm`, `encrypted_python`) and the envelope as it was sent (hex
    /// in the JSON body, or the bytes of a binary part).
    Encrypted {
        /// The field's name.
        field: &'static str,
        /// The envelope.
        sent: Sent<'a>,
    },
    /// Code the host already holds (a deployed agent's).
    Stored {
        /// SHA-256 of the component.
        hash: [u8; 32],
        /// Its size, bytes.
        size: u64,
    },
}

/// What the program reads its input as; each has its own envelope role, so an execution's
/// stdin does not open as an event, nor an event as stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InputKind {
    /// A command's (or CLI agent's) stdin: role stdin.
    Stdin,
    /// A handler agent's event: role event.
    Event,
}

impl InputKind {
    fn role(self) -> Role {
        match self {
            Self::Stdin => Role::Stdin,
            Self::Event => Role::Event,
        }
    }
}

/// The limits a request runs with, before admission: asked in the request (resolved against
/// the operator's defaults and maxima when the request is opened), or already resolved.
pub(super) enum AskedLimits<'a> {
    /// The request's `limits` field.
    Request(Option<&'a Limits>),
    /// Resolved by the caller (agents: their deployment's limits under the caller's).
    Resolved(RunLimits),
}

/// The encrypted fields of a request, as they arrived.
pub(super) struct EncryptedRequest<'a> {
    /// The program.
    pub program: ProgramSource<'a>,
    /// `encrypted_arguments`, hex, each under role argument(i).
    pub arguments: &'a [String],
    /// The input's field name and hex, if sent.
    pub input: Option<(&'static str, &'a str)>,
    /// What the input is.
    pub input_kind: InputKind,
    /// The caller's session key (hex).
    pub public_key: &'a str,
    /// The session.
    pub session_id: Option<Uuid>,
    /// The limits.
    pub limits: AskedLimits<'a>,
}

impl<'a> EncryptedRequest<'a> {
    /// An execution route's request: its program under role program in field `field`, its
    /// arguments and stdin, and the limits it asks for.
    #[allow(clippy::too_many_arguments)]
    pub fn execution(
        field: &'static str,
        program: Sent<'a>,
        arguments: &'a [String],
        stdin: Option<&'a str>,
        public_key: &'a str,
        session_id: Option<Uuid>,
        limits: Option<&'a Limits>,
    ) -> Self {
        Self {
            program: ProgramSource::Encrypted {
                field,
                sent: program,
            },
            arguments,
            input: stdin.map(|s| ("encrypted_stdin", s)),
            input_kind: InputKind::Stdin,
            public_key,
            session_id,
            limits: AskedLimits::Request(limits),
        }
    }
}

/// Who is calling.
pub(super) enum Caller {
    /// An encrypted request: the session it was sealed to and the key that owns it.
    Session {
        /// The session.
        session: Arc<Session>,
        /// Its owner's key.
        key: EncodedPublicKey,
    },
    /// A clear request naming its caller's key.
    Key(EncodedPublicKey),
    /// Another agent's call (in-process): the agent's owner's key stands for it.
    Agent(EncodedPublicKey),
    /// A clear request from nobody in particular.
    Anonymous,
}

impl Caller {
    /// The caller's key, if known.
    pub fn key(&self) -> Option<&EncodedPublicKey> {
        match self {
            Self::Session { key, .. } | Self::Key(key) | Self::Agent(key) => Some(key),
            Self::Anonymous => None,
        }
    }

    /// Hex SHA-256 of the caller's key as records keep it; empty for anonymous callers.
    pub fn key_hash(&self) -> String {
        self.key()
            .map(|k| hex::encode(sha256(k.as_bytes())))
            .unwrap_or_default()
    }
}

/// The program of an opened request.
pub(super) enum Program {
    /// Plaintext received with the request (shared with the compile cache without a copy).
    Plain {
        /// SHA-256 of the bytes.
        hash: [u8; 32],
        /// The bytes.
        bytes: Arc<Plaintext>,
    },
    /// Code the host holds.
    Stored {
        /// SHA-256 of the component.
        hash: [u8; 32],
        /// Its size, bytes.
        size: u64,
    },
}

impl Program {
    /// SHA-256 of the program.
    pub fn hash(&self) -> [u8; 32] {
        match self {
            Self::Plain { hash, .. } | Self::Stored { hash, .. } => *hash,
        }
    }

    /// Its size, bytes.
    pub fn size(&self) -> u64 {
        match self {
            Self::Plain { bytes, .. } => u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            Self::Stored { size, .. } => *size,
        }
    }
}

/// A request through the door: who calls, what runs, with which input and limits.
pub(super) struct Opened {
    /// Who is calling.
    pub caller: Caller,
    /// The program.
    pub program: Program,
    /// Arguments, UTF-8 checked (wiped when the request ends).
    pub args: zeroize::Zeroizing<Vec<String>>,
    /// The input: stdin or event bytes.
    pub input: Bytes,
    /// The limits asked for (admission may tighten them).
    pub limits: RunLimits,
}

impl Opened {
    /// A clear request to code the host holds.
    pub fn clear(
        caller: Caller,
        program: Program,
        args: Vec<String>,
        input: Bytes,
        limits: RunLimits,
    ) -> Self {
        Self {
            caller,
            program,
            args: zeroize::Zeroizing::new(args),
            input,
            limits,
        }
    }

    /// Total plaintext input size (arguments and input), bytes.
    pub fn input_size(&self) -> u64 {
        let args: usize = self.args.iter().map(String::len).sum();
        u64::try_from(args + self.input.len()).unwrap_or(u64::MAX)
    }

    /// The session of an encrypted request.
    pub fn session(&self) -> Option<&Arc<Session>> {
        match &self.caller {
            Caller::Session { session, .. } => Some(session),
            _ => None,
        }
    }

    /// The digests a result commitment and a receipt bind: the program's hash, each
    /// argument's and the input's (an event is bound where stdin is).
    pub fn digests(&self) -> InputDigests {
        InputDigests {
            program: self.program.hash(),
            arguments: self.args.iter().map(|a| sha256(a.as_bytes())).collect(),
            stdin: sha256(&self.input),
        }
    }
}

impl Pipeline {
    /// Opens an encrypted request: session, decode, decrypt, limits. On a verifiable `route`
    /// the session must be verifiable.
    pub(super) fn open(
        &self,
        req: EncryptedRequest<'_>,
        route: RouteKind,
    ) -> Result<Opened, ApiError> {
        // session
        let key = EncodedPublicKey::from_hex("public_key", req.public_key)?;
        let session = self.lookup_session(req.session_id, &key)?;
        if route.verifiable && session.attested.is_none() {
            return Err(ApiError::SessionNotVerifiable(session.id));
        }

        // decode everything first (cheap), then decrypt each field under its role
        self.check_argument_count(req.arguments.len())?;
        let (program_ct, stored) = match req.program {
            ProgramSource::Encrypted { field, sent } => (Some(sent.into_bytes(field)?), None),
            ProgramSource::Stored { hash, size } => (None, Some(Program::Stored { hash, size })),
        };
        let arg_cts = req
            .arguments
            .iter()
            .enumerate()
            .map(|(i, a)| decode_hex(&format!("encrypted_arguments[{i}]"), a))
            .collect::<Result<Vec<_>, _>>()?;
        let input_ct = req
            .input
            .map(|(field, hex)| decode_hex(field, hex))
            .transpose()?;

        let envelope = Envelope::new(&session.key, session.id);
        let program = match (program_ct, stored) {
            (Some(ct), _) => {
                let bytes = Arc::new(Plaintext::new(envelope.open(Role::Program, &ct)?));
                drop(ct);
                Program::Plain {
                    hash: self.digests.sha256(&bytes),
                    bytes,
                }
            }
            (None, Some(stored)) => stored,
            (None, None) => {
                return Err(ApiError::Internal("encrypted program not decoded".into()));
            }
        };
        let mut raw_args = Vec::with_capacity(arg_cts.len());
        for (i, ct) in arg_cts.iter().enumerate() {
            let index = u32::try_from(i)
                .map_err(|_| ApiError::InvalidRequest("too many arguments".into()))?;
            raw_args.push(envelope.open(Role::Argument(index), ct)?);
        }
        let mut input = match &input_ct {
            Some(ct) => envelope.open(req.input_kind.role(), ct)?,
            None => Vec::new(),
        };
        // An empty event is no event: the handler gets `null`, as from a clear invocation
        // without one, and the commitment binds that.
        if matches!(req.input_kind, InputKind::Event) && input.is_empty() {
            input = hypervisor_protocol::agents::NO_EVENT.to_vec();
        }
        let args = raw_args
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                String::from_utf8(a).map_err(|_| {
                    ApiError::InvalidArgument(format!(
                        "argument {i} is not valid UTF-8 (arguments are strings)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        // limits
        let limits = match req.limits {
            AskedLimits::Request(asked) => {
                resolve_limits(asked, &self.config.limits, self.engine.fuel_enabled())?
            }
            AskedLimits::Resolved(limits) => limits,
        };
        Ok(Opened {
            caller: Caller::Session { session, key },
            program,
            args: zeroize::Zeroizing::new(args),
            input: crate::crypto::plaintext::bytes(input),
            limits,
        })
    }

    /// Refuses more arguments than `http.max_arguments`, on every route that takes them.
    pub(super) fn check_argument_count(&self, n: usize) -> Result<(), ApiError> {
        let max = self.config.http.max_arguments;
        if n > max {
            return Err(ApiError::InvalidRequest(format!(
                "{n} arguments exceed this host's maximum of {max}"
            )));
        }
        Ok(())
    }
}

//! Client library for WASM Hypervisor: open an encrypted session, send an encrypted component
//! with encrypted arguments, decrypt the result and check its commitment.
//!
//! It speaks the protocol of `docs/PROTOCOL.md` through `hypervisor-protocol` and plain HTTP;
//! it does not depend on wasmtime.
//!
//! ```no_run
//! use hypervisor_client::{Client, ExecuteInput};
//! use hypervisor_protocol::ClientSecret;
//!
//! let client = Client::new("http://127.0.0.1:3000");
//! let key = ClientSecret::generate()?;
//! let session = client.create_session(&key)?;
//! let wasm = std::fs::read("target/wasm/hello.wasm")?;
//! let run = client.execute(&session, &ExecuteInput::new(&wasm).args(["world"]))?;
//! assert_eq!(run.stdout()?, b"Hello world\n");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod agents;
pub mod keyfile;
pub mod proof;
pub mod verify;
pub mod x402;

use std::time::Duration;

use hypervisor_protocol::wire::{
    CreateKeypairRequest, CreateKeypairResponse, EncryptedResult, ErrorDetail, ErrorResponse,
    ExecuteRequest, ExecutionResult, Limits, PythonRequest, Receipt, SessionQuote,
    VerifiableKeypairResponse, VerifiableResult, decode_hex,
};
use hypervisor_protocol::{
    ClientSecret, EncodedPublicKey, Envelope, InputDigests, ProtocolError, Role, SessionKey,
    result_commitment,
};
use uuid::Uuid;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or the connection broke.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server answered with an error.
    #[error("server refused the request ({status} {code}): {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// A protocol operation failed (for example, the result did not decrypt).
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// The decrypted result does not match the commitment the server sent.
    #[error("the result does not match its commitment: do not trust it")]
    CommitmentMismatch,
    /// The server's answer is not what the protocol says.
    #[error("unexpected response: {0}")]
    BadResponse(String),
    /// The attestation chain, the session statement or the receipt did not verify.
    #[error(transparent)]
    Verify(#[from] verify::VerifyError),
}

/// An HTTP client for one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

/// An open session: the derived key and the ids needed to use it.
pub struct Session {
    /// The session id.
    pub id: Uuid,
    /// Our public key.
    pub client_public: EncodedPublicKey,
    /// The server's session public key.
    pub server_public: EncodedPublicKey,
    /// Seconds the session lives.
    pub expires_in_seconds: u64,
    /// For verifiable sessions: the quote and the key it verified to.
    pub verified: Option<(SessionQuote, verify::VerifiedKey)>,
    key: SessionKey,
}

impl Session {
    /// Derives the session from a `create_keypair` response.
    ///
    /// # Errors
    /// If the server's public key is invalid.
    pub fn from_response(
        secret: &ClientSecret,
        resp: &CreateKeypairResponse,
    ) -> Result<Self, ProtocolError> {
        let server_public = EncodedPublicKey::from_hex("session_pubkey", &resp.session_pubkey)?;
        let key = SessionKey::for_client(secret, &server_public, &resp.session_id);
        Ok(Self {
            id: resp.session_id,
            client_public: secret.public_key(),
            server_public,
            expires_in_seconds: resp.expires_in_seconds,
            verified: None,
            key,
        })
    }

    /// The envelope of this session.
    pub fn envelope(&self) -> Envelope<'_> {
        Envelope::new(&self.key, self.id)
    }

    /// Encrypts an execution request, returning it with the digests needed to check the
    /// result's commitment later.
    ///
    /// # Errors
    /// Only if the OS random number generator fails.
    pub fn encrypt_execution(
        &self,
        input: &ExecuteInput<'_>,
    ) -> Result<(ExecuteRequest, InputDigests), ProtocolError> {
        let env = self.envelope();
        let mut encrypted_arguments = Vec::with_capacity(input.args.len());
        for (i, a) in input.args.iter().enumerate() {
            let i = u32::try_from(i).map_err(|_| ProtocolError::Encrypt)?;
            encrypted_arguments.push(hex::encode(env.seal(Role::Argument(i), a)?));
        }
        let req = ExecuteRequest {
            encrypted_wasm: hex::encode(env.seal(Role::Program, input.program)?),
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
        Ok((req, digests))
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

    /// Decrypts a result and checks its commitment against the digests of what we sent.
    ///
    /// # Errors
    /// Decryption failure, [`ClientError::CommitmentMismatch`], or a malformed result.
    pub fn open_result(
        &self,
        result: &EncryptedResult,
        digests: &InputDigests,
    ) -> Result<(ExecutionResult, Vec<u8>), ClientError> {
        if result.session_id != self.id {
            return Err(ClientError::BadResponse(
                "result is for another session".into(),
            ));
        }
        let sealed = decode_hex("encrypted_result", &result.encrypted_result)?;
        let plaintext = self.envelope().open(Role::Result, &sealed)?;
        let expected = result_commitment(&self.id, digests, &plaintext);
        let claimed = decode_hex("result_commitment", &result.result_commitment)?;
        if claimed.as_slice() != expected.as_slice() {
            return Err(ClientError::CommitmentMismatch);
        }
        let doc: ExecutionResult = serde_json::from_slice(&plaintext)
            .map_err(|e| ClientError::BadResponse(format!("result document: {e}")))?;
        Ok((doc, plaintext))
    }
}

impl Session {
    /// Checks an execution response: decrypts the result, checks the commitment, and on a
    /// verifiable session verifies the receipt (signature by the session's verified key, this
    /// session, this commitment, these inputs).
    ///
    /// # Errors
    /// Server, protocol, commitment and [`ClientError::Verify`] errors.
    pub fn check_response(
        &self,
        status: u16,
        json: serde_json::Value,
        digests: &InputDigests,
    ) -> Result<Execution, ClientError> {
        let (encrypted, receipt, stopped) = if status == 200 {
            if self.verified.is_some() {
                let r: VerifiableResult = serde_json::from_value(json)
                    .map_err(|e| ClientError::BadResponse(format!("execute: {e}")))?;
                (r.result, Some(r.result_quote), None)
            } else {
                let r: EncryptedResult = serde_json::from_value(json)
                    .map_err(|e| ClientError::BadResponse(format!("execute: {e}")))?;
                (r, None, None)
            }
        } else {
            let err: ErrorResponse = serde_json::from_value(json.clone())
                .map_err(|_| server_error(status, json.clone()))?;
            match err.result {
                Some(r) => (r, err.result_quote, Some(err.error)),
                None => return Err(server_error(status, json)),
            }
        };
        let (result, plaintext) = self.open_result(&encrypted, digests)?;
        let mut commitment = [0u8; 32];
        commitment.copy_from_slice(&decode_hex(
            "result_commitment",
            &encrypted.result_commitment,
        )?);
        if let Some((_, key)) = &self.verified {
            let receipt = receipt.as_ref().ok_or_else(|| {
                ClientError::BadResponse("verifiable result without a receipt".into())
            })?;
            verify::verify_receipt(receipt, key, &self.id, &commitment)?;
            check_receipt_inputs(receipt, digests)?;
        }
        Ok(Execution {
            result,
            plaintext,
            commitment,
            stopped,
            receipt,
            settlement: None,
        })
    }
}

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
}

impl<'a> ExecuteInput<'a> {
    /// A program (component or script) with no arguments.
    pub fn new(program: &'a [u8]) -> Self {
        Self {
            program,
            args: Vec::new(),
            stdin: None,
            limits: None,
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
}

/// A finished execution, decrypted and checked.
#[derive(Debug, Clone)]
pub struct Execution {
    /// The result document.
    pub result: ExecutionResult,
    /// Its exact plaintext bytes (what the commitment covers).
    pub plaintext: Vec<u8>,
    /// The commitment, checked.
    pub commitment: [u8; 32],
    /// When the guest was stopped by a limit or a trap, the server's error (the result then
    /// holds what the guest produced until it stopped).
    pub stopped: Option<ErrorDetail>,
    /// On verifiable routes: the receipt, already verified against the session's attested key
    /// and the recomputed commitment.
    pub receipt: Option<Receipt>,
    /// On paid routes: the decoded `PAYMENT-RESPONSE` / `X-PAYMENT-RESPONSE`.
    pub settlement: Option<serde_json::Value>,
}

impl Execution {
    /// Decoded stdout.
    ///
    /// # Errors
    /// If the server sent invalid base64.
    pub fn stdout(&self) -> Result<Vec<u8>, ClientError> {
        self.result
            .stdout_bytes()
            .map_err(|e| ClientError::BadResponse(format!("stdout: {e}")))
    }

    /// Decoded stderr.
    ///
    /// # Errors
    /// If the server sent invalid base64.
    pub fn stderr(&self) -> Result<Vec<u8>, ClientError> {
        self.result
            .stderr_bytes()
            .map_err(|e| ClientError::BadResponse(format!("stderr: {e}")))
    }
}

/// The largest response the client reads.
const MAX_RESPONSE_BYTES: u64 = 256 << 20;

impl Client {
    /// A client for `base_url` (e.g. `http://127.0.0.1:3000`).
    pub fn new(base_url: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Self {
            base: base_url.trim_end_matches('/').to_string(),
            agent,
        }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// `GET /ping`.
    ///
    /// # Errors
    /// Transport errors or a non-200 answer.
    pub fn ping(&self) -> Result<String, ClientError> {
        let (status, body) = self.get_text("/ping")?;
        if status != 200 {
            return Err(ClientError::BadResponse(format!("ping answered {status}")));
        }
        Ok(body)
    }

    /// `GET /attestation`: the provider kind and, when configured, the attested key.
    ///
    /// # Errors
    /// Transport errors or a malformed answer.
    pub fn attestation(
        &self,
    ) -> Result<(String, Option<hypervisor_protocol::wire::Attestation>), ClientError> {
        let (status, text) = self.get_text("/attestation")?;
        let json: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| ClientError::BadResponse(format!("attestation: {e}")))?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        let provider = json["provider"].as_str().unwrap_or("unknown").to_string();
        let att = if json["attestation"].is_null() {
            None
        } else {
            Some(
                serde_json::from_value(json["attestation"].clone())
                    .map_err(|e| ClientError::BadResponse(format!("attestation: {e}")))?,
            )
        };
        Ok((provider, att))
    }

    /// GETs `path` and returns the status and the body text, whatever the status.
    fn get_text(&self, path: &str) -> Result<(u16, String), ClientError> {
        let resp = self
            .agent
            .get(format!("{}{}", self.base, path))
            .call()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        read_response(resp)
    }

    /// POSTs `body` to `path` and decodes a 200 answer as `T`; any other status becomes
    /// [`ClientError::Server`].
    fn post_expect<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<T, ClientError> {
        let (status, json) = self.post_json(path, body)?;
        if status != 200 {
            return Err(server_error(status, json));
        }
        serde_json::from_value(json).map_err(|e| ClientError::BadResponse(format!("{path}: {e}")))
    }

    /// POSTs JSON and returns the status and the JSON answer, whatever the status.
    ///
    /// # Errors
    /// Transport errors, or a body that is not JSON.
    pub fn post_json(
        &self,
        path: &str,
        body: &impl serde::Serialize,
    ) -> Result<(u16, serde_json::Value), ClientError> {
        let resp = self
            .agent
            .post(format!("{}{}", self.base, path))
            .send_json(body)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let (status, text) = read_response(resp)?;
        let json = serde_json::from_str(&text)
            .map_err(|e| ClientError::BadResponse(format!("{status} with a non-JSON body: {e}")))?;
        Ok((status, json))
    }

    /// `POST /encrypt/create_keypair`, then derives the session key.
    ///
    /// # Errors
    /// Transport, server or protocol errors.
    pub fn create_session(&self, secret: &ClientSecret) -> Result<Session, ClientError> {
        let req = CreateKeypairRequest {
            pubkey: secret.public_key().to_hex(),
        };
        let resp: CreateKeypairResponse = self.post_expect("/encrypt/create_keypair", &req)?;
        Ok(Session::from_response(secret, &resp)?)
    }

    /// `POST /verifiable/encrypt/create_keypair`, then verifies the evidence chain and the
    /// session statement under `policy` before deriving the session key.
    ///
    /// # Errors
    /// Transport, server, protocol and [`ClientError::Verify`] errors.
    pub fn create_verifiable_session(
        &self,
        secret: &ClientSecret,
        policy: &verify::Policy,
    ) -> Result<Session, ClientError> {
        let req = CreateKeypairRequest {
            pubkey: secret.public_key().to_hex(),
        };
        let resp: VerifiableKeypairResponse =
            self.post_expect("/verifiable/encrypt/create_keypair", &req)?;
        let plain = CreateKeypairResponse {
            session_pubkey: resp.session_pubkey.clone(),
            session_id: resp.session_id,
            expires_in_seconds: resp.expires_in_seconds,
        };
        let mut session = Session::from_response(secret, &plain)?;
        let key = verify::verify_session(
            &resp.quote,
            &session.id,
            &session.server_public,
            &session.client_public,
            policy,
        )?;
        session.verified = Some((resp.quote, key));
        Ok(session)
    }

    /// `POST /test/execute/wasm`: encrypts, sends, decrypts, checks the commitment. A guest
    /// stopped by a limit or a trap is returned as an [`Execution`] with `stopped` set (its
    /// partial output is still decrypted); every other refusal is [`ClientError::Server`].
    ///
    /// # Errors
    /// Transport, server, protocol and commitment errors.
    pub fn execute(
        &self,
        session: &Session,
        input: &ExecuteInput<'_>,
    ) -> Result<Execution, ClientError> {
        self.execute_on("/test/execute/wasm", session, input)
    }

    /// `POST /verifiable/execute/wasm` on a session from [`Self::create_verifiable_session`]:
    /// like [`Self::execute`], and the receipt must be signed by the session's verified key,
    /// name this session and commit to exactly the result we decrypted.
    ///
    /// # Errors
    /// As [`Self::execute`], plus [`ClientError::Verify`].
    pub fn execute_verifiable(
        &self,
        session: &Session,
        input: &ExecuteInput<'_>,
    ) -> Result<Execution, ClientError> {
        if session.verified.is_none() {
            return Err(ClientError::BadResponse(
                "the session is not verifiable".into(),
            ));
        }
        self.execute_on("/verifiable/execute/wasm", session, input)
    }

    /// Sends an execution to `route` and returns the raw JSON answer (for tests that tamper
    /// with responses) together with the digests needed to check it.
    ///
    /// # Errors
    /// Transport or protocol errors.
    pub fn execute_raw(
        &self,
        route: &str,
        session: &Session,
        input: &ExecuteInput<'_>,
    ) -> Result<(u16, serde_json::Value, InputDigests), ClientError> {
        let (req, digests) = session.encrypt_execution(input)?;
        let (status, json) = self.post_json(route, &req)?;
        Ok((status, json, digests))
    }

    /// `POST /test/policy/unsafe/python` (or, on a verifiable session,
    /// `/test/policy/unsafe/python/attest`, whose receipt is verified like
    /// [`Self::execute_verifiable`]'s): runs `input.program` as a Python script.
    ///
    /// # Errors
    /// As [`Self::execute`].
    pub fn execute_python(
        &self,
        session: &Session,
        input: &ExecuteInput<'_>,
    ) -> Result<Execution, ClientError> {
        let route = if session.verified.is_some() {
            "/test/policy/unsafe/python/attest"
        } else {
            "/test/policy/unsafe/python"
        };
        let (req, digests) = session.encrypt_python(input)?;
        let (status, json) = self.post_json(route, &req)?;
        session.check_response(status, json, &digests)
    }

    /// Runs `input` on a paid route (`/x402_execute/test/wasm`, `/x402_execute/verifiable/wasm`
    /// (on a verifiable session) or, with `python`, `/x402_policy/unsafe/python`): sends it,
    /// and on a 402 pays with `wallet` as x402's fetch wrappers do and sends it again.
    ///
    /// # Errors
    /// As [`Self::execute`]; a refused payment is [`ClientError::Server`] with status 402.
    pub fn execute_paid(
        &self,
        session: &Session,
        input: &ExecuteInput<'_>,
        python: bool,
        wallet: &x402::Wallet,
    ) -> Result<Execution, ClientError> {
        let route = match (python, session.verified.is_some()) {
            (true, _) => "/x402_policy/unsafe/python",
            (false, true) => "/x402_execute/verifiable/wasm",
            (false, false) => "/x402_execute/test/wasm",
        };
        let (body, digests) = if python {
            let (r, d) = session.encrypt_python(input)?;
            (serde_json::to_value(r), d)
        } else {
            let (r, d) = session.encrypt_execution(input)?;
            (serde_json::to_value(r), d)
        };
        let body = body.map_err(|e| ClientError::BadResponse(e.to_string()))?;
        let (mut status, mut headers, mut json) = self.post_json_with(route, &body, &[])?;
        if status == 402 {
            let offer = x402::Offer::from_402(header(&headers, "payment-required"), &json)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (name, value) = wallet.pay(&offer, now)?;
            (status, headers, json) = self.post_json_with(route, &body, &[(name, value)])?;
        }
        let mut run = session.check_response(status, json, &digests)?;
        run.settlement = header(&headers, "payment-response")
            .or_else(|| header(&headers, "x-payment-response"))
            .and_then(x402::decode_settlement);
        Ok(run)
    }

    /// POSTs JSON with extra headers; returns the status, the response headers (names
    /// lowercase) and the JSON answer, whatever the status.
    ///
    /// # Errors
    /// Transport errors, or a body that is not JSON.
    pub fn post_json_with(
        &self,
        path: &str,
        body: &impl serde::Serialize,
        headers: &[(&str, String)],
    ) -> Result<(u16, Headers, serde_json::Value), ClientError> {
        let mut request = self.agent.post(format!("{}{}", self.base, path));
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        let resp = request
            .send_json(body)
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let response_headers = resp
            .headers()
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.as_str().to_ascii_lowercase(),
                    v.to_str().ok()?.to_string(),
                ))
            })
            .collect();
        let (status, text) = read_response(resp)?;
        let json = serde_json::from_str(&text)
            .map_err(|e| ClientError::BadResponse(format!("{status} with a non-JSON body: {e}")))?;
        Ok((status, response_headers, json))
    }

    fn execute_on(
        &self,
        route: &str,
        session: &Session,
        input: &ExecuteInput<'_>,
    ) -> Result<Execution, ClientError> {
        let (status, json, digests) = self.execute_raw(route, session, input)?;
        session.check_response(status, json, &digests)
    }
}

/// Status and body text of a response, reading at most [`MAX_RESPONSE_BYTES`].
fn read_response(mut resp: ureq::http::Response<ureq::Body>) -> Result<(u16, String), ClientError> {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| ClientError::Transport(e.to_string()))?;
    Ok((status, text))
}

/// Response headers: lowercase names and their values.
pub type Headers = Vec<(String, String)>;

/// The value of header `name` (lowercase) in a header list.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The receipt must name exactly the program and inputs we sent.
fn check_receipt_inputs(receipt: &Receipt, digests: &InputDigests) -> Result<(), ClientError> {
    let same = receipt.program_sha256 == hex::encode(digests.program)
        && receipt.stdin_sha256 == hex::encode(digests.stdin)
        && receipt.argument_sha256.len() == digests.arguments.len()
        && receipt
            .argument_sha256
            .iter()
            .zip(&digests.arguments)
            .all(|(a, d)| *a == hex::encode(d));
    if same {
        Ok(())
    } else {
        Err(verify::VerifyError::Mismatch("receipt program or input hashes").into())
    }
}

fn server_error(status: u16, json: serde_json::Value) -> ClientError {
    match serde_json::from_value::<ErrorResponse>(json.clone()) {
        Ok(e) => ClientError::Server {
            status,
            code: e.error.code,
            message: e.error.message,
        },
        Err(_) => ClientError::BadResponse(format!("{status}: {json}")),
    }
}

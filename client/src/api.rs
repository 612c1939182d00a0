//! The core server API on [`Client`]: ping, attestation, opening (verifiable) sessions, and
//! execution on the test, verifiable, Python and paid routes. Agents are in `agents`.

use hypervisor_protocol::ClientSecret;
use hypervisor_protocol::InputDigests;
use hypervisor_protocol::wire::{
    CreateKeypairRequest, CreateKeypairResponse, PythonRequest, VerifiableKeypairResponse,
};

use crate::client::header;
use crate::error::server_error;
use crate::upload::{Body, Text};
use crate::{Client, ClientError, ExecuteInput, Execution, Session, verify, x402};

impl Client {
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
        let (body, digests) = self.execution_body(session, input, false)?;
        let (status, _, json) = self.post_body_with(route, &body, &[])?;
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
        let (body, digests) = self.execution_body(session, input, true)?;
        let (status, headers, json) = self.post_body_with(route, &body, &[])?;
        let mut run = session.check_response(status, json, &digests)?;
        run.execution_id = header(&headers, "x-execution-id").map(str::to_string);
        Ok(run)
    }

    /// Runs `input` on a paid route (`/x402_execute/test/wasm`, `/x402_execute/verifiable/wasm`
    /// (on a verifiable session) or, with `python`, `/x402_policy/unsafe/python`): sends it,
    /// and on a 402 pays with `wallet` as x402's fetch wrappers do and sends it again — only if
    /// what the server asks for is within `limit` (see [`x402::Wallet::pay`]).
    ///
    /// # Errors
    /// As [`Self::execute`]; [`ClientError::PaymentRefused`] (nothing signed, nothing sent
    /// again) when the server asks for more than `limit`; a payment the server refused is
    /// [`ClientError::Server`] with status 402.
    pub fn execute_paid(
        &self,
        session: &Session,
        input: &ExecuteInput<'_>,
        python: bool,
        wallet: &x402::Wallet,
        limit: &x402::PaymentLimit,
    ) -> Result<Execution, ClientError> {
        let route = match (python, session.verified.is_some()) {
            (true, _) => "/x402_policy/unsafe/python",
            (false, true) => "/x402_execute/verifiable/wasm",
            (false, false) => "/x402_execute/test/wasm",
        };
        let (body, digests) = self.execution_body(session, input, python)?;
        let (mut status, mut headers, mut json) = self.post_body_with(route, &body, &[])?;
        if status == 402 {
            let offer = x402::Offer::from_402(header(&headers, "payment-required"), &json)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let (name, value) = wallet.pay(&offer, limit, now)?;
            (status, headers, json) = self.post_body_with(route, &body, &[(name, value)])?;
        }
        let mut run = session.check_response(status, json, &digests)?;
        run.settlement = header(&headers, "payment-response")
            .or_else(|| header(&headers, "x-payment-response"))
            .and_then(x402::decode_settlement);
        run.execution_id = header(&headers, "x-execution-id").map(str::to_string);
        Ok(run)
    }

    /// The encrypted body of an execution (`python`: of a script), the program's envelope
    /// as a binary part when it is large, with the digests that check its result.
    fn execution_body(
        &self,
        session: &Session,
        input: &ExecuteInput<'_>,
        python: bool,
    ) -> Result<(Body<'static>, InputDigests), ClientError> {
        let (req, program, digests) = session.encrypt_execution_parts(input)?;
        let program = std::borrow::Cow::Owned(program);
        let body = if python {
            let req = PythonRequest {
                encrypted_python: String::new(),
                encrypted_arguments: req.encrypted_arguments,
                encrypted_stdin: req.encrypted_stdin,
                public_key: req.public_key,
                session_id: req.session_id,
                limits: req.limits,
            };
            self.upload_body(req, "encrypted_python", program, Text::Hex, |r, t| {
                r.encrypted_python = t;
            })?
        } else {
            self.upload_body(req, "encrypted_wasm", program, Text::Hex, |r, t| {
                r.encrypted_wasm = t;
            })?
        };
        Ok((body, digests))
    }

    fn execute_on(
        &self,
        route: &str,
        session: &Session,
        input: &ExecuteInput<'_>,
    ) -> Result<Execution, ClientError> {
        let (body, digests) = self.execution_body(session, input, false)?;
        let (status, headers, json) = self.post_body_with(route, &body, &[])?;
        let mut run = session.check_response(status, json, &digests)?;
        run.execution_id = header(&headers, "x-execution-id").map(str::to_string);
        Ok(run)
    }
}

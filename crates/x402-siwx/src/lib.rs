//! x402 "sign-in-with-x" (SIWx) for EVM wallets: a client that paid for a resource (or is
//! allowed in without paying) proves it holds an address by signing an EIP-4361 ("Sign-In with
//! Ethereum") message, sent base64-encoded in the `SIGN-IN-WITH-X` request header.
//!
//! This crate is the part of the extension that needs no state and no clock, matched to the
//! official TypeScript SDK (`@x402/extensions` 2.27, whose messages `@signinwithethereum/siwe`
//! 4.2.1 builds and checks):
//!
//! - [`decode_header`] / [`encode_header`]: the header's JSON [`Payload`];
//! - [`message`]: the exact text the SDK's client signs for a payload, every field checked
//!   against the EIP-4361 grammar the SDK enforces;
//! - [`verify`]: EIP-191 recovery of that text's signer, compared with the payload's address
//!   (externally owned accounts only: EIP-1271 / EIP-6492 smart wallets need a chain, and the
//!   SDK checks them only when given an RPC verifier);
//! - [`sign`]: the client side, for tests and Rust clients.
//!
//! What a server adds (domain, URI and chain matching the challenge, issued and expiry times,
//! nonce bookkeeping) needs its configuration and clock: [`parse_time`] and [`format_time`]
//! read and write the times as the SDK does. Solana (`ed25519`) sign-in is refused.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod grammar;
mod timestamp;

use alloy_primitives::{Address, Signature, eip191_hash_message};
use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use k256::ecdsa::SigningKey;
use serde::{Deserialize, Deserializer, Serialize};

/// The request header carrying a signed [`Payload`] (HTTP header names are case-insensitive;
/// the SDK reads `sign-in-with-x`).
pub const HEADER: &str = "SIGN-IN-WITH-X";

/// The extension's key under `PaymentRequired.extensions` (the 402's challenge).
pub const EXTENSION: &str = "sign-in-with-x";

/// The longest header value [`decode_header`] reads, in bytes; longer values are refused
/// before decoding.
pub const MAX_HEADER_BYTES: usize = 8192;

/// The JSON of the `SIGN-IN-WITH-X` header, field for field as the SDK's client sends it
/// (`createSIWxPayload`): the challenge's `info`, the chosen chain, the signer's address and
/// its signature.
///
/// Field names are camelCase on the wire; unknown fields are ignored. An optional field is
/// either absent or of its type: `null` is refused, as the SDK's zod schema refuses it.
/// Serialized in the TypeScript client's key order, absent fields left out. Read headers with
/// [`decode_header`], which also refuses JSON other than an object and unknown `type` and
/// `signatureScheme` values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payload {
    /// The server's authority (`host[:port]`) the client signs in to, e.g. `api.example.com`.
    pub domain: String,
    /// The signer: an EVM address, `0x` and 40 hex digits (EIP-55 mixed case, or all lower or
    /// upper case).
    pub address: String,
    /// A human-readable statement shown by wallets.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub statement: Option<String>,
    /// The resource the sign-in is for (an absolute URI).
    pub uri: String,
    /// The EIP-4361 message version: `"1"`.
    pub version: String,
    /// The CAIP-2 chain, e.g. `eip155:8453` (the message shows the number after `eip155:`).
    #[serde(rename = "chainId")]
    pub chain_id: String,
    /// The signature type: `eip191` (EVM) or `ed25519` (Solana, refused by [`verify`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The server's nonce: at least eight ASCII letters or digits.
    pub nonce: String,
    /// When the challenge was issued (RFC 3339, e.g. `2024-01-15T10:30:00.000Z`).
    #[serde(rename = "issuedAt")]
    pub issued_at: String,
    /// When the sign-in expires (RFC 3339).
    #[serde(
        rename = "expirationTime",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub expiration_time: Option<String>,
    /// When the sign-in becomes valid (RFC 3339).
    #[serde(
        rename = "notBefore",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub not_before: Option<String>,
    /// An identifier of the request, chosen by the server.
    #[serde(
        rename = "requestId",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub request_id: Option<String>,
    /// The resources (absolute URIs) the sign-in covers.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub resources: Option<Vec<String>>,
    /// A hint of how the signature was made (`eip191`, `eip1271`, `eip6492` or `siws`);
    /// informational only.
    #[serde(
        rename = "signatureScheme",
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub signature_scheme: Option<String>,
    /// The signature: for EVM, `0x` and 65 bytes in hex (`r`, `s`, `v`).
    pub signature: String,
}

/// An optional field that is present: its value must be of the field's type (`null` is not).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// Why a sign-in was refused. [`code`](Self::code) gives the stable reason the SDK reports
/// (`invalidReason`); the message (`Display`) says what was wrong, for people.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// `invalid_siwx_header`: not standard base64, not UTF-8 JSON, not an object, too large,
    /// or a field missing or of the wrong type.
    #[error("invalid SIGN-IN-WITH-X header: {0}")]
    Header(String),
    /// `invalid_siwx_chain_id`: an `eip155:` chain whose reference is not a decimal number
    /// that fits 64 bits.
    #[error("invalid chainId {0}: expected eip155:<decimal chain id>")]
    ChainId(String),
    /// `invalid_siwx_unsupported_chain`: a namespace other than `eip155`, or a type other than
    /// `eip191`.
    #[error("{0}: only EVM (eip191) sign-in is supported")]
    UnsupportedChain(String),
    /// `invalid_siwx_message`: a field the EIP-4361 grammar refuses (or a time
    /// [`parse_time`] cannot read).
    #[error("not a valid EIP-4361 sign-in message: {0}")]
    Message(String),
    /// `invalid_siwx_signature`: a malformed signature, or one by another address.
    #[error("invalid sign-in signature: {0}")]
    Signature(String),
}

impl Refusal {
    /// The stable code of the refusal, as the x402 SDK names it.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Header(_) => "invalid_siwx_header",
            Refusal::ChainId(_) => "invalid_siwx_chain_id",
            Refusal::UnsupportedChain(_) => "invalid_siwx_unsupported_chain",
            Refusal::Message(_) => "invalid_siwx_message",
            Refusal::Signature(_) => "invalid_siwx_signature",
        }
    }
}

/// A client-sent value for a refusal's message: quoted, and cut after 80 characters.
fn shown(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((end, _)) => format!("{:?}…", &s[..end]),
        None => format!("{s:?}"),
    }
}

fn header(what: impl Into<String>) -> Refusal {
    Refusal::Header(what.into())
}

fn invalid(what: impl Into<String>) -> Refusal {
    Refusal::Message(what.into())
}

fn bad_signature(what: impl Into<String>) -> Refusal {
    Refusal::Signature(what.into())
}

/// Standard base64 as `atob` reads it: padding optional, unused low bits ignored.
const ATOB: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(true),
);

/// Reads a `SIGN-IN-WITH-X` header value as the SDK does (`parseSIWxHeader`): standard base64
/// (`A-Z a-z 0-9 + /`; `=` padding optional but, when present, complete; the URL-safe `-` and
/// `_` refused) of a UTF-8 JSON object with the [`Payload`] fields. Spaces and tabs around the
/// value are ignored; values over [`MAX_HEADER_BYTES`] are refused unread.
///
/// Only the shape is checked here; [`verify`] checks the message and its signature.
///
/// Stricter than the SDK on bytes no client sends, none of which could be in a valid
/// message: bytes that are not UTF-8 (which the SDK's `TextDecoder` turns into U+FFFD) and
/// JSON strings with a lone UTF-16 surrogate (`"\ud800"`) are refused.
pub fn decode_header(value: &str) -> Result<Payload, Refusal> {
    if value.len() > MAX_HEADER_BYTES {
        return Err(header(format!(
            "{} bytes, more than {MAX_HEADER_BYTES}",
            value.len()
        )));
    }
    let value = value.trim_matches([' ', '\t']);
    let body = value.trim_end_matches('=');
    let padding = value.len() - body.len();
    if padding > 2
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return Err(header(
            "not valid base64 (the standard alphabet A-Z a-z 0-9 + /, then = padding)",
        ));
    }
    if (padding > 0 && !value.len().is_multiple_of(4)) || body.len() % 4 == 1 {
        return Err(header(
            "not valid base64 (truncated, or incomplete padding)",
        ));
    }
    let bytes = ATOB
        .decode(body)
        .map_err(|e| header(format!("not valid base64: {e}")))?;
    let text = std::str::from_utf8(&bytes).map_err(|_| header("not UTF-8"))?;
    // TextDecoder drops a byte order mark.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json: serde_json::Value =
        serde_json::from_str(text).map_err(|e| header(format!("not valid JSON: {e}")))?;
    if !json.is_object() {
        return Err(header("not a JSON object"));
    }
    let payload: Payload = serde_json::from_value(json).map_err(|e| header(e.to_string()))?;
    if !matches!(payload.kind.as_str(), "eip191" | "ed25519") {
        return Err(header(format!(
            "type {} is neither \"eip191\" nor \"ed25519\"",
            shown(&payload.kind)
        )));
    }
    if let Some(scheme) = &payload.signature_scheme
        && !matches!(scheme.as_str(), "eip191" | "eip1271" | "eip6492" | "siws")
    {
        return Err(header(format!(
            "signatureScheme {} is none of eip191, eip1271, eip6492, siws",
            shown(scheme)
        )));
    }
    Ok(payload)
}

/// The `SIGN-IN-WITH-X` header value of a payload: standard base64, with padding, of its JSON
/// (the SDK's `encodeSIWxHeader`: the same bytes for the same payload).
pub fn encode_header(payload: &Payload) -> String {
    // Strings, options and a list of strings: serializing cannot fail.
    let json = serde_json::to_vec(payload).expect("a Payload serializes to JSON");
    STANDARD.encode(json)
}

/// The EIP-155 chain id of a CAIP-2 chain `eip155:<decimal>` (leading zeros allowed, as the
/// SDK's `parseInt` allows them).
///
/// Refused: another namespace (`solana:…`) as [`Refusal::UnsupportedChain`]; an `eip155:`
/// reference that is not decimal digits, or above `u64::MAX`, as [`Refusal::ChainId`].
pub fn evm_chain_id(caip2: &str) -> Result<u64, Refusal> {
    let Some(reference) = caip2.strip_prefix("eip155:") else {
        return Err(Refusal::UnsupportedChain(format!(
            "chain {} is not an eip155 chain",
            shown(caip2)
        )));
    };
    if reference.is_empty() || !reference.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refusal::ChainId(shown(caip2)));
    }
    reference
        .parse()
        .map_err(|_| Refusal::ChainId(shown(caip2)))
}

/// Reads an RFC 3339 date-time as the SDK does: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`,
/// `T` and `Z` in either case, a date that exists; the fraction is truncated to the
/// millisecond, as JavaScript's `Date` does. Gives Unix milliseconds.
///
/// A leap second (`:60`), which the EIP-4361 grammar accepts but JavaScript's `Date` does not,
/// is refused. Refusals are [`Refusal::Message`].
pub fn parse_time(rfc3339: &str) -> Result<i64, Refusal> {
    match timestamp::parse(rfc3339) {
        Some(t) if t.leap_second => Err(invalid(format!(
            "{} is a leap second, which JavaScript's Date cannot read",
            shown(rfc3339)
        ))),
        Some(t) => Ok(t.unix_ms),
        None => Err(invalid(format!(
            "{} is not an RFC 3339 date-time",
            shown(rfc3339)
        ))),
    }
}

/// Unix milliseconds as JavaScript's `toISOString` writes them: `YYYY-MM-DDTHH:MM:SS.sssZ`
/// (years beyond 0000-9999 as `±YYYYYY`; clamped to a `Date`'s range of ±8.64e15 ms).
pub fn format_time(unix_ms: i64) -> String {
    timestamp::format(unix_ms)
}

/// The payload's address as the message shows it: EIP-55. All-lower-case and all-upper-case
/// hex are unchecksummed and converted (as the SIWE library converts them); mixed case must
/// be the EIP-55 checksum.
fn message_address(address: &str) -> Result<Address, Refusal> {
    let Some(hex) = address.strip_prefix("0x") else {
        return Err(invalid(format!(
            "address {} does not start with 0x",
            shown(address)
        )));
    };
    if hex.len() != 40 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid(format!(
            "address {} is not 0x and 40 hex digits",
            shown(address)
        )));
    }
    let parsed: Address = hex
        .parse()
        .map_err(|_| invalid(format!("address {} is not hex", shown(address))))?;
    let unchecksummed = !hex.bytes().any(|b| b.is_ascii_uppercase())
        || !hex.bytes().any(|b| b.is_ascii_lowercase());
    if !unchecksummed && parsed.to_checksum(None) != address {
        return Err(invalid(format!(
            "address {} has a wrong EIP-55 checksum",
            shown(address)
        )));
    }
    Ok(parsed)
}

/// The exact EIP-4361 text the SDK's client signs for this payload (`formatSIWEMessage`, i.e.
/// `new SiweMessage({...}).prepareMessage()`), lines joined by `\n`, no final newline:
///
/// ```text
/// {domain} wants you to sign in with your Ethereum account:
/// {address, EIP-55}
///
/// {statement}                  (without one, an empty line instead: two blank lines)
///
/// URI: {uri}
/// Version: 1
/// Chain ID: {the number of eip155:<n>}
/// Nonce: {nonce}
/// Issued At: {issuedAt}
/// Expiration Time: {…}          (when present)
/// Not Before: {…}               (when present)
/// Request ID: {…}               (when present, even empty)
/// Resources:                    (when present, even an empty list)
/// - {resource}
/// ```
///
/// Every field is checked as the SDK's parser checks it; anything it would throw on is a
/// [`Refusal::Message`]: an empty or non-authority domain, an address not `0x` + 40 hex or
/// with a wrong checksum, a statement with a character outside printable ASCII or one of
/// `"`, `%`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`, a URI or resource that is not an
/// absolute RFC 3986 URI, a version other than `1`, a nonce shorter than 8 or not
/// alphanumeric, a time that is not RFC 3339, a request id with a character outside `pchar`.
///
/// Stricter than the SDK on values no x402 client sends: an empty `expirationTime` /
/// `notBefore` (which the SDK silently leaves out of the message), a domain with a scheme
/// (`https://host`, which its grammar takes), an address with a `0X` prefix (which its
/// verification then refuses) and a chain id above `u64::MAX` are refused.
///
/// The chain must be `eip155` ([`evm_chain_id`]); the payload's `type` and `signature` are not
/// part of the message and not looked at.
pub fn message(payload: &Payload) -> Result<String, Refusal> {
    let chain_id = evm_chain_id(&payload.chain_id)?;
    if !grammar::domain(&payload.domain) {
        return Err(invalid(format!(
            "domain {} is not an authority (host[:port])",
            shown(&payload.domain)
        )));
    }
    let address = message_address(&payload.address)?;
    if let Some(statement) = &payload.statement
        && !grammar::statement(statement)
    {
        return Err(invalid(
            "the statement has a character outside printable ASCII, or one of \" % < > \\ ^ ` { | }",
        ));
    }
    if !grammar::uri(&payload.uri, true) {
        return Err(invalid(format!(
            "uri {} is not an absolute URI",
            shown(&payload.uri)
        )));
    }
    if payload.version != "1" {
        return Err(invalid(format!(
            "version {} is not \"1\"",
            shown(&payload.version)
        )));
    }
    if !grammar::nonce(&payload.nonce) {
        return Err(invalid(format!(
            "nonce {} is not at least 8 ASCII letters or digits",
            shown(&payload.nonce)
        )));
    }
    let times = [
        ("issuedAt", Some(&payload.issued_at)),
        ("expirationTime", payload.expiration_time.as_ref()),
        ("notBefore", payload.not_before.as_ref()),
    ];
    for (name, time) in times {
        if let Some(time) = time
            && timestamp::parse(time).is_none()
        {
            return Err(invalid(format!(
                "{name} {} is not an RFC 3339 date-time",
                shown(time)
            )));
        }
    }
    if let Some(id) = &payload.request_id
        && !grammar::request_id(id)
    {
        return Err(invalid(format!(
            "requestId {} has a character a URI path segment cannot hold",
            shown(id)
        )));
    }
    for resource in payload.resources.iter().flatten() {
        if !grammar::uri(resource, false) {
            return Err(invalid(format!(
                "resource {} is not an absolute URI",
                shown(resource)
            )));
        }
    }

    let mut text = format!(
        "{} wants you to sign in with your Ethereum account:\n{}\n\n",
        payload.domain,
        address.to_checksum(None)
    );
    if let Some(statement) = &payload.statement {
        text.push_str(statement);
        text.push('\n');
    }
    text.push_str(&format!(
        "\nURI: {}\nVersion: {}\nChain ID: {chain_id}\nNonce: {}\nIssued At: {}",
        payload.uri, payload.version, payload.nonce, payload.issued_at
    ));
    let optional = [
        ("Expiration Time", &payload.expiration_time),
        ("Not Before", &payload.not_before),
        ("Request ID", &payload.request_id),
    ];
    for (title, value) in optional {
        if let Some(value) = value {
            text.push_str(&format!("\n{title}: {value}"));
        }
    }
    if let Some(resources) = &payload.resources {
        text.push_str("\nResources:");
        for resource in resources {
            text.push_str("\n- ");
            text.push_str(resource);
        }
    }
    Ok(text)
}

/// The 65-byte signature of a payload: `0x` and 130 hex digits, `v` 0, 1, 27 or 28 (as viem
/// takes it; high `s` values are accepted, as viem accepts them).
fn parse_signature(signature: &str) -> Result<Signature, Refusal> {
    let malformed = || bad_signature("not 0x and 65 bytes in hex");
    let hex = signature.strip_prefix("0x").ok_or_else(malformed)?;
    if hex.len() != 130 {
        return Err(malformed());
    }
    let raw: [u8; 65] = hex::decode_to_array(hex).map_err(|_| malformed())?;
    if !matches!(raw[64], 0 | 1 | 27 | 28) {
        return Err(bad_signature(format!(
            "v is {}, not 0, 1, 27 or 28",
            raw[64]
        )));
    }
    Signature::from_raw_array(&raw).map_err(|e| bad_signature(e.to_string()))
}

/// Verifies an EVM sign-in offline, as the SDK's `verifySIWxSignature` does without an RPC
/// verifier: the payload's `type` must be `eip191` and its chain `eip155:<n>`; the
/// [`message`] is rebuilt, and the EIP-191 (`personal_sign`) signature must recover the
/// payload's address. Gives that address (display it with `to_checksum(None)` for EIP-55).
///
/// Only the signature is checked: whether the domain, URI, chain, nonce and times are those
/// of a challenge this server issued, and still valid, is the caller's to check.
pub fn verify(payload: &Payload) -> Result<Address, Refusal> {
    if payload.kind != "eip191" {
        return Err(Refusal::UnsupportedChain(format!(
            "sign-in type {}",
            shown(&payload.kind)
        )));
    }
    let text = message(payload)?;
    let claimed = message_address(&payload.address)?;
    let signature = parse_signature(&payload.signature)?;
    let signer = signature
        .recover_address_from_msg(text.as_bytes())
        .map_err(|e| bad_signature(format!("no signer recovers from it: {e}")))?;
    if signer != claimed {
        return Err(bad_signature(format!(
            "signed by {signer}, not by {claimed}"
        )));
    }
    Ok(signer)
}

/// Signs a sign-in as the SDK's client does (`createSIWxPayload` with a local account): sets
/// `address` to the key's EIP-55 address and `signature` to the EIP-191 signature of the
/// [`message`], `0x` and 130 hex digits with `v` 27 or 28 (RFC 6979, low `s`: the same bytes
/// viem gives). The payload's `type` must be `eip191` and its fields valid for [`message`].
pub fn sign(mut payload: Payload, key: &[u8; 32]) -> Result<Payload, Refusal> {
    if payload.kind != "eip191" {
        return Err(Refusal::UnsupportedChain(format!(
            "sign-in type {}",
            shown(&payload.kind)
        )));
    }
    let key = SigningKey::from_slice(key)
        .map_err(|_| bad_signature("the key is not a secp256k1 secret key"))?;
    payload.address = Address::from_private_key(&key).to_checksum(None);
    let text = message(&payload)?;
    let hash = eip191_hash_message(text.as_bytes());
    let (signature, recovery) = key
        .sign_prehash_recoverable(hash.as_slice())
        .map_err(|e| bad_signature(format!("signing failed: {e}")))?;
    let mut raw = [0u8; 65];
    raw[..64].copy_from_slice(&signature.to_bytes());
    raw[64] = 27 + u8::from(recovery.is_y_odd());
    payload.signature = format!("0x{}", hex::encode(raw));
    Ok(payload)
}

#[cfg(test)]
mod tests;

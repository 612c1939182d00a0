//! Fields that arrive as bytes rather than text: the binary part of a multipart upload
//! (docs/PROTOCOL.md, "Binary uploads") stands for the JSON field of the same name, carrying
//! the bytes that field's hex or base64 would have encoded. A field is sent one way or the
//! other, never both.

use hypervisor_protocol::wire::decode_hex;

use crate::error::ApiError;

/// A request field sent as the binary part of a multipart upload.
pub struct BinaryField {
    /// The field it stands for (`encrypted_wasm`, `encrypted_python`, `component`,
    /// `encrypted_component`).
    pub name: &'static str,
    /// Its bytes (the envelope, or the clear component).
    pub bytes: Vec<u8>,
    /// SHA-256 of the bytes, computed while they arrived.
    pub sha256: [u8; 32],
}

impl std::fmt::Debug for BinaryField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BinaryField")
            .field("name", &self.name)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A field's content as it was sent.
pub(super) enum Sent<'a> {
    /// Hex text in the JSON body.
    Hex(&'a str),
    /// Standard base64 text in the JSON body (a clear component).
    Base64(&'a str),
    /// The bytes of a binary part.
    Bytes(Vec<u8>),
}

impl<'a> Sent<'a> {
    /// The required hex field `name` of a request (`text`, empty when left out) or the binary
    /// part standing for it: exactly one of them.
    ///
    /// # Errors
    /// [`ApiError::InvalidRequest`] when both or neither were sent, or the part stands for
    /// another field.
    pub fn required(
        name: &'static str,
        text: &'a str,
        binary: Option<BinaryField>,
    ) -> Result<Self, ApiError> {
        match (text.is_empty(), binary) {
            (_, Some(part)) if part.name != name => Err(ApiError::InvalidRequest(format!(
                "this route takes no binary part `{}` (only `{name}`)",
                part.name
            ))),
            (false, Some(_)) => Err(ApiError::InvalidRequest(format!(
                "`{name}` is sent twice: in the JSON request and as a binary part"
            ))),
            (true, Some(part)) => Ok(Self::Bytes(part.bytes)),
            (false, None) => Ok(Self::Hex(text)),
            (true, None) => Err(ApiError::InvalidRequest(format!(
                "missing field `{name}` (in the JSON request, or as a binary part of a \
                 multipart upload)"
            ))),
        }
    }

    /// The bytes: decoded, or as received.
    ///
    /// # Errors
    /// [`ApiError::MalformedHex`] for text that is not hex, [`ApiError::InvalidRequest`] for
    /// text that is not standard base64.
    pub fn into_bytes(self, name: &str) -> Result<Vec<u8>, ApiError> {
        use base64::Engine;
        match self {
            Self::Hex(text) => Ok(decode_hex(name, text)?),
            Self::Base64(text) => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| ApiError::InvalidRequest(format!("`{name}` is not standard base64"))),
            Self::Bytes(bytes) => Ok(bytes),
        }
    }
}

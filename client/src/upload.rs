//! Request bodies that carry a component: JSON with the bytes as text (hex or base64), or,
//! above the client's threshold ([`Client::binary_uploads_above`]), a `multipart/form-data`
//! upload whose `request` part is the JSON without the field and whose binary part, named
//! after the field, carries the bytes (docs/PROTOCOL.md, "Binary uploads"). Hosts accept
//! far larger uploads (`http.max_upload_bytes`, 128 MiB by default) than JSON bodies
//! (`http.max_body_bytes`, 32 MiB, which hex halves).

use std::borrow::Cow;

use crate::{Client, ClientError};

/// Binary fields larger than this are sent as a multipart upload by default.
pub const DEFAULT_BINARY_UPLOADS_ABOVE: usize = 4 << 20;

/// A request body: JSON, and the field sent as bytes, if any.
pub struct Body<'a> {
    pub(crate) json: Vec<u8>,
    pub(crate) binary: Option<(&'static str, Cow<'a, [u8]>)>,
}

impl<'a> Body<'a> {
    /// The JSON of `request`.
    ///
    /// # Errors
    /// [`ClientError::BadResponse`] if it does not serialize.
    pub fn json(request: &impl serde::Serialize) -> Result<Self, ClientError> {
        let json = serde_json::to_vec(request).map_err(|e| {
            ClientError::BadResponse(format!("the request does not serialize: {e}"))
        })?;
        Ok(Self { json, binary: None })
    }
}

/// How a field's bytes are written as text in a JSON body.
#[derive(Debug, Clone, Copy)]
pub enum Text {
    /// Lowercase hex (envelopes).
    Hex,
    /// Standard base64 (clear components).
    Base64,
}

impl Client {
    /// Sends binary fields larger than `bytes` as multipart uploads (0: always; `usize::MAX`:
    /// never, as JSON text). Default [`DEFAULT_BINARY_UPLOADS_ABOVE`].
    #[must_use]
    pub fn binary_uploads_above(mut self, bytes: usize) -> Self {
        self.binary_above = bytes;
        self
    }

    /// The body of `request` with the bytes of its field `name`: as text set into the request
    /// by `set` when they are small, else as a binary part.
    ///
    /// # Errors
    /// [`ClientError::BadResponse`] if the request does not serialize.
    pub(crate) fn upload_body<'a, T: serde::Serialize>(
        &self,
        mut request: T,
        name: &'static str,
        bytes: Cow<'a, [u8]>,
        text: Text,
        set: impl FnOnce(&mut T, String),
    ) -> Result<Body<'a>, ClientError> {
        if bytes.len() > self.binary_above {
            let mut body = Body::json(&request)?;
            body.binary = Some((name, bytes));
            return Ok(body);
        }
        let encoded = match text {
            Text::Hex => hex::encode(&bytes),
            Text::Base64 => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(&bytes)
            }
        };
        set(&mut request, encoded);
        Body::json(&request)
    }
}

//! Paying with x402: the shared payer (`x402-payer`), whose errors become [`ClientError`]s.
//!
//! [`ClientError`]: crate::ClientError

pub use x402_payer::{
    MAX_VALIDITY_SECONDS, Offer, PayError, PaymentLimit, PaymentRefusal, Terms, Wallet,
    decode_settlement,
};

impl From<PayError> for crate::ClientError {
    fn from(e: PayError) -> Self {
        match e {
            PayError::Refused(r) => Self::PaymentRefused(r),
            PayError::Invalid(why) => Self::BadResponse(format!("x402: {why}")),
        }
    }
}

/// A wallet with the limit it pays within: what the metadata bindings (A2A, MCP) pay with.
pub struct Payer<'a> {
    /// The wallet that signs.
    pub wallet: &'a Wallet,
    /// What it may pay.
    pub limit: &'a PaymentLimit,
}

impl Payer<'_> {
    /// The PaymentPayload document for `offer`, signed now, if it is within the limit.
    ///
    /// # Errors
    /// [`crate::ClientError::PaymentRefused`] outside the limit; unusable requirements.
    pub fn payload(&self, offer: &Offer) -> Result<serde_json::Value, crate::ClientError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Ok(self.wallet.payload(offer, self.limit, now)?.1)
    }
}

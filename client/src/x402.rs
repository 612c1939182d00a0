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

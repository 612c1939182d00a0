//! Network vocabulary shared by the configuration and the engine (no I/O).

mod origin;
mod tls_channel;

pub use origin::{Origin, OriginError};
pub use tls_channel::TlsChannel;

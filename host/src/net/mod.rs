//! Network vocabulary shared by the configuration and the engine (no I/O).

mod origin;
mod tls_channel;
mod tls_client;

pub use origin::{Origin, OriginError};
pub use tls_channel::TlsChannel;
pub use tls_client::tls_client_config;

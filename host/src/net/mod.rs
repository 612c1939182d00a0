//! Network vocabulary shared by the configuration, the engine and agents' egress (no sockets).

mod between_bytes;
mod origin;
mod tls_channel;
mod tls_client;

pub use between_bytes::BetweenBytes;
pub use origin::{Origin, OriginError};
pub use tls_channel::TlsChannel;
pub use tls_client::tls_client_config;

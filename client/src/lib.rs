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

pub mod a2a;
pub mod agents;
pub mod keyfile;
pub mod mcp;
pub mod proof;
pub mod state;
pub mod tls;
pub mod upload;
pub mod verify;
pub mod wallet;
pub mod x402;

mod api;
mod client;
mod error;
mod owner;
mod records;
mod renewing;
mod request;
mod response;
mod session;
mod transport;

pub use client::{Client, Headers, Trust};
pub use error::ClientError;
pub use hypervisor_protocol::ErrorCode;
pub use renewing::{RenewingSession, session_gone};
pub use request::ExecuteInput;
pub use response::Execution;
pub use session::Session;
pub use transport::{check_server_url, is_https};

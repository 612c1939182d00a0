//! Network vocabulary shared by the configuration and the engine (no I/O).

mod origin;

pub use origin::{Origin, OriginError};

//! Host-side cryptography: the primitives behind the `hypervisor:host/crypto` import, and the
//! at-rest encryption of stored artifacts. The wire protocol itself lives in
//! `hypervisor-protocol`.

pub mod at_rest;
pub mod chunks;
pub mod digests;
pub mod plaintext;
pub mod primitives;

//! The client's long-term key on disk: 64 hex characters (the P-256 scalar) and a newline,
//! readable by the owner only.

use std::io::Write;
use std::path::Path;

use hypervisor_protocol::ClientSecret;
use zeroize::Zeroizing;

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// I/O.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not 64 hex characters of a valid scalar.
    #[error("key file {0} does not hold a P-256 private key (64 hex characters)")]
    Invalid(String),
}

/// Options opening a file for writing that only its owner may read (mode 0600 on Unix); the
/// caller chooses how it is created.
pub fn private_file() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Loads the key at `path`, or creates one there if the file does not exist. Returns the key
/// and whether it was created.
///
/// # Errors
/// [`KeyFileError`].
pub fn load_or_create(path: &Path) -> Result<(ClientSecret, bool), KeyFileError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            let bytes = Zeroizing::new(
                hex::decode(text.trim()).map_err(|_| KeyFileError::Invalid(shown.clone()))?,
            );
            let key = ClientSecret::from_bytes(&bytes).map_err(|_| KeyFileError::Invalid(shown))?;
            Ok((key, false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ClientSecret::generate().map_err(|_| KeyFileError::Invalid(shown.clone()))?;
            let io = |source| KeyFileError::Io {
                path: shown.clone(),
                source,
            };
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            let mut options = private_file();
            options.create_new(true);
            let mut f = options.open(path).map_err(io)?;
            let text = Zeroizing::new(format!("{}\n", hex::encode(key.to_bytes().as_ref())));
            f.write_all(text.as_bytes()).map_err(io)?;
            Ok((key, true))
        }
        Err(source) => Err(KeyFileError::Io {
            path: shown,
            source,
        }),
    }
}

/// Creates a wallet key file at `path`: a new secp256k1 key (the account that pays x402
/// payments), 64 hex characters and a newline, readable by the owner only. An existing file is
/// never overwritten. Returns the wallet.
///
/// # Errors
/// [`KeyFileError::Io`] (an existing file is `AlreadyExists`).
pub fn create_wallet_key(path: &Path) -> Result<x402_payer::Wallet, KeyFileError> {
    let shown = path.display().to_string();
    let io = |source| KeyFileError::Io {
        path: shown.clone(),
        source,
    };
    let (wallet, secret) = x402_payer::Wallet::generate()
        .map_err(|_| io(std::io::Error::other("no randomness for a new key")))?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let mut options = private_file();
    options.create_new(true);
    let mut f = options.open(path).map_err(io)?;
    let text = Zeroizing::new(format!("{}\n", hex::encode(secret.as_ref())));
    f.write_all(text.as_bytes()).map_err(io)?;
    Ok(wallet)
}

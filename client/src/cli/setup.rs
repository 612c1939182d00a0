//! `ping`, `keygen` and `session`: check that the server answers, create or show the key file,
//! and open a plain session.

use std::path::Path;
use std::process::ExitCode;

use hypervisor_client::{Client, keyfile};

/// `hypervisor-client ping`.
pub fn ping(client: &Client, json: bool) -> anyhow::Result<ExitCode> {
    let pong = client.ping()?;
    if json {
        println!(
            "{}",
            serde_json::json!({"server": client.base_url(), "answer": pong})
        );
    } else {
        println!("{pong}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client keygen`.
pub fn keygen(key_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (key, created) = keyfile::load_or_create(key_path)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"key_file": key_path, "created": created, "public_key": key.public_key().to_hex()})
        );
    } else {
        eprintln!(
            "{} {}",
            if created { "created" } else { "using" },
            key_path.display()
        );
        println!("{}", key.public_key().to_hex());
    }
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client keygen --wallet FILE`.
pub fn wallet_keygen(path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let wallet = keyfile::create_wallet_key(path).map_err(|e| match e {
        keyfile::KeyFileError::Io { source, .. }
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            anyhow::anyhow!(
                "{} exists: a wallet key is never overwritten (pick another file name)",
                path.display()
            )
        }
        e => e.into(),
    })?;
    let address = wallet.address().to_checksum(None);
    if json {
        println!(
            "{}",
            serde_json::json!({"wallet_key_file": path, "address": address})
        );
    } else {
        eprintln!(
            "created {} (keep it secret: it spends the account's tokens)",
            path.display()
        );
        println!("{address}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `hypervisor-client session`.
pub fn session(client: &Client, key_path: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let (key, _) = keyfile::load_or_create(key_path)?;
    let s = client.create_session(&key)?;
    if json {
        println!(
            "{}",
            serde_json::json!({"session_id": s.id, "session_pubkey": s.server_public.to_hex(), "expires_in_seconds": s.expires_in_seconds})
        );
    } else {
        println!("session {} (expires in {} s)", s.id, s.expires_in_seconds);
        println!("server key {}", s.server_public.to_hex());
    }
    Ok(ExitCode::SUCCESS)
}

//! The attestation side of start-up: the provider the configuration names (never a silent
//! fallback to simulation) and the host measurement bound with every attested key.

use std::sync::Arc;

use crate::attestation::configfs::{self, ConfigFs, TsmProvider};
use crate::attestation::{AttestationProvider, NoAttestation, TeeKind};
use crate::config::{AttestationConfig, ProviderChoice};

/// Chooses the attestation provider. Never falls back to simulation.
pub(super) fn attestation_provider(
    c: &AttestationConfig,
) -> anyhow::Result<Arc<dyn AttestationProvider>> {
    let tree = || ConfigFs::new(c.configfs_root.clone());
    let hardware = |want: TeeKind| -> anyhow::Result<Arc<dyn AttestationProvider>> {
        match configfs::detect(&tree()) {
            Some(found) if found == want => Ok(Arc::new(TsmProvider::new(Box::new(tree()), want))),
            found => anyhow::bail!(
                "attestation.provider = {} but configfs-tsm at {} offers {}",
                want.name(),
                c.configfs_root.display(),
                found.map_or("nothing", TeeKind::name)
            ),
        }
    };
    Ok(match c.provider {
        ProviderChoice::None => Arc::new(NoAttestation),
        ProviderChoice::Tdx => hardware(TeeKind::Tdx)?,
        ProviderChoice::SevSnp => hardware(TeeKind::SevSnp)?,
        ProviderChoice::Auto => match configfs::detect(&tree()) {
            Some(kind) => Arc::new(TsmProvider::new(Box::new(tree()), kind)),
            None => {
                tracing::info!(
                    "attestation.provider = auto: no configfs-tsm provider found; attestation off"
                );
                Arc::new(NoAttestation)
            }
        },
        #[cfg(feature = "simulated-attestation")]
        ProviderChoice::Simulated => {
            tracing::warn!(
                "##########################################################################"
            );
            tracing::warn!("SIMULATED ATTESTATION IS ON: evidence from this host PROVES NOTHING.");
            tracing::warn!("Every response labels it `simulated`; verifiers reject it by default.");
            tracing::warn!("Never use this setting in production.");
            tracing::warn!(
                "##########################################################################"
            );
            Arc::new(crate::attestation::simulated::SimulatedProvider)
        }
        #[cfg(not(feature = "simulated-attestation"))]
        ProviderChoice::Simulated => anyhow::bail!(
            "attestation.provider = simulated, but this build has no simulated attestation \
             (rebuild with --features simulated-attestation; never in production)"
        ),
    })
}

/// SHA-256 of the running host binary: the application-level measurement bound with the
/// signing key (the VM's own measurements are in the hardware evidence).
fn binary_measurement() -> anyhow::Result<[u8; 32]> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(std::env::current_exe()?)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// The host measurement: SHA-256 of the running binary, or, with simulated attestation only,
/// `attestation.simulated_host_measurement` (tests standing up a replica "built differently").
pub(super) fn host_measurement(c: &AttestationConfig) -> anyhow::Result<[u8; 32]> {
    match &c.simulated_host_measurement {
        Some(m) if c.provider == ProviderChoice::Simulated => {
            let bytes = hex::decode(m)?;
            tracing::warn!(
                measurement = %m,
                "SIMULATED host measurement claimed (attestation.simulated_host_measurement)"
            );
            Ok(<[u8; 32]>::try_from(bytes.as_slice())?)
        }
        Some(_) => {
            anyhow::bail!("attestation.simulated_host_measurement needs the simulated provider")
        }
        None => binary_measurement(),
    }
}

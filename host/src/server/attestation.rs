//! The attestation side of start-up: the provider the configuration names (never a silent
//! fallback to simulation) and the host measurement bound with every attested key.

use std::sync::Arc;

use crate::attestation::configfs::{self, ConfigFs, EventLogSources, TsmProvider};
use crate::attestation::dstack::{self, DstackProvider};
use crate::attestation::{AttestationProvider, NoAttestation, TeeKind};
use crate::config::{AttestationConfig, ProviderChoice};

/// Chooses the attestation provider. Never falls back to simulation. `host_measurement` is
/// what the simulated platform's launcher event names.
pub(super) fn attestation_provider(
    c: &AttestationConfig,
    host_measurement: [u8; 32],
) -> anyhow::Result<Arc<dyn AttestationProvider>> {
    // Only the simulated platform (a feature of test builds) uses it.
    let _ = host_measurement;
    let tree = || ConfigFs::new(c.configfs_root.clone());
    let tsm = |kind: TeeKind| {
        TsmProvider::new(Box::new(tree()), kind).with_event_log(EventLogSources {
            ccel: c.ccel_path.clone(),
            runtime: c.runtime_event_log.clone(),
        })
    };
    let hardware = |want: TeeKind| -> anyhow::Result<Arc<dyn AttestationProvider>> {
        match configfs::detect(&tree()) {
            Some(found) if found == want => Ok(Arc::new(tsm(want))),
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
        ProviderChoice::Dstack => {
            let socket = dstack::find_socket(c.dstack_socket.as_deref()).ok_or_else(|| {
                anyhow::anyhow!(
                    "attestation.provider = dstack but no guest agent socket was found (looked \
                     at DSTACK_AGENT_ADDRESS and {}); mount /var/run/dstack.sock into the \
                     container or set attestation.dstack_socket",
                    dstack::SOCKET_CANDIDATES.join(", ")
                )
            })?;
            tracing::info!(socket = %socket.display(), "attestation through the dstack guest agent");
            Arc::new(DstackProvider::new(socket))
        }
        ProviderChoice::Auto => match (
            dstack::find_socket(c.dstack_socket.as_deref()).filter(|p| p.exists()),
            configfs::detect(&tree()),
        ) {
            (Some(socket), _) => {
                tracing::info!(socket = %socket.display(), "attestation.provider = auto: the dstack guest agent");
                Arc::new(DstackProvider::new(socket))
            }
            (None, Some(kind)) => Arc::new(tsm(kind)),
            (None, None) => {
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
            Arc::new(crate::attestation::simulated::SimulatedProvider::new(
                simulated_platform(c, host_measurement)?,
            ))
        }
        #[cfg(not(feature = "simulated-attestation"))]
        ProviderChoice::Simulated => anyhow::bail!(
            "attestation.provider = simulated, but this build has no simulated attestation \
             (rebuild with --features simulated-attestation; never in production)"
        ),
    })
}

/// The platform the simulated provider simulates (`attestation.simulated_platform`).
#[cfg(feature = "simulated-attestation")]
fn simulated_platform(
    c: &AttestationConfig,
    host_measurement: [u8; 32],
) -> anyhow::Result<crate::attestation::simulated::SimulatedPlatform> {
    let p = &c.simulated_platform;
    let reg = |v: &Option<String>| -> anyhow::Result<Option<[u8; 48]>> {
        v.as_deref()
            .map(|h| Ok(<[u8; 48]>::try_from(hex::decode(h)?.as_slice())?))
            .transpose()
    };
    let compose_hash = p
        .compose_hash
        .as_deref()
        .map(|h| -> anyhow::Result<[u8; 32]> {
            Ok(<[u8; 32]>::try_from(hex::decode(h)?.as_slice())?)
        })
        .transpose()?;
    Ok(crate::attestation::simulated::SimulatedPlatform::new(
        [
            reg(&p.mrtd)?,
            reg(&p.rtmr0)?,
            reg(&p.rtmr1)?,
            reg(&p.rtmr2)?,
        ],
        compose_hash,
        (!p.no_host_event).then_some(host_measurement),
    ))
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
        None => Ok(crate::attestation::launcher::binary_sha256()?),
    }
}

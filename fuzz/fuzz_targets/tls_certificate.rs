//! The RA-TLS certificate evidence (`protocol/src/tls.rs`, `client/src/tls`): the extension
//! value decoder and the client's certificate check, on arbitrary bytes.
//!
//! The input is tried as an extension value (a DER UTF8String holding a JSON CMW record) and as
//! a whole DER certificate. Decoding must fail cleanly or round-trip; the certificate check must
//! fail cleanly, or accept only simulated evidence (hardware evidence cannot be forged; the
//! committed seed is a real host certificate with simulated evidence, which verifies).
#![no_main]

use hypervisor_client::tls::verify_certificate_evidence;
use hypervisor_client::verify::Policy;
use hypervisor_protocol::tls::CertificateEvidence;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(evidence) = CertificateEvidence::from_extension_value(data) {
        let again = evidence.to_extension_value().expect("re-encodes");
        assert_eq!(
            CertificateEvidence::from_extension_value(&again).expect("decodes"),
            evidence,
            "a decoded value re-encodes to the same evidence"
        );
    }
    let policy = Policy {
        allow_simulated: true,
        accept_any_measurement: true,
        ..Policy::default()
    };
    if let Ok(key) = verify_certificate_evidence(data, &policy) {
        assert!(
            key.simulated,
            "only simulated evidence verifies without hardware"
        );
    }
});

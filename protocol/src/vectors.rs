//! Test vectors: fixed keys, ids and nonces → exact bytes. `docs/test-vectors.json` is
//! generated from [`generate`] and checked against it by the protocol, client and host tests
//! (and by an independent Python implementation in `tests/vectors/`).

use serde_json::{Value, json};
use uuid::Uuid;

pub mod reference;

use crate::attest::{
    ReportPurpose, StatementKind, as_refs, report_data, session_fields, sign_statement,
    signing_key_report_data, statement_bytes,
};
use crate::commitment::{InputDigests, result_commitment};
use crate::envelope::{Envelope, Role, associated_data};
use crate::session::SessionKey;
use crate::wire::{AppliedLimits, ExitStatus, Receipt};
use crate::{ClientSecret, EncodedPublicKey, labels, sha256};

/// Fixed client private scalar (hex).
pub const CLIENT_SECRET: &str = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721";
/// Fixed server session private scalar (hex).
pub const SERVER_SECRET: &str = "519b423d715f8b581f4fa8ee59f4771a5b44c8130b4e3eacca54a56dda72b464";
/// Fixed session id.
pub const SESSION_ID: &str = "01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e7f";
/// Fixed attested signing key (private scalar, hex).
pub const SIGNING_SECRET: &str = "0f56db78ca460b055c500064824bed999a25aaf48ebb519ac201537b85479813";
/// Fixed key creation time.
pub const KEY_CREATED_AT: u64 = 1_790_000_000;

fn nonce(first: u8) -> [u8; 12] {
    std::array::from_fn(|i| first.wrapping_add(i as u8))
}

/// Computes every vector from the fixed inputs.
///
/// # Panics
/// Never with the built-in constants.
pub fn generate() -> Value {
    let client =
        ClientSecret::from_bytes(&hex::decode(CLIENT_SECRET).expect("hex")).expect("scalar");
    let server =
        ClientSecret::from_bytes(&hex::decode(SERVER_SECRET).expect("hex")).expect("scalar");
    let session_id = Uuid::parse_str(SESSION_ID).expect("uuid");
    let client_pub = client.public_key();
    let server_pub = server.public_key();
    let shared = client.diffie_hellman(&server_pub);
    let key = SessionKey::for_client(&client, &server_pub, &session_id);
    let env = Envelope::new(&key, session_id);

    let mut salt = labels::HKDF_SALT.to_vec();
    salt.extend_from_slice(session_id.as_bytes());
    let mut info = labels::HKDF_INFO.to_vec();
    info.extend_from_slice(client_pub.as_bytes());
    info.extend_from_slice(server_pub.as_bytes());

    let program = b"\0asm\x0d\0\x01\0 (a component would go here)".to_vec();
    let args: Vec<Vec<u8>> = vec![b"world".to_vec(), "\u{3b2}eta".as_bytes().to_vec()];
    let stdin = b"line one\nline two\n".to_vec();
    let event = br#"{"text":"alpha beta gamma"}"#.to_vec();
    let result = br#"{"version":1,"status":"exited","exit_code":0,"stdout":"SGVsbG8gd29ybGQgzrJldGEK","stderr":"","stdout_truncated":false,"stderr_truncated":false,"duration_us":1234,"limits":{"time_ms":10000,"memory_bytes":134217728}}"#.to_vec();

    let seal = |role: Role, first: u8, pt: &[u8]| -> Value {
        let n = nonce(first);
        let sealed = env.seal_with_nonce(role, &n, pt).expect("seal");
        json!({
            "role": role.name(),
            "role_byte": role.code(),
            "index": role.index(),
            "plaintext": hex::encode(pt),
            "nonce": hex::encode(n),
            "aad": hex::encode(associated_data(&session_id, role)),
            "envelope": hex::encode(sealed),
        })
    };
    let envelopes = vec![
        seal(Role::Program, 0x00, &program),
        seal(Role::Argument(0), 0x10, &args[0]),
        seal(Role::Argument(1), 0x20, &args[1]),
        seal(Role::Stdin, 0x30, &stdin),
        seal(Role::Result, 0x40, &result),
        seal(Role::Event, 0x50, &event),
        // The vector program deployed as an agent: its SHA-256 is the `component_sha256` the
        // owner's deploy signature in `agents` covers.
        seal(Role::AgentComponent, 0x60, &program),
        // An agent wallet's key (`PUT /agents/{name}/wallet`), sealed to the session.
        seal(
            Role::WalletKey,
            0x70,
            &hex::decode(WALLET_SECRET).expect("hex"),
        ),
        // An agent's configuration change (`PUT /agents/{name}/config`), and an export of its
        // state sealed back to the owner (`POST /agents/{name}/state/export`).
        seal(Role::AgentConfig, 0x80, STATE_CONFIG_CHANGE.as_bytes()),
        seal(Role::StateExport, 0x90, STATE_EXPORT.as_bytes()),
        // The `js_source` vector's source sealed for `encrypted_js` (its JSON, as the client
        // serialises it).
        seal(
            Role::AgentJs,
            0xa0,
            &serde_json::to_vec(&js_source()).expect("json"),
        ),
        // That export sent back into an agent (`POST /agents/{name}/state/import`).
        seal(Role::StateImport, 0xb0, STATE_EXPORT.as_bytes()),
    ];
    let digests = InputDigests::compute(&program, &args, &stdin);
    let commitment = result_commitment(&session_id, &digests, &result);
    let attestation =
        attestation_vectors(&session_id, &client_pub, &server_pub, &digests, &commitment);
    let agents = agent_vectors(&program);
    let riscv = riscv_vector(&env, &session_id);
    json!({
        "riscv_program": riscv,
        "agents": agents,
        "agent_calls": agent_call_vectors(),
        "attestation": attestation,
        "tls": tls_vectors(),
        "reference_values": reference::vectors(),
        "x402_resources": crate::paid::vectors(),
        "cluster": cluster_vectors(),
        "a2a": a2a_vectors(),
        "offer_receipt": offer_receipt_vectors(),
        "sign_in_with_x": sign_in_vector(),
        "state": state_vectors(),
        "js_source": js_source_vector(),
        "description": "WASM Hypervisor protocol v1 test vectors; see docs/PROTOCOL.md. All binary values are lowercase hex.",
        "client_secret": CLIENT_SECRET,
        "client_public": client_pub.to_hex(),
        "server_secret": SERVER_SECRET,
        "server_public": server_pub.to_hex(),
        "session_id": SESSION_ID,
        "session_id_bytes": hex::encode(session_id.as_bytes()),
        "ecdh_shared_x": hex::encode(shared.as_ref()),
        "hkdf_salt": hex::encode(&salt),
        "hkdf_info": hex::encode(&info),
        "session_key": hex::encode(key.expose_for_test_vectors()),
        "envelopes": envelopes,
        "commitment": {
            "program_sha256": hex::encode(digests.program),
            "argument_sha256": digests.arguments.iter().map(hex::encode).collect::<Vec<_>>(),
            "stdin_sha256": hex::encode(digests.stdin),
            "result_plaintext": hex::encode(&result),
            "result_commitment": hex::encode(commitment),
        },
    })
}

/// A RISC-V program (`docs/PROTOCOL.md` §6d): a real ELF file (`guests/riscv/endless-loop`,
/// as built once and kept here), recognised by its header, sealed unchanged under role program,
/// and committed to by its SHA-256 exactly as a component is; with the kinds a few other first
/// bytes are recognised as.
fn riscv_vector(env: &Envelope, session_id: &Uuid) -> Value {
    use crate::program::{Recognised, recognise};
    let elf: &[u8] = include_bytes!("vectors/riscv-endless-loop.elf");
    let args: Vec<Vec<u8>> = vec![b"ignored".to_vec()];
    let stdin: &[u8] = b"";
    // What the host answers when the time limit stops it: its first line, then nothing.
    let result = br#"{"version":1,"status":"time_limit_exceeded","stdout":"c3Bpbm5pbmcK","stderr":"","stdout_truncated":false,"stderr_truncated":false,"duration_us":500211,"limits":{"time_ms":500,"memory_bytes":134217728}}"#;
    let digests = InputDigests::compute(elf, &args, stdin);
    let commitment = result_commitment(session_id, &digests, result);
    let n = nonce(0xb0);
    let kind = |bytes: &[u8]| match recognise(bytes) {
        Recognised::Kind(k) => json!(k.as_str()),
        Recognised::OtherElf(_) | Recognised::Unknown => Value::Null,
    };
    let header = |class: u8, data: u8, machine: [u8; 2]| {
        let mut h = elf[..20].to_vec();
        h[4] = class;
        h[5] = data;
        h[18..20].copy_from_slice(&machine);
        h
    };
    let cases = [
        ("this ELF file's first 20 bytes", elf[..20].to_vec()),
        ("the same, 32-bit", header(1, 1, [0xf3, 0x00])),
        ("the same, big-endian", header(2, 2, [0x00, 0xf3])),
        ("the same, machine x86-64 (62)", header(2, 1, [0x3e, 0x00])),
        (
            "a WebAssembly component's first 8 bytes",
            b"\0asm\x0d\0\x01\0".to_vec(),
        ),
        ("a script", b"#!/bin/sh".to_vec()),
    ];
    json!({
        "description": "A RISC-V program: an ELF file whose SHA-256 is its identity in commitments, receipts and statements, as a component's is.",
        "elf": hex::encode(elf),
        "kind": kind(elf),
        "program_sha256": hex::encode(digests.program),
        "envelope": hex::encode(env.seal_with_nonce(Role::Program, &n, elf).expect("seal")),
        "envelope_nonce": hex::encode(n),
        "arguments": args.iter().map(hex::encode).collect::<Vec<_>>(),
        "stdin": hex::encode(stdin),
        "result_plaintext": hex::encode(result),
        "result_commitment": hex::encode(commitment),
        "recognised": cases.iter().map(|(what, bytes)| json!({
            "what": what,
            "bytes": hex::encode(bytes),
            "kind": kind(bytes),
        })).collect::<Vec<_>>(),
    })
}

/// The attestation binding and signed statements for fixed inputs. ECDSA signatures use
/// RFC 6979 nonces, so they are deterministic too.
fn attestation_vectors(
    session_id: &Uuid,
    client_pub: &EncodedPublicKey,
    server_pub: &EncodedPublicKey,
    digests: &InputDigests,
    commitment: &[u8; 32],
) -> Value {
    let secret = hex::decode(SIGNING_SECRET).expect("hex");
    let signing = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let signing_pub = EncodedPublicKey::from_key(&p256::PublicKey::from(signing.verifying_key()));
    let measurement = sha256(b"example host binary");
    let rd_fields: [&[u8]; 3] = [
        signing_pub.as_bytes(),
        &measurement,
        &KEY_CREATED_AT.to_be_bytes(),
    ];
    let rd_preimage = report_data_preimage(ReportPurpose::SigningKey, &rd_fields);
    let rd = signing_key_report_data(&signing_pub, &measurement, KEY_CREATED_AT);
    assert_eq!(rd, report_data(ReportPurpose::SigningKey, &rd_fields));

    // Simulated evidence carrying that REPORTDATA (the host's simulated provider's format), so
    // a verifier can run the binding end to end; receipts name its SHA-256.
    // Written out, not built with `json!`: its bytes are hashed, and `json!`'s key order
    // depends on serde_json's features in the build.
    let evidence = format!(
        "{{\"format\":\"simulated-not-for-production\",\"report_data\":\"{}\",\
         \"warning\":\"SIMULATED ATTESTATION - NOT FOR PRODUCTION - PROVES NOTHING\"}}",
        hex::encode(rd)
    );
    let created = KEY_CREATED_AT + 60;
    let session = session_fields(session_id, server_pub, client_pub, created, created + 3600);
    let session_sig = sign_statement(&signing, StatementKind::Session, &as_refs(&session));

    let mut receipt = Receipt {
        version: crate::wire::RECEIPT_VERSION,
        session_id: *session_id,
        sequence: 1,
        route: "/verifiable/execute/wasm".into(),
        program_sha256: hex::encode(digests.program),
        argument_sha256: digests.arguments.iter().map(hex::encode).collect(),
        stdin_sha256: hex::encode(digests.stdin),
        result_commitment: hex::encode(commitment),
        status: ExitStatus::Exited,
        limits: AppliedLimits {
            time_ms: 10_000,
            memory_bytes: 134_217_728,
            fuel: None,
        },
        issued_at: created + 5,
        policy: None,
        payment: None,
        calls: None,
        tee: "simulated".into(),
        evidence_sha256: hex::encode(sha256(evidence.as_bytes())),
        replica: String::new(),
        signing_key: signing_pub.to_hex(),
        signature: String::new(),
    };
    let receipt_fields = receipt.signed_fields().expect("hex fields");
    let receipt_sig = sign_statement(&signing, StatementKind::Receipt, &as_refs(&receipt_fields));
    receipt.signature = hex::encode(receipt_sig);
    // The same run as an agent that called two others, one of them paid (§18), on replica
    // `replica-b` of a cluster (§22).
    let mut with_calls = Receipt {
        sequence: 2,
        replica: "replica-b".into(),
        route: "/agents/buyer/invoke".into(),
        calls: Some(vec![
            crate::wire::CallLink {
                callee: "hypervisor.internal".into(),
                callee_execution: None,
                response_sha256: hex::encode(sha256(b"{\"results\":[]}")),
                transaction: None,
            },
            crate::wire::CallLink {
                callee: "word-seller".into(),
                callee_execution: Some("01927f2e-0000-7000-8000-000000000001".into()),
                response_sha256: hex::encode(sha256(b"{\"ok\":true}")),
                transaction: Some(format!("0x{}", "ab".repeat(32))),
            },
        ]),
        signature: String::new(),
        ..receipt.clone()
    };
    let with_calls_fields = with_calls.signed_fields().expect("hex fields");
    with_calls.signature = hex::encode(sign_statement(
        &signing,
        StatementKind::Receipt,
        &as_refs(&with_calls_fields),
    ));

    let user_data = [0x42u8; 64];
    let component_sig = sign_statement(
        &signing,
        StatementKind::Component,
        &[&digests.program, &user_data],
    );

    json!({
        "signing_secret": SIGNING_SECRET,
        "signing_key": signing_pub.to_hex(),
        "host_measurement": hex::encode(measurement),
        "key_created_at": KEY_CREATED_AT,
        "report_data_preimage": hex::encode(&rd_preimage),
        "report_data": hex::encode(rd),
        // The evidence (hex of its bytes), simulated: `tee` simulated, format
        // `simulated-not-for-production`.
        "evidence": hex::encode(evidence.as_bytes()),
        "session_statement": {
            "created_at": created,
            "expires_at": created + 3600,
            "bytes": hex::encode(statement_bytes(StatementKind::Session, &as_refs(&session))),
            "signature": hex::encode(session_sig),
        },
        "receipt": serde_json::to_value(&receipt).expect("json"),
        "receipt_statement_bytes": hex::encode(statement_bytes(StatementKind::Receipt, &as_refs(&receipt_fields))),
        "receipt_with_calls": serde_json::to_value(&with_calls).expect("json"),
        "receipt_with_calls_statement_bytes": hex::encode(statement_bytes(StatementKind::Receipt, &as_refs(&with_calls_fields))),
        "component_statement": {
            "component_sha256": hex::encode(digests.program),
            "user_data": hex::encode(user_data),
            "bytes": hex::encode(statement_bytes(StatementKind::Component, &[&digests.program, &user_data])),
            "signature": hex::encode(component_sig),
        },
    })
}

/// The REPORTDATA preimage (label, purpose, each field length-prefixed), spelled out here
/// rather than taken from `attest`, so that the vectors show the encoding itself.
fn report_data_preimage(purpose: ReportPurpose, fields: &[&[u8]]) -> Vec<u8> {
    let mut preimage = crate::attest::REPORT_DATA_LABEL.to_vec();
    preimage.push(purpose as u8);
    for f in fields {
        preimage.extend_from_slice(&(f.len() as u32).to_be_bytes());
        preimage.extend_from_slice(f);
    }
    preimage
}

/// The replicas' key exchange (`docs/PROTOCOL.md` §22.1): fixed exchange keys, run, replica,
/// cluster key and nonce; the join and grant statements signed with the attestation vectors'
/// key (standing in for each replica's attested key).
fn cluster_vectors() -> Value {
    use crate::cluster::{grant_fields, join_fields, key_check, wrap_key_with_nonce};
    let secret = hex::decode(SIGNING_SECRET).expect("hex");
    let signing = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let joiner = ClientSecret::from_bytes(&[0x31u8; 32]).expect("scalar");
    let responder = ClientSecret::from_bytes(&[0x32u8; 32]).expect("scalar");
    let (run, replica) = ("0f1e2d3c4b5a69788796a5b4c3d2e1f0", "r2");
    let key = [0x5au8; 32];
    let nonce = [0x77u8; 12];
    let j = joiner.public_key();
    let r = responder.public_key();
    let sealed = wrap_key_with_nonce(&responder, &j, run, &key, &nonce).expect("seals");
    let join = join_fields(run, replica, &j);
    let grant = grant_fields(run, &j, &r, &sealed);
    let shared = responder.diffie_hellman(&j);
    json!({
        "joiner_exchange_secret": hex::encode(joiner.to_bytes().as_ref()),
        "joiner_exchange_key": j.to_hex(),
        "responder_exchange_secret": hex::encode(responder.to_bytes().as_ref()),
        "responder_exchange_key": r.to_hex(),
        "run": run,
        "replica": replica,
        "cluster_key": hex::encode(key),
        "key_check": hex::encode(key_check(&key)),
        "ecdh_shared_x": hex::encode(shared.as_ref()),
        "nonce": hex::encode(nonce),
        "sealed_key": hex::encode(&sealed),
        "join_statement_bytes": hex::encode(statement_bytes(StatementKind::ClusterJoin, &join)),
        "join_signature": hex::encode(sign_statement(&signing, StatementKind::ClusterJoin, &join)),
        "grant_statement_bytes": hex::encode(statement_bytes(StatementKind::ClusterGrant, &grant)),
        "grant_signature": hex::encode(sign_statement(&signing, StatementKind::ClusterGrant, &grant)),
    })
}

/// The TLS channel binding and the RA-TLS certificate (`docs/PROTOCOL.md` §19), with the
/// attestation vectors' signing key and measurement. The exporter value and the certificate
/// stand in for what a TLS connection would give.
fn tls_vectors() -> Value {
    use crate::tls::{CertificateEvidence, certificate_report_data, channel_fields};
    let secret = hex::decode(SIGNING_SECRET).expect("hex");
    let signing = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let signing_pub = EncodedPublicKey::from_key(&p256::PublicKey::from(signing.verifying_key()));
    let measurement = sha256(b"example host binary");
    let exporter = [0x11u8; 32];
    let nonce = [0x22u8; 32];
    let certificate_sha256 = sha256(b"example certificate");
    let audience = "5f1c2a9e07b34d8c9a61e2f0b7d4c3a8";
    let fields = channel_fields(&exporter, &nonce, &certificate_sha256, audience);
    let signature = sign_statement(&signing, StatementKind::TlsChannel, &fields);
    let spki_sha256 = sha256(b"example SubjectPublicKeyInfo");
    let created_at = KEY_CREATED_AT + 60;
    let fields_rd: [&[u8]; 4] = [
        &spki_sha256,
        signing_pub.as_bytes(),
        &measurement,
        &created_at.to_be_bytes(),
    ];
    let rd_preimage = report_data_preimage(ReportPurpose::TlsCertificate, &fields_rd);
    let extension = CertificateEvidence {
        evidence_format: "simulated-not-for-production".into(),
        evidence: b"example evidence".to_vec(),
        signing_key: signing_pub,
        host_measurement: measurement,
        created_at,
        event_log: None,
    }
    .to_extension_value()
    .expect("encodes");
    json!({
        "exporter_label": String::from_utf8_lossy(crate::tls::EXPORTER_LABEL),
        "channel": {
            "exporter": hex::encode(exporter),
            "nonce": hex::encode(nonce),
            "certificate_sha256": hex::encode(certificate_sha256),
            "audience": audience,
            "statement_bytes": hex::encode(statement_bytes(StatementKind::TlsChannel, &fields)),
            "signature": hex::encode(signature),
        },
        "certificate": {
            "spki_sha256": hex::encode(spki_sha256),
            "created_at": created_at,
            "report_data_preimage": hex::encode(&rd_preimage),
            "report_data": hex::encode(certificate_report_data(
                &spki_sha256,
                &signing_pub,
                &measurement,
                created_at,
            )),
            "extension_oid": crate::tls::CERTIFICATE_EVIDENCE_OID,
            "extension_value": hex::encode(extension),
        },
    })
}

/// An A2A agent card signed by the attested key (`docs/PROTOCOL.md` §21): the JWS protected
/// header, the canonical payload (RFC 8785, without `signatures`, empty values and the 0.3
/// fields), the signing input and the ES256 signature (RFC 6979 nonce: deterministic).
fn a2a_vectors() -> Value {
    use crate::a2a::card;
    use p256::ecdsa::signature::Signer;
    let secret = hex::decode(SIGNING_SECRET).expect("hex");
    let signing = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let signing_pub = EncodedPublicKey::from_key(&p256::PublicKey::from(signing.verifying_key()));
    let mut agent_card = json!({
        "name": "stats",
        "description": "word counts",
        "supportedInterfaces": [
            {"url": "https://host.example/agents/stats/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "1.0"},
            {"url": "https://host.example/agents/stats/a2a", "protocolBinding": "JSONRPC", "protocolVersion": "0.3"}
        ],
        "version": "1",
        "capabilities": {"streaming": true, "extensions": []},
        "defaultInputModes": ["application/json", "text/plain"],
        "defaultOutputModes": ["application/json", "text/plain"],
        "skills": [{"id": "stats", "name": "stats", "description": "word counts \u{2014} per text", "tags": ["text"]}],
        "documentationUrl": "",
    });
    let protected = card::protected_header(&signing_pub);
    let payload = card::payload(&agent_card).expect("card");
    let input = card::signing_input(&protected, &agent_card).expect("card");
    let signature: p256::ecdsa::Signature = signing.sign(input.as_bytes());
    let signature: [u8; 64] = signature.normalize_s().to_bytes().into();
    agent_card["signatures"] = json!([card::signature_entry(&protected, &signature)]);
    agent_card["url"] = json!("https://host.example/agents/stats/a2a");
    agent_card["protocolVersion"] = json!("0.3.0");
    card::verify(&agent_card, &signing_pub).expect("the vector verifies");
    json!({
        "card": agent_card,
        "jwk": card::jwk(&signing_pub),
        "key_id": card::key_id(&signing_pub),
        "protected": protected,
        "payload": payload,
        "signing_input": String::from_utf8_lossy(input.as_bytes()),
    })
}

/// x402 signed offers and receipts (`docs/PROTOCOL.md` §6b): the attested signing key's
/// `did:key` and `kid`, an offer and a receipt with their signing inputs and compact JWS
/// (ES256, RFC 6979 nonces: deterministic, low s).
fn offer_receipt_vectors() -> Value {
    use crate::offer_receipt::{self as or, Artifact, RunBinding};
    use p256::ecdsa::signature::Signer;
    let secret = hex::decode(SIGNING_SECRET).expect("hex");
    let signing = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let key = EncodedPublicKey::from_key(&p256::PublicKey::from(signing.verifying_key()));
    let sign = |artifact: Artifact, payload: &Value| {
        let input = or::signing_input(artifact, &key, payload).expect("input");
        let signature: p256::ecdsa::Signature = signing.sign(input.as_bytes());
        let jws = input.compact(&signature.normalize_s().to_bytes().into());
        assert_eq!(
            &or::verify(&jws, artifact, &key).expect("the vector verifies"),
            payload
        );
        json!({
            "payload": payload,
            "signing_input": String::from_utf8_lossy(input.as_bytes()),
            "jws": jws,
        })
    };
    let offer = or::offer_payload(
        "https://host.example/agents/stats/invoke",
        "exact",
        "eip155:84532",
        "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
        "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
        "7000",
        KEY_CREATED_AT + 60,
    );
    let run = RunBinding {
        execution_id: "01936f3a-8c2e-7b4d-9f10-2a3b4c5d6e80".into(),
        route: "/agents/stats/invoke".into(),
        agent: Some("stats".into()),
        code_hash: hex::encode(sha256(b"stats")),
        result_commitment: Some(hex::encode(sha256(b"result"))),
        status: "exited".into(),
        amount: "7000".into(),
        tee: "tdx".into(),
        evidence_sha256: hex::encode(sha256(b"evidence")),
        attestation: "https://host.example/attestation".into(),
        metered: None,
    };
    // A metered run's receipt (x402 upto): the meter, tariff and maximum under
    // `hypervisor.metered`; `amount` is the charge they come to.
    let tariff = crate::tariff::Tariff {
        fixed: "1000".into(),
        per_million_fuel: "2000".into(),
        per_ms: "0".into(),
        per_kib_out: "100".into(),
    };
    let meter = crate::tariff::Meter {
        fuel: 310_000,
        ms: 4,
        output_bytes: 15,
    };
    let metered_run = RunBinding {
        amount: tariff.charge(&meter, 50_000).expect("rates").to_string(),
        metered: Some(or::Metering {
            meter,
            tariff,
            maximum: "50000".into(),
        }),
        ..run.clone()
    };
    let metered_receipt = or::receipt_payload(
        "eip155:84532",
        "https://host.example/agents/stats/invoke",
        "0x857b06519E91e3A54538791bDbb0E22373e36b66",
        KEY_CREATED_AT + 5,
        Some("0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"),
        &metered_run,
    );
    let receipt = or::receipt_payload(
        "eip155:84532",
        "https://host.example/agents/stats/invoke",
        "0x857b06519E91e3A54538791bDbb0E22373e36b66",
        KEY_CREATED_AT + 5,
        Some("0x1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef"),
        &run,
    );
    json!({
        "did_key": or::did_key(&key).expect("key"),
        "kid": or::kid(&key).expect("key"),
        "offer": sign(Artifact::Offer, &offer),
        "receipt": sign(Artifact::Receipt, &receipt),
        "metered_receipt": sign(Artifact::Receipt, &metered_receipt),
    })
}

/// Owner signatures of agents (`docs/PROTOCOL.md` §17): the client key signs a deployment of
/// the vector program (private, paid, with a lifetime and two of the three limits, so the
/// detail shows every kind of setting including an absent one) and a deletion. ECDSA P-256 /
/// SHA-256, RFC 6979 nonces, low s.
fn agent_vectors(program: &[u8]) -> Value {
    use crate::agents::{DeployRequest, OwnerAction, OwnerStatement, deploy_detail};
    use crate::wire::Limits;
    let secret = hex::decode(CLIENT_SECRET).expect("hex");
    let key = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let sign = |message: &[u8]| crate::owner::owner_signature_hex(&key, message);
    let signed_at = KEY_CREATED_AT;
    let code = hex::encode(sha256(program));
    let request = DeployRequest {
        name: "text-stats".into(),
        description: "word counts".into(),
        tags: vec!["text".into()],
        public_key: ClientSecret::from_bytes(&secret)
            .expect("scalar")
            .public_key()
            .to_hex(),
        component: None,
        encrypted_component: None,
        program_kind: None,
        js: None,
        encrypted_js: None,
        session_id: None,
        public: Some(false),
        limits: Some(Limits {
            time_ms: Some(2000),
            memory_bytes: Some(67_108_864),
            fuel: None,
        }),
        price: Some("10000".into()),
        ttl_seconds: Some(3600),
        signature: None,
        signed_at: None,
        sequence: None,
        charge: None,
        tariff: None,
        content_type: None,
        grants: None,
        schemas: None,
    };
    let detail = deploy_detail(&code, &request);
    let statement = |action, sequence, detail| OwnerStatement {
        audience: AUDIENCE,
        action,
        name: "text-stats",
        signed_at,
        sequence,
        detail,
    };
    let deploy = statement(OwnerAction::Deploy, OWNER_SEQUENCE, &detail).message();
    let delete = statement(OwnerAction::Delete, OWNER_SEQUENCE + 1, "").message();
    let deploy_signature = sign(&deploy);
    // The same deployment declaring its MCP tool's schemas: one more line, their digest.
    let schemas = crate::agents::ToolSchemas {
        input: Some(json!({
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The text to count"}},
            "required": ["text"]
        })),
        output: Some(json!({
            "type": "object",
            "properties": {"words": {"type": "integer"}, "sentences": {"type": "integer"}}
        })),
    };
    let with_schemas = DeployRequest {
        schemas: Some(schemas.clone()),
        ..request.clone()
    };
    // A metered deployment (x402 upto, §6b): the price is the maximum, the tariff one line.
    let tariff = crate::tariff::Tariff {
        fixed: "1000".into(),
        per_million_fuel: "2000".into(),
        per_ms: "3".into(),
        per_kib_out: "100".into(),
    };
    let metered = DeployRequest {
        tariff: Some(tariff.clone()),
        ..request.clone()
    };
    // Rates left out of a tariff's JSON read as "0", and are signed so.
    let partial_json = json!({"fixed": "1000", "per_kib_out": "100"});
    let partial: crate::tariff::Tariff =
        serde_json::from_value(partial_json.clone()).expect("a tariff");
    let partially_metered = DeployRequest {
        tariff: Some(partial),
        ..request.clone()
    };
    let maximum: u128 = 10_000;
    let rates = tariff.rates().expect("rates");
    let charges: Vec<Value> = [
        (0, 0, 0),
        (2_500_001, 12, 1025),
        (310_000, 4, 15),
        (u64::MAX, 0, 0),
    ]
    .into_iter()
    .map(|(fuel, ms, output_bytes)| {
        let meter = crate::tariff::Meter {
            fuel,
            ms,
            output_bytes,
        };
        json!({
            "meter": meter,
            "charge": rates.charge(&meter, maximum).to_string(),
        })
    })
    .collect();
    json!({
        "owner_secret": CLIENT_SECRET,
        "audience": AUDIENCE,
        "name": "text-stats",
        "signed_at": signed_at,
        "deploy_sequence": OWNER_SEQUENCE,
        "delete_sequence": OWNER_SEQUENCE + 1,
        "component_sha256": code,
        // The deployment's fields as sent (without the component and the signature); the
        // detail covers `public`, `price`, `ttl_seconds` and `limits`.
        "deploy_request": serde_json::to_value(&request).expect("json"),
        "deploy_detail": detail,
        "deploy_message": hex::encode(&deploy),
        "deploy_signature": deploy_signature,
        // Must refuse: the same signature with s replaced by n - s. ECDSA accepts both forms of
        // a signature; owner signatures must be low-s (s <= n/2), so this one is refused.
        "deploy_signature_high_s": {
            "message": "deploy_message",
            "signature": high_s(&deploy_signature),
            "must_refuse": true,
            "why": "the high-s form (r, n - s) of deploy_signature: valid ECDSA, but signatures must be low-s (s <= n/2)",
        },
        "delete_message": hex::encode(&delete),
        "delete_signature": sign(&delete),
        // `schemas`: the RFC 8785 canonical JSON of the object as sent, its SHA-256, and the
        // deploy detail with its `schemas=` line.
        "schemas": {
            "schemas": serde_json::to_value(&schemas).expect("json"),
            "canonical": String::from_utf8(schemas.canonical().expect("jcs")).expect("utf-8"),
            "digest": schemas.digest().expect("jcs"),
            "deploy_detail": deploy_detail(&code, &with_schemas),
        },
        // `tariff`: the deploy detail with its `tariff=` line, and charges by the formula of
        // §6b for some meters (the maximum is the request's price), and the fuel cap.
        "tariff": {
            "tariff": serde_json::to_value(&tariff).expect("json"),
            "deploy_detail": deploy_detail(&code, &metered),
            "maximum": maximum.to_string(),
            "fuel_cap": rates.fuel_cap(maximum),
            "charges": charges,
            "partial": {
                "tariff": partial_json,
                "deploy_detail": deploy_detail(&code, &partially_metered),
            },
        },
    })
}

/// x402 sign-in-with-x (§6b): a sign-in to the vector host's paid agent, signed by the vector
/// wallet ([`WALLET_SECRET`]): the payload as the `SIGN-IN-WITH-X` header carries it, the
/// EIP-4361 message signed (EIP-191), and the header. The nonce is a host's (16 random bytes
/// and a 16-byte tag, hex); a verifier checks the message and the signature.
fn sign_in_vector() -> Value {
    let secret: [u8; 32] = hex::decode(WALLET_SECRET)
        .expect("hex")
        .try_into()
        .expect("32 bytes");
    let payload = x402_siwx::Payload {
        domain: "host.example".into(),
        address: String::new(),
        statement: Some("Sign in to use agent stats without paying again".into()),
        uri: "https://host.example/agents/stats/invoke".into(),
        version: "1".into(),
        chain_id: "eip155:84532".into(),
        kind: "eip191".into(),
        nonce: "5f1c2a9e07b34d8c9a61e2f0b7d4c3a8".repeat(2),
        issued_at: "2026-11-27T12:00:00.000Z".into(),
        expiration_time: Some("2026-11-27T12:05:00.000Z".into()),
        not_before: None,
        request_id: None,
        resources: Some(vec!["https://host.example/agents/stats/invoke".into()]),
        signature_scheme: None,
        signature: String::new(),
    };
    let signed = x402_siwx::sign(payload, &secret).expect("a valid sign-in");
    json!({
        "wallet_secret": WALLET_SECRET,
        "address": WALLET_ADDRESS,
        "payload": serde_json::to_value(&signed).expect("json"),
        "message": x402_siwx::message(&signed).expect("message"),
        "header": x402_siwx::encode_header(&signed),
    })
}

/// The audience of the vector host (`GET /host`).
pub const AUDIENCE: &str = "5f1c2a9e07b34d8c9a61e2f0b7d4c3a8";
/// The sequence number of the vector owner operations: the signing time in microseconds, as
/// the Rust client numbers them.
pub const OWNER_SEQUENCE: u64 = KEY_CREATED_AT * 1_000_000;

/// A wallet key (anvil's published first development key) and its EVM address.
pub const WALLET_SECRET: &str = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
/// The address of [`WALLET_SECRET`].
pub const WALLET_ADDRESS: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";

/// Owner signatures of agent-to-agent calls (`docs/PROTOCOL.md` §18): replacing an agent's
/// grants (action `grants`) and attaching a wallet (action `wallet`), by the vector client key.
fn agent_call_vectors() -> Value {
    use crate::agents::{OwnerAction, OwnerStatement};
    use crate::grants::{AgentRef, Grants};
    use crate::wallet::{SpendingPolicy, wallet_detail};
    let secret = hex::decode(CLIENT_SECRET).expect("hex");
    let key = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let sign = |message: &[u8]| crate::owner::owner_signature_hex(&key, message);
    let owner = ClientSecret::from_bytes(&secret)
        .expect("scalar")
        .public_key()
        .to_hex();
    let grants = Grants {
        agents: vec![AgentRef {
            name: "word-seller".into(),
            owner_key: owner.clone(),
        }],
        origins: vec!["https://api.example.com".into()],
        search: true,
        callers: Some(vec![AgentRef {
            name: "buyer".into(),
            owner_key: owner,
        }]),
        hypervisors: vec![crate::grants::HypervisorGrant {
            origin: "https://remote.example.com".into(),
            reference_values: vec![reference::example_set()],
            measurements: Vec::new(),
            allow_simulated: false,
        }],
        sign_in: Some(crate::grants::SignInGrant {
            wallets: vec!["0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A".into()],
            after_payment_seconds: 3600,
        }),
    };
    let grants_detail = grants.detail();
    let statement = |action, sequence, detail| OwnerStatement {
        audience: AUDIENCE,
        action,
        name: "buyer",
        signed_at: KEY_CREATED_AT,
        sequence,
        detail,
    };
    let grants_message = statement(OwnerAction::Grants, OWNER_SEQUENCE, &grants_detail).message();
    let policy = SpendingPolicy {
        networks: vec!["eip155:84532".into(), "base-sepolia".into()],
        assets: vec!["0x036CbD53842c5426634e7C541eC2c73a3D5a1a36".into()],
        max_per_call: "10000".into(),
        max_per_day: "50000".into(),
        max_total: "1000000".into(),
        payees: Some(vec!["0x209693Bc6afc0C5328bA36FaF03C514EF312287C".into()]),
    };
    let wallet = wallet_detail(WALLET_ADDRESS, &policy);
    let wallet_message = statement(OwnerAction::Wallet, OWNER_SEQUENCE + 1, &wallet).message();
    json!({
        "audience": AUDIENCE,
        "name": "buyer",
        "signed_at": KEY_CREATED_AT,
        "grants_sequence": OWNER_SEQUENCE,
        "wallet_sequence": OWNER_SEQUENCE + 1,
        "grants": serde_json::to_value(&grants).expect("json"),
        "grants_detail": grants_detail,
        "grants_message": hex::encode(&grants_message),
        "grants_signature": sign(&grants_message),
        "wallet_secret": WALLET_SECRET,
        "wallet_address": WALLET_ADDRESS,
        "wallet_policy": serde_json::to_value(&policy).expect("json"),
        "wallet_detail": wallet,
        "wallet_message": hex::encode(&wallet_message),
        "wallet_signature": sign(&wallet_message),
    })
}

/// A JavaScript agent's source (`docs/PROTOCOL.md` §24) and the SHA-256 its owner signs.
fn js_source_vector() -> Value {
    let js = js_source();
    // The same modules for StarlingMonkey: another label, so another digest.
    let sm = crate::agents::JsSource {
        engine: crate::agents::JsEngine::StarlingMonkey,
        ..js.clone()
    };
    json!({
        "source": serde_json::to_value(&js).expect("json"),
        "sha256": hex::encode(js.sha256()),
        "starlingmonkey": {
            "source": serde_json::to_value(&sm).expect("json"),
            "sha256": hex::encode(sm.sha256()),
        },
    })
}

/// The two-module TypeScript source of the `js_source` vector.
fn js_source() -> crate::agents::JsSource {
    use crate::agents::JsSource;
    JsSource {
        engine: Default::default(),
        main: "main.ts".into(),
        modules: [
            ("main.ts".to_string(), "import { sum } from \"./utils\";\nexport async function handler(event: {data: number[]}) { return sum(event.data); }\n".to_string()),
            ("utils.ts".to_string(), "export const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);\n".to_string()),
        ]
        .into_iter()
        .collect(),
    }
}

/// The configuration change of the `state` vectors (the exact bytes sealed and hashed).
const STATE_CONFIG_CHANGE: &str =
    r#"{"set":{"API_KEY":"sk-test-0123456789","REGION":"eu-west"},"remove":["OLD_TOKEN"]}"#;
/// The export of the `state` vectors.
const STATE_EXPORT: &str = r#"{"agent":"keeper","exported_at_ms":1767225600000,"buckets":{"cart":{"item":"Ym9vaw=="},"default":{"visits":"AwAAAAAAAAA="}}}"#;

/// Agents' state and configuration (PROTOCOL.md §23): the configuration detail, the owner
/// statements of `config`, `read-config`, `export-state` and `wipe-state` with their
/// signatures, and value hashes.
fn state_vectors() -> Value {
    use crate::agents::{OwnerAction, OwnerStatement};
    use crate::state::{config_detail, value_hash};
    let secret = hex::decode(CLIENT_SECRET).expect("hex");
    let key = p256::ecdsa::SigningKey::from_slice(&secret).expect("scalar");
    let sign = |message: &[u8]| crate::owner::owner_signature_hex(&key, message);
    let detail = config_detail(STATE_CONFIG_CHANGE.as_bytes());
    let import = crate::state::import_detail(STATE_EXPORT.as_bytes(), true);
    let message = |action, sequence, detail: &str| {
        OwnerStatement {
            audience: AUDIENCE,
            action,
            name: "keeper",
            signed_at: KEY_CREATED_AT,
            sequence,
            detail,
        }
        .message()
    };
    let statements: Vec<Value> = [
        (OwnerAction::Config, detail.as_str()),
        (OwnerAction::ReadConfig, ""),
        (OwnerAction::ExportState, ""),
        (OwnerAction::WipeState, ""),
        (OwnerAction::ImportState, import.as_str()),
    ]
    .iter()
    .enumerate()
    .map(|(i, (action, detail))| {
        let sequence = OWNER_SEQUENCE + 10 + i as u64;
        let m = message(*action, sequence, detail);
        json!({
            "action": action.as_str(),
            "sequence": sequence,
            "detail": detail,
            "message": hex::encode(&m),
            "signature": sign(&m),
        })
    })
    .collect();
    json!({
        "audience": AUDIENCE,
        "name": "keeper",
        "signed_at": KEY_CREATED_AT,
        "config_change": STATE_CONFIG_CHANGE,
        "config_detail": detail,
        "statements": statements,
        "value_hashes": [
            {"agent": "keeper", "name": "API_KEY", "value": "sk-test-0123456789",
             "sha256": value_hash("keeper", "API_KEY", "sk-test-0123456789")},
            {"agent": "other", "name": "API_KEY", "value": "sk-test-0123456789",
             "sha256": value_hash("other", "API_KEY", "sk-test-0123456789")},
        ],
        "export": STATE_EXPORT,
        "import_detail": import,
    })
}

/// The P-256 group order n, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// The high-s twin `r || (n - s)` of a 64-byte `r || s` signature (hex in, hex out).
fn high_s(low: &str) -> String {
    let mut sig = hex::decode(low).expect("hex");
    assert_eq!(sig.len(), 64, "r || s");
    let mut borrow = 0u16;
    for i in (0..32).rev() {
        let (n, s) = (u16::from(P256_ORDER[i]), u16::from(sig[32 + i]) + borrow);
        let (digit, b) = if n >= s { (n - s, 0) } else { (n + 256 - s, 1) };
        sig[32 + i] = u8::try_from(digit).expect("a byte");
        borrow = b;
    }
    assert_eq!(borrow, 0, "s < n");
    hex::encode(sig)
}

//! Unit tests of the SIWx header, message and signature, against vectors made with the official
//! TypeScript SDK (`@x402/extensions` 2.27, `@signinwithethereum/siwe` 4.2.1, viem 2.57).

use super::*;

/// The test key: 32 bytes of 0x11.
const KEY: [u8; 32] = [0x11; 32];
/// Its address, EIP-55.
const ADDRESS: &str = "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A";
/// viem's signature (key [`KEY`]) of the message of [`spec_payload`].
const SPEC_SIGNATURE: &str = "0x24b1da6ea82f884bcbc96bfdd84fe3f78d102bfa9ab1ec2e06500f441adb64701967e7518fbd19143369c78df17db0137a071ff1e4fe8764f3e2a9a7a49b0d201c";

/// The x402 specification's example sign-in (statement, expiration, resources on Base),
/// signed with [`KEY`].
fn spec_payload() -> Payload {
    Payload {
        domain: "api.example.com".into(),
        address: ADDRESS.into(),
        statement: Some("Sign in to access premium data".into()),
        uri: "https://api.example.com/premium-data".into(),
        version: "1".into(),
        chain_id: "eip155:8453".into(),
        kind: "eip191".into(),
        nonce: "a1b2c3d4e5f67890a1b2c3d4e5f67890".into(),
        issued_at: "2024-01-15T10:30:00.000Z".into(),
        expiration_time: Some("2024-01-15T10:35:00.000Z".into()),
        not_before: None,
        request_id: None,
        resources: Some(vec!["https://api.example.com/premium-data".into()]),
        signature_scheme: None,
        signature: SPEC_SIGNATURE.into(),
    }
}

/// A challenge without statement or expiration, with an empty request id and resource list,
/// unsigned.
fn bare_payload() -> Payload {
    Payload {
        domain: "localhost:4021".into(),
        address: String::new(),
        statement: None,
        uri: "http://localhost:4021/weather?city=Paris".into(),
        version: "1".into(),
        chain_id: "eip155:84532".into(),
        kind: "eip191".into(),
        nonce: "0123456789abcdef0123456789abcdef".into(),
        issued_at: "2026-03-01T12:00:00.000Z".into(),
        expiration_time: None,
        not_before: None,
        request_id: Some(String::new()),
        resources: Some(vec![]),
        signature_scheme: None,
        signature: String::new(),
    }
}

fn code<T: std::fmt::Debug>(r: Result<T, Refusal>) -> &'static str {
    r.expect_err("refused").code()
}

fn with(f: impl FnOnce(&mut Payload)) -> Payload {
    let mut p = spec_payload();
    f(&mut p);
    p
}

#[test]
fn the_spec_vector_verifies() {
    let p = spec_payload();
    assert_eq!(
        message(&p).unwrap(),
        "api.example.com wants you to sign in with your Ethereum account:\n\
         0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A\n\
         \n\
         Sign in to access premium data\n\
         \n\
         URI: https://api.example.com/premium-data\n\
         Version: 1\n\
         Chain ID: 8453\n\
         Nonce: a1b2c3d4e5f67890a1b2c3d4e5f67890\n\
         Issued At: 2024-01-15T10:30:00.000Z\n\
         Expiration Time: 2024-01-15T10:35:00.000Z\n\
         Resources:\n\
         - https://api.example.com/premium-data"
    );
    let address = verify(&p).unwrap();
    assert_eq!(address.to_checksum(None), ADDRESS);
    // RFC 6979: signing again gives viem's bytes.
    let mut unsigned = p.clone();
    unsigned.signature.clear();
    assert_eq!(sign(unsigned, &KEY).unwrap(), p);
}

#[test]
fn without_a_statement_two_blank_lines() {
    let p = sign(bare_payload(), &KEY).unwrap();
    assert_eq!(
        message(&p).unwrap(),
        "localhost:4021 wants you to sign in with your Ethereum account:\n\
         0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A\n\
         \n\
         \n\
         URI: http://localhost:4021/weather?city=Paris\n\
         Version: 1\n\
         Chain ID: 84532\n\
         Nonce: 0123456789abcdef0123456789abcdef\n\
         Issued At: 2026-03-01T12:00:00.000Z\n\
         Request ID: \n\
         Resources:"
    );
    // The header the SDK's client (`createSIWxPayload`, `encodeSIWxHeader`) sends for it.
    assert_eq!(
        encode_header(&p),
        "eyJkb21haW4iOiJsb2NhbGhvc3Q6NDAyMSIsImFkZHJlc3MiOiIweDE5RTdFMzc2RTdDMjEzQjdFN2U3ZTQ2Y2M3MEE1ZEQwODZEQWZmMkEiLCJ1cmkiOiJodHRwOi8vbG9jYWxob3N0OjQwMjEvd2VhdGhlcj9jaXR5PVBhcmlzIiwidmVyc2lvbiI6IjEiLCJjaGFpbklkIjoiZWlwMTU1Ojg0NTMyIiwidHlwZSI6ImVpcDE5MSIsIm5vbmNlIjoiMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYiLCJpc3N1ZWRBdCI6IjIwMjYtMDMtMDFUMTI6MDA6MDAuMDAwWiIsInJlcXVlc3RJZCI6IiIsInJlc291cmNlcyI6W10sInNpZ25hdHVyZSI6IjB4OTc5ZTk3Y2ZiNzY0NTRiMGI4MDQyNzkwYmM4ZTIwMzk1NjhkODcwMTA4ODMzMWIwYjNlZDYyMjc1ZmFmNmY0NzAzMGFkOGNlNzIwYjViNzlhMGQ4YzJmYTEwMmQwZWYwZDBjYzFlNzkzNGQ5NzcxYTEwNjliYjBjYzAxYjkzMDIxYyJ9"
    );
    assert_eq!(verify(&p).unwrap().to_checksum(None), ADDRESS);
}

#[test]
fn an_empty_statement_leaves_three_blank_lines() {
    // `statement: ""` is not `undefined` for the SIWE library.
    let p = with(|p| {
        p.statement = Some(String::new());
        p.expiration_time = None;
        p.resources = None;
    });
    let text = message(&p).unwrap();
    assert!(text.contains("0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A\n\n\n\nURI: "));
}

#[test]
fn sign_then_verify_and_the_header_round_trip() {
    let p = with(|p| {
        p.not_before = Some("2024-01-15T10:29:00Z".into());
        p.request_id = Some("req-1".into());
        p.signature_scheme = Some("eip191".into());
        p.address = "0x0000000000000000000000000000000000000001".into();
    });
    let key = [7u8; 32];
    let signed = sign(p, &key).unwrap();
    assert_eq!(signed.signature.len(), 132);
    assert!(matches!(&signed.signature[130..], "1b" | "1c"));
    // Low s.
    let s_top = u8::from_str_radix(&signed.signature[66..68], 16).unwrap();
    assert!(s_top < 0x80);
    let address = verify(&signed).unwrap();
    let key = SigningKey::from_slice(&key).unwrap();
    assert_eq!(address, Address::from_private_key(&key));
    assert_eq!(signed.address, address.to_checksum(None));

    let value = encode_header(&signed);
    assert_eq!(decode_header(&value).unwrap(), signed);
    let json: serde_json::Value =
        serde_json::from_slice(&STANDARD.decode(&value).unwrap()).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.as_str())
        .collect();
    // serde_json's map is sorted; the order on the wire is checked below.
    assert_eq!(keys.len(), 15);
    let wire = String::from_utf8(STANDARD.decode(&value).unwrap()).unwrap();
    let order = [
        "domain",
        "address",
        "statement",
        "uri",
        "version",
        "chainId",
        "type",
        "nonce",
        "issuedAt",
        "expirationTime",
        "notBefore",
        "requestId",
        "resources",
        "signatureScheme",
        "signature",
    ];
    let positions: Vec<usize> = order
        .iter()
        .map(|k| wire.find(&format!("\"{k}\":")).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{wire}");
}

#[test]
fn a_tampered_field_fails_the_signature() {
    let tampered = [
        with(|p| p.nonce = "a1b2c3d4e5f67890a1b2c3d4e5f67891".into()),
        with(|p| p.uri = "https://api.example.com/other".into()),
        with(|p| p.expiration_time = Some("2024-01-15T11:35:00.000Z".into())),
        with(|p| p.expiration_time = None),
        with(|p| p.statement = None),
        with(|p| p.chain_id = "eip155:1".into()),
        with(|p| p.request_id = Some(String::new())),
        with(|p| p.resources = Some(vec![])),
        with(|p| p.address = "0x0000000000000000000000000000000000000001".into()),
    ];
    for p in tampered {
        assert_eq!(code(verify(&p)), "invalid_siwx_signature", "{p:?}");
    }
    // Not in the message: the signature still holds.
    let p = with(|p| {
        p.signature_scheme = Some("eip1271".into());
    });
    assert!(verify(&p).is_ok());
    // Leading zeros of the chain id do not show in the message.
    assert!(verify(&with(|p| p.chain_id = "eip155:08453".into())).is_ok());
}

#[test]
fn unchecksummed_addresses_are_shown_checksummed() {
    for address in [
        ADDRESS.to_lowercase(),
        format!("0x{}", ADDRESS[2..].to_uppercase()),
    ] {
        let p = with(|p| p.address = address.clone());
        assert!(message(&p).unwrap().contains(&format!("\n{ADDRESS}\n")));
        assert_eq!(verify(&p).unwrap().to_checksum(None), ADDRESS);
    }
}

#[test]
fn a_wrong_checksum_is_refused() {
    // One letter's case flipped.
    let wrong = ADDRESS.replacen("E7", "e7", 1);
    for address in [
        wrong.as_str(),
        "0X19e7e376e7c213b7e7e7e46cc70a5dd086daff2a",
        "19E7E376E7C213B7E7e7e46cc70A5dD086DAff2A",
        "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff",
        "0x19E7E376E7C213B7E7e7e46cc70A5dD086DAff2G",
        "",
    ] {
        let p = with(|p| p.address = address.into());
        assert_eq!(code(message(&p)), "invalid_siwx_message", "{address}");
        assert_eq!(code(verify(&p)), "invalid_siwx_message", "{address}");
    }
}

#[test]
fn signatures_as_viem_reads_them() {
    let p = spec_payload();
    let sig = |s: String| with(|p| p.signature = s);
    let (rs, v) = SPEC_SIGNATURE.split_at(130);
    assert_eq!(v, "1c");
    // v as 0/1, upper-case hex.
    assert!(verify(&sig(format!("{rs}01"))).is_ok());
    assert!(verify(&sig(format!("0x{}", SPEC_SIGNATURE[2..].to_uppercase()))).is_ok());
    // High s (n - s, parity flipped): viem accepts it too.
    let n = alloy_primitives::U256::from_str_radix(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141",
        16,
    )
    .unwrap();
    let s = alloy_primitives::U256::from_str_radix(&SPEC_SIGNATURE[66..130], 16).unwrap();
    let high = format!("{}{:064x}1b", &SPEC_SIGNATURE[..66], n - s);
    assert!(verify(&sig(high)).is_ok());
    for bad in [
        format!("{rs}1d"),
        format!("{rs}23"),
        rs.to_string(),
        SPEC_SIGNATURE[2..].to_string(),
        format!("0X{}", &SPEC_SIGNATURE[2..]),
        format!("{SPEC_SIGNATURE}00"),
        format!("0x0x{}", &SPEC_SIGNATURE[4..]),
        format!("{}zz", &SPEC_SIGNATURE[..130]),
        format!("0x{}", "00".repeat(65)),
        String::new(),
    ] {
        assert_eq!(
            code(verify(&sig(bad.clone()))),
            "invalid_siwx_signature",
            "{bad}"
        );
    }
    assert!(verify(&p).is_ok());
}

#[test]
fn headers_the_sdk_refuses() {
    let good = encode_header(&spec_payload());
    assert_eq!(decode_header(&good).unwrap(), spec_payload());
    // Padding is optional (atob); spaces around the value are not part of it.
    assert_eq!(
        decode_header(good.trim_end_matches('=')).unwrap(),
        spec_payload()
    );
    assert_eq!(
        decode_header(&format!(" {good}\t")).unwrap(),
        spec_payload()
    );

    let b64 = |json: &str| STANDARD.encode(json);
    let object = |extra: &str| {
        let mut v = serde_json::to_value(spec_payload()).unwrap();
        let extra: serde_json::Value = serde_json::from_str(extra).unwrap();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        b64(&v.to_string())
    };
    let missing = {
        let mut v = serde_json::to_value(spec_payload()).unwrap();
        v.as_object_mut().unwrap().remove("nonce");
        b64(&v.to_string())
    };
    // base64url: "-" and "_" for "+" and "/" ("~~~" and "???" encode to "fn5+" and "Pz8/").
    let tildes = encode_header(&with(|p| p.statement = Some("~~~???~~~???".into())));
    let url_safe = tildes.replace('+', "-").replace('/', "_");
    assert!(decode_header(&tildes).is_ok());
    assert_ne!(url_safe, tildes, "{tildes}");
    let refused = [
        "!!!not base64!!!".to_string(),
        url_safe,
        format!("{good}==="),
        format!("{}=", good.trim_end_matches('=')),
        "QUJDR".to_string(),
        "QQ=".to_string(),
        "ab=c".to_string(),
        String::new(),
        b64("not json"),
        b64("[]"),
        b64("\"a string\""),
        b64("null"),
        b64("42"),
        STANDARD.encode([0xff, 0xfe, b'{', b'}']),
        object(r#"{"statement": null}"#),
        object(r#"{"expirationTime": null}"#),
        object(r#"{"resources": null}"#),
        object(r#"{"resources": "https://a.example"}"#),
        object(r#"{"nonce": 12345678}"#),
        object(r#"{"type": "eip712"}"#),
        object(r#"{"signatureScheme": "other"}"#),
        missing,
        "A".repeat(MAX_HEADER_BYTES + 1),
    ];
    for value in refused {
        assert_eq!(
            code(decode_header(&value)),
            "invalid_siwx_header",
            "{value}"
        );
    }
    // Unknown fields are ignored; the last of duplicate keys counts, as in JSON.parse.
    let extra = object(r#"{"x402Version": 2, "note": {"a": [1, null]}}"#);
    assert_eq!(decode_header(&extra).unwrap(), spec_payload());
    let dup = b64(&format!(
        "{{\"nonce\":\"zzzzzzzz\",{}",
        &serde_json::to_string(&spec_payload()).unwrap()[1..]
    ));
    assert_eq!(decode_header(&dup).unwrap(), spec_payload());
    // The size limit is on the header value.
    let padded = format!("{good}{}", " ".repeat(MAX_HEADER_BYTES - good.len()));
    assert!(decode_header(&padded).is_ok());
}

#[test]
fn solana_and_other_chains_are_refused() {
    let solana = with(|p| {
        p.chain_id = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into();
        p.kind = "ed25519".into();
        p.signature_scheme = Some("siws".into());
    });
    let header = encode_header(&solana);
    let decoded = decode_header(&header).unwrap();
    let refusal = verify(&decoded).unwrap_err();
    assert_eq!(refusal.code(), "invalid_siwx_unsupported_chain");
    assert!(
        refusal
            .to_string()
            .contains("only EVM (eip191) sign-in is supported")
    );
    // An ed25519 type on an EVM chain, an EVM type on Solana, an unknown namespace.
    for p in [
        with(|p| p.kind = "ed25519".into()),
        with(|p| p.chain_id = "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp".into()),
        with(|p| p.chain_id = "cosmos:cosmoshub-4".into()),
        with(|p| p.chain_id = "8453".into()),
    ] {
        assert_eq!(code(verify(&p)), "invalid_siwx_unsupported_chain", "{p:?}");
    }
    assert_eq!(
        code(sign(with(|p| p.kind = "ed25519".into()), &KEY)),
        "invalid_siwx_unsupported_chain"
    );
}

#[test]
fn chain_ids() {
    assert_eq!(evm_chain_id("eip155:8453"), Ok(8453));
    assert_eq!(evm_chain_id("eip155:0"), Ok(0));
    assert_eq!(evm_chain_id("eip155:0084532"), Ok(84532));
    assert_eq!(evm_chain_id("eip155:18446744073709551615"), Ok(u64::MAX));
    for bad in [
        "eip155:",
        "eip155:+1",
        "eip155:-1",
        "eip155:1.0",
        "eip155: 1",
        "eip155:0x2105",
        "eip155:18446744073709551616",
        "eip155:١",
    ] {
        assert_eq!(code(evm_chain_id(bad)), "invalid_siwx_chain_id", "{bad}");
        assert_eq!(
            code(verify(&with(|p| p.chain_id = bad.into()))),
            "invalid_siwx_chain_id"
        );
    }
    for other in ["EIP155:1", "solana:x", "", "eip155"] {
        assert_eq!(
            code(evm_chain_id(other)),
            "invalid_siwx_unsupported_chain",
            "{other}"
        );
    }
}

#[test]
fn fields_the_grammar_refuses() {
    let cases: Vec<(&str, Payload)> = vec![
        ("short nonce", with(|p| p.nonce = "abc1234".into())),
        ("nonce with -", with(|p| p.nonce = "abcd-1234".into())),
        ("non-ASCII nonce", with(|p| p.nonce = "abcdéfgh1".into())),
        ("version", with(|p| p.version = "2".into())),
        ("empty version", with(|p| p.version = String::new())),
        ("empty domain", with(|p| p.domain = String::new())),
        (
            "domain with space",
            with(|p| p.domain = "api example.com".into()),
        ),
        (
            "domain with /",
            with(|p| p.domain = "api.example.com/x".into()),
        ),
        (
            "domain with scheme",
            with(|p| p.domain = "https://api.example.com".into()),
        ),
        (
            "domain with newline",
            with(|p| p.domain = "a.com\nb.com".into()),
        ),
        ("domain bad port", with(|p| p.domain = "a.com:80x".into())),
        ("domain bad ipv6", with(|p| p.domain = "[::g]".into())),
        (
            "domain long ipv4 octet",
            with(|p| p.domain = "[::1.2.3.99999999999999999999]".into()),
        ),
        ("relative uri", with(|p| p.uri = "/premium-data".into())),
        ("empty uri", with(|p| p.uri = String::new())),
        (
            "uri with space",
            with(|p| p.uri = "https://a.com/x y".into()),
        ),
        (
            "uri bad escape",
            with(|p| p.uri = "https://a.com/%zz".into()),
        ),
        ("uri bad scheme", with(|p| p.uri = "1http://a.com".into())),
        (
            "uri infinite port",
            with(|p| p.uri = format!("http://a.com:{}", "9".repeat(400))),
        ),
        (
            "uri ipv6 with 9 groups",
            with(|p| p.uri = "http://[1:2:3:4:5:6:7:8:9]/".into()),
        ),
        (
            "resource not a URI",
            with(|p| p.resources = Some(vec!["premium-data".into()])),
        ),
        (
            "resource with newline",
            with(|p| p.resources = Some(vec!["https://a.com\n- https://b.com".into()])),
        ),
        ("issuedAt empty", with(|p| p.issued_at = String::new())),
        (
            "issuedAt date only",
            with(|p| p.issued_at = "2024-01-15".into()),
        ),
        (
            "issuedAt no offset",
            with(|p| p.issued_at = "2024-01-15T10:30:00".into()),
        ),
        (
            "issuedAt Feb 30",
            with(|p| p.issued_at = "2024-02-30T10:30:00Z".into()),
        ),
        (
            "issuedAt hour 24",
            with(|p| p.issued_at = "2024-01-15T24:00:00Z".into()),
        ),
        (
            "issuedAt space",
            with(|p| p.issued_at = "2024-01-15 10:30:00Z".into()),
        ),
        (
            "issuedAt empty fraction",
            with(|p| p.issued_at = "2024-01-15T10:30:00.Z".into()),
        ),
        (
            "expirationTime empty",
            with(|p| p.expiration_time = Some(String::new())),
        ),
        (
            "notBefore offset hour 24",
            with(|p| p.not_before = Some("2024-01-15T10:30:00+24:00".into())),
        ),
        (
            "requestId with /",
            with(|p| p.request_id = Some("a/b".into())),
        ),
        (
            "requestId with space",
            with(|p| p.request_id = Some("a b".into())),
        ),
    ];
    for (what, p) in cases {
        assert_eq!(code(message(&p)), "invalid_siwx_message", "{what}");
        assert_eq!(code(verify(&p)), "invalid_siwx_message", "{what}");
    }
    for c in [
        '\n', '\r', '\t', '"', '%', '<', '>', '\\', '^', '`', '{', '|', '}', 'é', '\u{7f}',
    ] {
        let p = with(|p| p.statement = Some(format!("Sign in {c} here")));
        assert_eq!(code(message(&p)), "invalid_siwx_message", "{c:?}");
    }
}

#[test]
fn fields_the_grammar_accepts() {
    let statement = "Sign in: #1 [a-z] ~ 'x' (y) $5 & @me; a=b? _ok_ , * + / !";
    let accepted = [
        with(|p| p.statement = Some(statement.into())),
        with(|p| p.domain = "localhost:4021".into()),
        with(|p| p.domain = "user:pw@127.0.0.1:8080".into()),
        with(|p| p.domain = "[::1]:8080".into()),
        with(|p| p.domain = "xn--bcher-kva.example".into()),
        with(|p| p.uri = "http://[::ffff:01.2.3.4]/".into()),
        with(|p| p.uri = "http://[1:2:3:4:5:6:7::]/".into()),
        with(|p| p.uri = "http://[v1.x:y]/".into()),
        with(|p| p.uri = "urn:isbn:0451450523".into()),
        with(|p| p.uri = "https://a.com/p%20q?x=1&y=/?#frag/?".into()),
        with(|p| p.uri = "http://".into()),
        with(|p| p.uri = "ipfs://bafy/x//y".into()),
        with(|p| p.resources = Some(vec!["ipfs://bafy".into(), "mailto:a@b.c".into()])),
        with(|p| p.request_id = Some("A-1_~.%41:@!$&'()*+,;=".into())),
        with(|p| p.issued_at = "2024-01-15t10:30:00z".into()),
        with(|p| p.issued_at = "2024-01-15T10:30:00.123456789+05:30".into()),
        with(|p| p.issued_at = "2016-12-31T23:59:60Z".into()),
        with(|p| p.issued_at = "2024-02-29T00:00:00-00:00".into()),
        with(|p| p.nonce = "ABCDEFGH".into()),
    ];
    for p in accepted {
        let text = message(&p).unwrap_or_else(|e| panic!("{p:?}: {e}"));
        // Accepted, but not what was signed.
        assert_eq!(code(verify(&p)), "invalid_siwx_signature", "{text}");
    }
}

#[test]
fn times_as_javascript_writes_and_reads_them() {
    assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
    // `new Date(ms).toISOString()` in Node.js.
    let written = [
        (0, "1970-01-01T00:00:00.000Z"),
        (-1, "1969-12-31T23:59:59.999Z"),
        (1705314600000, "2024-01-15T10:30:00.000Z"),
        (951782400000, "2000-02-29T00:00:00.000Z"),
        (-62135596800000, "0001-01-01T00:00:00.000Z"),
        (-62167219200000, "0000-01-01T00:00:00.000Z"),
        (-62167219200001, "-000001-12-31T23:59:59.999Z"),
        (253402300799999, "9999-12-31T23:59:59.999Z"),
        (253402300800000, "+010000-01-01T00:00:00.000Z"),
        (8640000000000000, "+275760-09-13T00:00:00.000Z"),
        (-8640000000000000, "-271821-04-20T00:00:00.000Z"),
        (1000000000123, "2001-09-09T01:46:40.123Z"),
        (-15768000000007, "1470-05-01T23:59:59.993Z"),
    ];
    for (ms, text) in written {
        assert_eq!(format_time(ms), text);
        if text.len() == 24 {
            assert_eq!(parse_time(text), Ok(ms), "{text}");
        }
    }
    assert_eq!(format_time(i64::MAX), "+275760-09-13T00:00:00.000Z");
    assert_eq!(format_time(i64::MIN), "-271821-04-20T00:00:00.000Z");
    // `new Date(text).getTime()` in Node.js.
    let read = [
        ("2024-01-15T10:30:00.000Z", 1705314600000),
        ("2024-01-15t10:30:00.5z", 1705314600500),
        ("2024-01-15T10:30:00.123456789+05:30", 1705294800123),
        ("2024-01-15T10:30:00-23:59", 1705400940000),
        ("2000-02-29T00:00:00Z", 951782400000),
        ("0000-01-01T00:00:00Z", -62167219200000),
        ("9999-12-31T23:59:59.999+00:00", 253402300799999),
        ("1969-12-31T23:59:59.999Z", -1),
        ("2024-01-15T00:00:00.9999-00:01", 1705276860999),
    ];
    for (text, ms) in read {
        assert_eq!(parse_time(text), Ok(ms), "{text}");
    }
    for ms in (-3_000_000_000_000i64..3_000_000_000_000).step_by(7_777_777_777) {
        assert_eq!(parse_time(&format_time(ms)), Ok(ms));
    }
    for bad in [
        "",
        "2016-12-31T23:59:60Z",
        "2023-02-29T00:00:00Z",
        "2024-04-31T00:00:00Z",
        "2024-13-01T00:00:00Z",
        "2024-00-01T00:00:00Z",
        "2024-01-15T10:60:00Z",
        "2024-01-15T10:30:00+0530",
        "2024-01-15T10:30:00ZZ",
        "+02024-01-15T10:30:00Z",
        "2024-01-15T10:30:00.000Z ",
        "2024-1-15T10:30:00Z",
        "１９７０-01-01T00:00:00Z",
    ] {
        assert_eq!(code(parse_time(bad)), "invalid_siwx_message", "{bad}");
    }
}

#[test]
fn invalid_keys_are_refused() {
    assert_eq!(
        code(sign(spec_payload(), &[0; 32])),
        "invalid_siwx_signature"
    );
    assert_eq!(
        code(sign(spec_payload(), &[0xff; 32])),
        "invalid_siwx_signature"
    );
    // A message refusal is reported before anything is signed.
    assert_eq!(
        code(sign(with(|p| p.version = "2".into()), &KEY)),
        "invalid_siwx_message"
    );
}

#[test]
fn refusal_messages_quote_and_cut_client_values() {
    let long = "x".repeat(10_000);
    let refusal = verify(&with(|p| p.uri = long.clone())).unwrap_err();
    assert!(refusal.to_string().len() < 200, "{refusal}");
    let refusal = evm_chain_id("eip155:\n1").unwrap_err();
    assert!(refusal.to_string().contains("\\n"), "{refusal}");
}

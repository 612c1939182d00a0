#!/usr/bin/env python3
"""Independent check of docs/test-vectors.json, written from docs/PROTOCOL.md alone.

Uses pyca/cryptography only (no code shared with the Rust implementation): P-256 ECDH,
HKDF-SHA256, AES-256-GCM-SIV, SHA-256. Exits non-zero on the first mismatch and prints
'N passed, 0 failed' on success.
"""
import base64
import hashlib
import json
import struct
import sys
import uuid
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HKDF_SALT = b"wasm-hypervisor/v1/hkdf-salt"
HKDF_INFO = b"wasm-hypervisor/v1/aes-256-gcm-siv"
AAD = b"wasm-hypervisor/v1/aad"
COMMITMENT = b"wasm-hypervisor/v1/result-commitment"
REPORT_DATA = b"wasm-hypervisor/v1/report-data"
STATEMENT = b"wasm-hypervisor/v1/statement"
ROLES = {"program": 1, "argument": 2, "stdin": 3, "result": 4, "event": 5, "agent-component": 6,
         "wallet-key": 7, "agent-config": 8, "state-export": 9,
         "agent-js": 10, "state-import": 11}

checks = 0


def check(name, got, want):
    global checks
    if got != want:
        print(f"MISMATCH {name}:\n  got  {got}\n  want {want}")
        sys.exit(1)
    checks += 1


def private(hex_scalar):
    return ec.derive_private_key(int(hex_scalar, 16), ec.SECP256R1())


def public_uncompressed(key):
    return key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def main():
    path = Path(__file__).resolve().parents[2] / "docs" / "test-vectors.json"
    v = json.loads(path.read_text())
    client = private(v["client_secret"])
    server = private(v["server_secret"])
    client_pub = public_uncompressed(client)
    server_pub = public_uncompressed(server)
    check("client_public", client_pub.hex(), v["client_public"])
    check("server_public", server_pub.hex(), v["server_public"])

    sid = uuid.UUID(v["session_id"]).bytes  # RFC 9562 byte order
    check("session_id_bytes", sid.hex(), v["session_id_bytes"])

    shared = client.exchange(ec.ECDH(), server.public_key())
    check("ecdh_shared_x (client side)", shared.hex(), v["ecdh_shared_x"])
    check("ecdh_shared_x (server side)", server.exchange(ec.ECDH(), client.public_key()).hex(), v["ecdh_shared_x"])

    salt = HKDF_SALT + sid
    info = HKDF_INFO + client_pub + server_pub
    check("hkdf_salt", salt.hex(), v["hkdf_salt"])
    check("hkdf_info", info.hex(), v["hkdf_info"])
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(shared)
    check("session_key", key.hex(), v["session_key"])

    aead = AESGCMSIV(key)
    for e in v["envelopes"]:
        role = e["role"].split(" ")[0]
        aad = AAD + sid + bytes([ROLES[role]]) + struct.pack(">I", e["index"])
        check(f"aad {e['role']}", aad.hex(), e["aad"])
        nonce = bytes.fromhex(e["nonce"])
        sealed = nonce + aead.encrypt(nonce, bytes.fromhex(e["plaintext"]), aad)
        check(f"envelope {e['role']}", sealed.hex(), e["envelope"])
        opened = aead.decrypt(sealed[:12], sealed[12:], aad)
        check(f"open {e['role']}", opened.hex(), e["plaintext"])

    c = v["commitment"]
    plain = {e["role"]: bytes.fromhex(e["plaintext"]) for e in v["envelopes"]}
    program = plain["program"]
    args = [plain["argument 0"], plain["argument 1"]]
    stdin = plain["stdin"]
    result = bytes.fromhex(c["result_plaintext"])
    check("result plaintext = result envelope", result, plain["result"])
    check("program_sha256", hashlib.sha256(program).hexdigest(), c["program_sha256"])
    check("argument_sha256", [hashlib.sha256(a).hexdigest() for a in args], c["argument_sha256"])
    check("stdin_sha256", hashlib.sha256(stdin).hexdigest(), c["stdin_sha256"])
    pre = COMMITMENT + sid + hashlib.sha256(program).digest() + struct.pack(">I", len(args))
    for a in args:
        pre += hashlib.sha256(a).digest()
    pre += hashlib.sha256(stdin).digest() + struct.pack(">Q", len(result)) + result
    check("result_commitment", hashlib.sha256(pre).hexdigest(), c["result_commitment"])
    check_attestation(v, sid, client_pub, server_pub)
    check_agents(v, client_pub)
    check_agent_calls(v, client_pub)
    check_reference_values(v)
    check_x402_resources(v)
    check_tls(v)
    check_cluster(v)
    check_a2a(v)
    check_offer_receipt(v)
    check_state(v, client_pub)
    check_js_source(v)
    check_riscv_program(v, sid, aead)
    print(f"vectors: {checks} passed, 0 failed")


def recognise(data):
    """The kind of program `data` is (PROTOCOL §6d), from its first bytes: "wasm", "riscv", None."""
    if data[:4] == b"\0asm":
        return "wasm"
    if data[:4] != b"\x7fELF" or len(data) < 20:
        return None
    klass, order = data[4], data[5]
    machine = int.from_bytes(data[18:20], "little" if order == 1 else "big")
    return "riscv" if machine == 243 and order == 1 and klass in (1, 2) else None


def check_riscv_program(v, sid, aead):
    r = v["riscv_program"]
    elf = bytes.fromhex(r["elf"])
    check("riscv kind", recognise(elf), r["kind"])
    for case in r["recognised"]:
        check(f"riscv recognised: {case['what']}", recognise(bytes.fromhex(case["bytes"])), case["kind"])
    check("riscv program_sha256", hashlib.sha256(elf).hexdigest(), r["program_sha256"])
    aad = AAD + sid + bytes([ROLES["program"]]) + struct.pack(">I", 0)
    nonce = bytes.fromhex(r["envelope_nonce"])
    check("riscv envelope (the ELF sealed unchanged)", (nonce + aead.encrypt(nonce, elf, aad)).hex(), r["envelope"])
    args = [bytes.fromhex(a) for a in r["arguments"]]
    stdin = bytes.fromhex(r["stdin"])
    result = bytes.fromhex(r["result_plaintext"])
    pre = COMMITMENT + sid + hashlib.sha256(elf).digest() + struct.pack(">I", len(args))
    for a in args:
        pre += hashlib.sha256(a).digest()
    pre += hashlib.sha256(stdin).digest() + struct.pack(">Q", len(result)) + result
    check("riscv result_commitment", hashlib.sha256(pre).hexdigest(), r["result_commitment"])


def opens(v, envelope_hex, role_byte, index=0):
    """Whether an envelope authenticates under the vector session for this role byte."""
    sid = uuid.UUID(v["session_id"]).bytes
    aad = AAD + sid + bytes([role_byte]) + struct.pack(">I", index)
    sealed = bytes.fromhex(envelope_hex)
    try:
        AESGCMSIV(bytes.fromhex(v["session_key"])).decrypt(sealed[:12], sealed[12:], aad)
        return True
    except InvalidTag:
        return False


def tlv(label, purpose, fields):
    out = label + bytes([purpose])
    for f in fields:
        out += struct.pack(">I", len(f)) + f
    return out


# The P-256 group order (SEC 2). Signatures must be low-s: s <= N // 2 (PROTOCOL.md section 1).
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def verify_sig(public_bytes, message, sig_hex, name):
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_bytes)
    sig = bytes.fromhex(sig_hex)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))  # raises on failure
    check(f"{name} signature is low-s", is_low_s(sig_hex), True)


def is_low_s(sig_hex):
    """The low-s rule of PROTOCOL.md section 1: 64 bytes r || s with 0 < s <= n/2."""
    sig = bytes.fromhex(sig_hex)
    s = int.from_bytes(sig[32:], "big")
    return len(sig) == 64 and 0 < s <= N // 2


def owner_message(a, action, sequence, detail):
    """The owner statement (PROTOCOL.md section 17): audience, action, name, signing time,
    sequence and detail, one per line after the version line."""
    return "\n".join(["wasm-hypervisor/v2/agent-owner", a["audience"], action, a["name"],
                      str(a["signed_at"]), str(sequence), detail]).encode()


def accepted_owner_signature(public_bytes, message, sig_hex):
    """What a host accepts as an owner signature: low-s, and valid ECDSA P-256 / SHA-256."""
    return is_low_s(sig_hex) and verifies(public_bytes, message, sig_hex)


def verifies(public_bytes, message, sig_hex):
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), public_bytes)
    sig = bytes.fromhex(sig_hex)
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def check_attestation(v, sid, client_pub, server_pub):
    a = v["attestation"]
    signing = private(a["signing_secret"])
    signing_pub = public_uncompressed(signing)
    check("signing_key", signing_pub.hex(), a["signing_key"])
    measurement = hashlib.sha256(b"example host binary").digest()
    check("host_measurement", measurement.hex(), a["host_measurement"])
    pre = tlv(REPORT_DATA, 0x01, [signing_pub, measurement, struct.pack(">Q", a["key_created_at"])])
    check("report_data_preimage", pre.hex(), a["report_data_preimage"])
    check("report_data", hashlib.sha512(pre).hexdigest(), a["report_data"])

    st = a["session_statement"]
    session = tlv(STATEMENT, 0x01, [sid, server_pub, client_pub,
                                    struct.pack(">Q", st["created_at"]), struct.pack(">Q", st["expires_at"])])
    check("session statement bytes", session.hex(), st["bytes"])
    verify_sig(signing_pub, session, st["signature"], "session")

    r = a["receipt"]
    receipt = tlv(STATEMENT, 0x02, receipt_fields(r))
    check("receipt statement bytes", receipt.hex(), a["receipt_statement_bytes"])
    check("receipt commitment = vector commitment", r["result_commitment"], v["commitment"]["result_commitment"])
    verify_sig(signing_pub, receipt, r["signature"], "receipt")
    check("receipt version", r["version"], 3)
    check("a host on its own signs an empty replica", r["replica"], "")
    check("receipt names the vector evidence", r["evidence_sha256"],
          hashlib.sha256(bytes.fromhex(a["evidence"])).hexdigest())
    check("receipt names the vector TEE", r["tee"], "simulated")
    # An agent's receipt binds the calls its run made (section 18): one more field, the calls'
    # text, only when there are calls.
    rc = a["receipt_with_calls"]
    check("a receipt without calls has no calls field", "calls" in r, False)
    with_calls = tlv(STATEMENT, 0x02, receipt_fields(rc))
    check("receipt_with_calls statement bytes", with_calls.hex(), a["receipt_with_calls_statement_bytes"])
    verify_sig(signing_pub, with_calls, rc["signature"], "receipt with calls")
    check("the receipt with calls names its replica", rc["replica"], "replica-b")
    check("a receipt of another replica does not verify",
          verifies(signing_pub, tlv(STATEMENT, 0x02, receipt_fields(dict(rc, replica="replica-c"))),
                   rc["signature"]), False)
    altered = dict(rc, calls=[dict(rc["calls"][0], response_sha256="00" * 32)] + rc["calls"][1:])
    check("a receipt with altered calls does not verify",
          verifies(signing_pub, tlv(STATEMENT, 0x02, receipt_fields(altered)), rc["signature"]), False)

    c = a["component_statement"]
    comp = tlv(STATEMENT, 0x03, [bytes.fromhex(c["component_sha256"]), bytes.fromhex(c["user_data"])])
    check("component statement bytes", comp.hex(), c["bytes"])
    verify_sig(signing_pub, comp, c["signature"], "component")


def check_tls(v):
    """Section 19: the TLS channel statement and the RA-TLS certificate's REPORTDATA and
    extension (a DER UTF8String holding a JSON CMW record around a base64url JSON message)."""
    import base64
    a, t = v["attestation"], v["tls"]
    signing_pub = public_uncompressed(private(a["signing_secret"]))
    measurement = bytes.fromhex(a["host_measurement"])
    check("exporter label", t["exporter_label"], "EXPORTER-wasm-hypervisor-channel-binding")
    c = t["channel"]
    fields = [bytes.fromhex(c["exporter"]), bytes.fromhex(c["nonce"]),
              bytes.fromhex(c["certificate_sha256"]), c["audience"].encode()]
    check("certificate_sha256", hashlib.sha256(b"example certificate").hexdigest(),
          c["certificate_sha256"])
    channel = tlv(STATEMENT, 0x04, fields)
    check("TLS channel statement bytes", channel.hex(), c["statement_bytes"])
    verify_sig(signing_pub, channel, c["signature"], "TLS channel")
    other = tlv(STATEMENT, 0x04, [bytes(32)] + fields[1:])
    check("another exporter does not verify", verifies(signing_pub, other, c["signature"]), False)
    elsewhere = tlv(STATEMENT, 0x04, fields[:3] + [b"0123456789abcdef0123456789abcdef"])
    check("another audience does not verify", verifies(signing_pub, elsewhere, c["signature"]),
          False)

    cert = t["certificate"]
    spki_sha256 = hashlib.sha256(b"example SubjectPublicKeyInfo").digest()
    check("spki_sha256", spki_sha256.hex(), cert["spki_sha256"])
    pre = tlv(REPORT_DATA, 0x02, [spki_sha256, signing_pub, measurement,
                                  struct.pack(">Q", cert["created_at"])])
    check("certificate report_data_preimage", pre.hex(), cert["report_data_preimage"])
    check("certificate report_data", hashlib.sha512(pre).hexdigest(), cert["report_data"])
    check("extension OID (id-pe-cmw)", cert["extension_oid"], "1.3.6.1.5.5.7.1.35")
    der = bytes.fromhex(cert["extension_value"])
    check("extension value is a DER UTF8String", der[0], 0x0C)
    if der[1] < 0x80:
        length, start = der[1], 2
    else:
        n = der[1] & 0x7F
        length, start = int.from_bytes(der[2:2 + n], "big"), 2 + n
    check("UTF8String length", len(der) - start, length)
    record = json.loads(der[start:].decode())
    check("CMW record type", record[0], "application/vnd.wasm-hypervisor.certificate-evidence+json")
    check("CMW indicator (evidence)", record[2], 4)
    b64 = record[1] + "=" * (-len(record[1]) % 4)
    message = json.loads(base64.urlsafe_b64decode(b64))
    check("message version", message["version"], 1)
    check("message signing_key", message["signing_key"], signing_pub.hex())
    check("message host_measurement", message["host_measurement"], measurement.hex())
    check("message created_at", message["created_at"], cert["created_at"])
    check("message evidence", bytes.fromhex(message["evidence"]), b"example evidence")


def check_cluster(v):
    """Section 22.1: the replicas' key exchange. The wrapping key is derived here from the two
    exchange keys, the grant opened and the key's check value recomputed; both statements'
    bytes are rebuilt and their signatures verified."""
    a, c = v["attestation"], v["cluster"]
    signing_pub = public_uncompressed(private(a["signing_secret"]))
    joiner, responder = private(c["joiner_exchange_secret"]), private(c["responder_exchange_secret"])
    j, r = public_uncompressed(joiner), public_uncompressed(responder)
    check("joiner exchange key", j.hex(), c["joiner_exchange_key"])
    check("responder exchange key", r.hex(), c["responder_exchange_key"])
    shared = joiner.exchange(ec.ECDH(), responder.public_key())
    check("exchange ECDH x", shared.hex(), c["ecdh_shared_x"])
    label = b"wasm-hypervisor/v1/cluster-key-grant"
    run = c["run"].encode()
    k = HKDF(algorithm=hashes.SHA256(), length=32, salt=label,
             info=label + run + j + r).derive(shared)
    sealed = bytes.fromhex(c["sealed_key"])
    check("sealed key length", len(sealed), 60)
    check("sealed key nonce", sealed[:12].hex(), c["nonce"])
    key = AESGCMSIV(k).decrypt(sealed[:12], sealed[12:], run)
    check("the grant opens to the cluster key", key.hex(), c["cluster_key"])
    try:
        AESGCMSIV(k).decrypt(sealed[:12], sealed[12:], b"another run")
        check("a grant for another run does not open", True, False)
    except InvalidTag:
        check("a grant for another run does not open", True, True)
    check_value = HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                       info=b"wasm-hypervisor/v1/cluster-key-check").derive(key)
    check("key check value", check_value.hex(), c["key_check"])
    join = tlv(STATEMENT, 0x05, [run, c["replica"].encode(), j])
    check("join statement bytes", join.hex(), c["join_statement_bytes"])
    verify_sig(signing_pub, join, c["join_signature"], "cluster join")
    grant = tlv(STATEMENT, 0x06, [run, j, r, sealed])
    check("grant statement bytes", grant.hex(), c["grant_statement_bytes"])
    verify_sig(signing_pub, grant, c["grant_signature"], "cluster grant")
    check("a grant to another exchange key does not verify",
          verifies(signing_pub, tlv(STATEMENT, 0x06, [run, r, r, sealed]), c["grant_signature"]),
          False)


def check_a2a(v):
    """Section 21: an agent card's JWS signature by the attested key. The payload is the card
    without `signatures` and the 0.3 fields (`url`, `protocolVersion`, `preferredTransport`),
    empty strings, arrays and objects removed recursively, in RFC 8785 form (for this card's
    strings and booleans: sorted keys, no whitespace, UTF-8 as is)."""
    import base64

    def b64url(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    def clean(value):
        if isinstance(value, dict):
            kept = {k: c for k, c in ((k, clean(x)) for k, x in value.items()) if c is not None}
            return kept or None
        if isinstance(value, list):
            kept = [c for c in (clean(x) for x in value) if c is not None]
            return kept or None
        if value is None or value == "":
            return None
        return value

    t = v["a2a"]
    a = v["attestation"]
    signing_pub = public_uncompressed(private(a["signing_secret"]))
    jwk = {"crv": "P-256", "kty": "EC", "x": b64url(signing_pub[1:33]), "y": b64url(signing_pub[33:65])}
    check("a2a jwk", jwk, t["jwk"])
    thumb = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    check("a2a key id (RFC 7638)", b64url(hashlib.sha256(thumb).digest()), t["key_id"])
    header = json.loads(base64.urlsafe_b64decode(t["protected"] + "=" * (-len(t["protected"]) % 4)))
    check("a2a protected header", header, {"alg": "ES256", "kid": t["key_id"], "typ": "JOSE"})
    card = dict(t["card"])
    for field in ("signatures", "url", "protocolVersion", "preferredTransport"):
        card.pop(field, None)
    payload = json.dumps(clean(card), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    check("a2a canonical payload", payload, t["payload"])
    signing_input = t["protected"] + "." + b64url(payload.encode())
    check("a2a signing input", signing_input, t["signing_input"])
    sig = t["card"]["signatures"][0]
    check("a2a signature entry header", sig["protected"], t["protected"])
    raw = base64.urlsafe_b64decode(sig["signature"] + "=" * (-len(sig["signature"]) % 4))
    verify_sig(signing_pub, signing_input.encode(), raw.hex(), "a2a card")
    changed = t["protected"] + "." + b64url(payload.replace("word counts", "word count", 1).encode())
    check("a changed card does not verify", verifies(signing_pub, changed.encode(), raw.hex()), False)


def base58btc(data):
    """Base58 with the Bitcoin alphabet (multibase 'z')."""
    alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = alphabet[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def check_offer_receipt(v):
    """Section 6b: x402 signed offers and receipts. kid = did:key of the compressed P-256 key
    (multicodec 0x1200 as varint 0x80 0x24, base58btc) with the same multibase as fragment;
    header {"alg":"ES256","kid","typ"} and payload in RFC 8785 form, base64url without
    padding; ES256, low s."""
    import base64

    def b64url(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    t = v["offer_receipt"]
    pub = public_uncompressed(private(v["attestation"]["signing_secret"]))
    compressed = bytes([2 + (pub[64] & 1)]) + pub[1:33]
    multibase = "z" + base58btc(b"\x80\x24" + compressed)
    check("offer-receipt did:key", "did:key:" + multibase, t["did_key"])
    check("offer-receipt kid", f"did:key:{multibase}#{multibase}", t["kid"])
    for artifact, typ in (("offer", "offer"), ("receipt", "receipt"), ("metered_receipt", "receipt")):
        a = t[artifact]
        header = {"alg": "ES256", "kid": t["kid"], "typ": f"x402-{typ}+jws"}
        signing_input = b64url(jcs(header)) + "." + b64url(jcs(a["payload"]))
        check(f"{artifact} signing input", signing_input, a["signing_input"])
        head, body, sig = a["jws"].split(".")
        check(f"{artifact} JWS", head + "." + body, signing_input)
        raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
        verify_sig(pub, signing_input.encode(), raw.hex(), f"x402 {artifact}")
    check("offer fields", sorted(t["offer"]["payload"]),
          sorted(["version", "resourceUrl", "scheme", "network", "asset", "payTo", "amount", "validUntil"]))
    r = t["receipt"]["payload"]
    check("receipt binds the run", sorted(r["hypervisor"]), sorted(
        ["executionId", "route", "agent", "codeHash", "resultCommitment", "status", "amount",
         "tee", "evidenceSha256", "attestation", "settled"]))
    check("receipt settled iff it names a transaction", r["hypervisor"]["settled"], bool(r.get("transaction")))
    # A metered run's receipt: its amount is the tariff's charge for the meter it states.
    h = t["metered_receipt"]["payload"]["hypervisor"]
    m = h["metered"]
    check("metered receipt fields", sorted(m), sorted(["fuel", "ms", "outputBytes", "tariff", "maximum"]))
    meter = {"fuel": m["fuel"], "ms": m["ms"], "output_bytes": m["outputBytes"]}
    check("metered receipt's amount is its charge",
          str(tariff_charge(m["tariff"], meter, int(m["maximum"]))), h["amount"])


def receipt_fields(r):
    """The signed fields of a receipt (PROTOCOL.md section 14), in order."""
    fields = [
        uuid.UUID(r["session_id"]).bytes,
        struct.pack(">Q", r["sequence"]),
        r["route"].encode(),
        bytes.fromhex(r["program_sha256"]),
        b"".join(bytes.fromhex(h) for h in r["argument_sha256"]),
        bytes.fromhex(r["stdin_sha256"]),
        bytes.fromhex(r["result_commitment"]),
        r["status"].encode(),
        struct.pack(">Q", r["limits"]["time_ms"]),
        struct.pack(">Q", r["limits"]["memory_bytes"]),
        struct.pack(">Q", r["limits"]["fuel"]) if r["limits"].get("fuel") is not None else b"",
        struct.pack(">Q", r["issued_at"]),
        (r.get("policy") or "").encode(),
        (r.get("payment") or "").encode(),
    ]
    if r["version"] >= 2:
        # The TEE and the SHA-256 of the evidence the signing key stands on.
        fields += [r["tee"].encode(), bytes.fromhex(r["evidence_sha256"])]
    if r["version"] >= 3:
        # The replica of a cluster that ran it (section 22), empty for a host on its own.
        fields.append(r["replica"].encode())
    if r.get("calls") is not None:
        fields.append("".join(
            f"{c['callee']}\n{c.get('callee_execution') or '-'}\n{c['response_sha256']}\n"
            f"{c.get('transaction') or '-'}\n" for c in r["calls"]).encode())
    return fields


def check_agents(v, client_pub):
    """Owner signatures (PROTOCOL.md section 17): the message layout, and the signatures verify."""
    a = v["agents"]
    check("owner_public", public_uncompressed(private(a["owner_secret"])).hex(), client_pub.hex())
    program = bytes.fromhex(v["envelopes"][0]["plaintext"])
    check("agent component_sha256", hashlib.sha256(program).hexdigest(), a["component_sha256"])
    # A deployed component is sealed under its own role (0x06), never as a program (0x01); the
    # deploy signature covers the SHA-256 of its plaintext.
    deployed = [e for e in v["envelopes"] if e["role"] == "agent-component"]
    check("one agent-component envelope", len(deployed), 1)
    check("agent-component role byte", deployed[0]["role_byte"], ROLES["agent-component"])
    check("agent-component plaintext sha256",
          hashlib.sha256(bytes.fromhex(deployed[0]["plaintext"])).hexdigest(), a["component_sha256"])
    check("agent-component envelope does not open as a program",
          opens(v, deployed[0]["envelope"], ROLES["program"]), False)
    req = a["deploy_request"]
    check("deploy request name", req["name"], a["name"])
    check("deploy request key", req["public_key"], client_pub.hex())
    detail = deploy_detail(a["component_sha256"], req)
    check("agent deploy_detail", detail, a["deploy_detail"])
    for action, detail in (("deploy", detail), ("delete", "")):
        message = owner_message(a, action, a[f"{action}_sequence"], detail)
        check(f"agent {action}_message", message.hex(), a[f"{action}_message"])
        verify_sig(client_pub, message, a[f"{action}_signature"], f"agent {action}")
    # The signature covers the settings: the same deployment made public, at another price,
    # lifetime or limits (or with one of them left out) does not verify; description and tags
    # are not covered.
    altered = [dict(req, public=True), dict(req, price=req["price"] + "0"),
               dict(req, ttl_seconds=req["ttl_seconds"] + 1), dict(req, limits=None),
               dict(req, limits=dict(req["limits"], fuel=1))]
    for key in ("public", "price", "ttl_seconds"):
        altered.append({k: v for k, v in req.items() if k != key})
    for i, other in enumerate(altered):
        message = owner_message(a, "deploy", a["deploy_sequence"],
                                deploy_detail(a["component_sha256"], other))
        check(f"altered deployment {i} does not verify",
              verifies(client_pub, message, a["deploy_signature"]), False)
    # Must refuse: the deploy signature's high-s twin (r, n - s). ECDSA alone accepts it (both
    # forms verify); the low-s rule refuses it, so a signature has one accepted encoding.
    twin = a["deploy_signature_high_s"]
    check("high-s vector is marked must-refuse", twin["must_refuse"], True)
    check("high-s vector signs the deploy message", twin["message"], "deploy_message")
    low, high = bytes.fromhex(a["deploy_signature"]), bytes.fromhex(twin["signature"])
    check("high-s twin has the same r", high[:32], low[:32])
    check("high-s twin's s is n - s",
          int.from_bytes(high[32:], "big"), N - int.from_bytes(low[32:], "big"))
    check("high-s twin's s is above n/2", int.from_bytes(high[32:], "big") > N // 2, True)
    deploy_message = bytes.fromhex(a["deploy_message"])
    check("high-s twin is valid ECDSA", verifies(client_pub, deploy_message, twin["signature"]), True)
    check("high-s twin is refused",
          accepted_owner_signature(client_pub, deploy_message, twin["signature"]), False)
    check("its low-s form is accepted",
          accepted_owner_signature(client_pub, deploy_message, a["deploy_signature"]), True)
    unsigned = dict(req, description="another description", tags=["other"])
    check("description and tags are not signed",
          deploy_detail(a["component_sha256"], unsigned), a["deploy_detail"])
    # Declared MCP schemas: one more line, the SHA-256 of their RFC 8785 canonical JSON.
    s = a["schemas"]
    check("schemas canonical JSON", jcs(s["schemas"]), s["canonical"].encode())
    check("schemas digest", hashlib.sha256(s["canonical"].encode()).hexdigest(), s["digest"])
    check("deploy detail with schemas",
          deploy_detail(a["component_sha256"], dict(req, schemas=s["schemas"])), s["deploy_detail"])
    # A metered deployment: the tariff's line, and its charges recomputed from the meters.
    t = a["tariff"]
    check("deploy detail with a tariff",
          deploy_detail(a["component_sha256"], dict(req, tariff=t["tariff"])), t["deploy_detail"])
    check("the maximum is the price", t["maximum"], req["price"])
    check("deploy detail with a partial tariff (absent rates are 0)",
          deploy_detail(a["component_sha256"], dict(req, tariff=t["partial"]["tariff"])),
          t["partial"]["deploy_detail"])
    for c in t["charges"]:
        check(f"charge of {c['meter']}",
              str(tariff_charge(t["tariff"], c["meter"], int(t["maximum"]))), c["charge"])
    budget = int(t["maximum"]) - int(t["tariff"]["fixed"])
    cap = budget * 10**6 // int(t["tariff"]["per_million_fuel"])
    check("fuel cap: the maximum's worth of fuel", t["fuel_cap"], cap)
    loosened = dict(s["schemas"], input=dict(s["schemas"]["input"], required=[]))
    check("other schemas, another detail",
          deploy_detail(a["component_sha256"], dict(req, schemas=loosened)) != s["deploy_detail"], True)


def check_js_source(v):
    """A JavaScript agent's source hash (PROTOCOL.md section 24): the length-prefixed encoding of
    the main module's name and every module, in byte order of their names."""
    def source_sha256(js):
        # The engine is signed with the source: StarlingMonkey's label differs.
        label = {"boa": b"wasm-hypervisor/v1/js-source\0",
                 "starlingmonkey": b"wasm-hypervisor/v1/js-source/starlingmonkey\0"}
        data = label[js.get("engine", "boa")]
        main = js["main"].encode()
        data += struct.pack(">I", len(main)) + main + struct.pack(">I", len(js["modules"]))
        for name in sorted(js["modules"], key=lambda n: n.encode()):
            source = js["modules"][name].encode()
            data += struct.pack(">I", len(name.encode())) + name.encode()
            data += struct.pack(">Q", len(source)) + source
        return hashlib.sha256(data).hexdigest()

    js = v["js_source"]["source"]
    check("js source sha256", source_sha256(js), v["js_source"]["sha256"])
    sm = v["js_source"]["starlingmonkey"]
    check("js source on starlingmonkey: the engine named", sm["source"].get("engine"), "starlingmonkey")
    check("js source sha256 on starlingmonkey", source_sha256(sm["source"]), sm["sha256"])
    check("js source: the engine changes the digest", sm["sha256"] != v["js_source"]["sha256"], True)
    # encrypted_js: the agent-js envelope's plaintext is the JSON of this source.
    sealed = next(e for e in v["envelopes"] if e["role"] == "agent-js")
    check("agent-js envelope = the source's JSON",
          json.loads(bytes.fromhex(sealed["plaintext"])), js)
    check("agent-js envelope does not open as agent-component",
          opens(v, sealed["envelope"], ROLES["agent-component"]), False)


def check_state(v, client_pub):
    """Agents' state and configuration (PROTOCOL.md section 23): the configuration change is
    the agent-config envelope's plaintext and its detail is that plaintext's SHA-256; the owner
    statements and signatures; value hashes; the export is the state-export envelope's
    plaintext and parses as described; an import is that plaintext in its own role, its detail
    the SHA-256 and the mode."""
    s = v["state"]
    envelopes = {e["role"]: e for e in v["envelopes"]}
    change = bytes.fromhex(envelopes["agent-config"]["plaintext"])
    check("config change = agent-config envelope", change.decode(), s["config_change"])
    check("config change parses", sorted(json.loads(change)), ["remove", "set"])
    check("config_detail", hashlib.sha256(change).hexdigest(), s["config_detail"])
    for st in s["statements"]:
        message = owner_message(s, st["action"], st["sequence"], st["detail"])
        check(f"state {st['action']} message", message.hex(), st["message"])
        check(f"state {st['action']} signature accepted",
              accepted_owner_signature(client_pub, message, st["signature"]), True)
    check("config statement signs the detail",
          [st["detail"] for st in s["statements"] if st["action"] == "config"], [s["config_detail"]])
    for h in s["value_hashes"]:
        pre = b"wasm-hypervisor/v1/config-value\0" + h["agent"].encode() + b"\0" + \
            h["name"].encode() + b"\0" + h["value"].encode()
        check(f"value_hash {h['agent']}/{h['name']}", hashlib.sha256(pre).hexdigest(), h["sha256"])
    export = bytes.fromhex(envelopes["state-export"]["plaintext"])
    check("export = state-export envelope", export.decode(), s["export"])
    doc = json.loads(export)
    visits = base64.b64decode(doc["buckets"]["default"]["visits"])
    check("exported counter is 8 bytes little-endian", int.from_bytes(visits, "little"), 3)
    check("state-export envelope does not open as a result",
          opens(v, envelopes["state-export"]["envelope"], ROLES["result"]), False)
    # An import carries an export's plaintext in its own role, signed over its SHA-256 and
    # the mode.
    imported = bytes.fromhex(envelopes["state-import"]["plaintext"])
    check("state-import envelope = the export", imported, export)
    check("import_detail", hashlib.sha256(imported).hexdigest() + "\nreplace=true",
          s["import_detail"])
    check("import-state statement signs the import detail",
          [st["detail"] for st in s["statements"] if st["action"] == "import-state"],
          [s["import_detail"]])
    check("state-export envelope does not open as a state-import",
          opens(v, envelopes["state-export"]["envelope"], ROLES["state-import"]), False)


def jcs(value):
    """RFC 8785 canonical JSON of a document of objects, arrays, strings, integers and
    booleans (all a reference set holds): sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def normalised_set(s):
    """A reference set as its digest sees it (PROTOCOL.md section 12b): hex values lowercased,
    fields holding their defaults left out."""
    s = json.loads(json.dumps(s))
    if not s.get("name"):
        s.pop("name", None)
    for section, fields in (("tdx", ("mrtd", "rtmr0", "rtmr1", "rtmr2")),
                            ("sev_snp", ("measurement", "host_data", "id_key_digest"))):
        if s.get(section) is None:
            s.pop(section, None)
            continue
        for f in fields:
            if s[section].get(f) is not None:
                s[section][f] = s[section][f].lower()
            else:
                s[section].pop(f, None)
    app = s.get("tdx", {}).get("app")
    if app is not None:
        for f in ("compose_hash", "app_id"):
            if app.get(f) is not None:
                app[f] = app[f].lower()
            else:
                app.pop(f, None)
        if not app.get("host_event"):
            app.pop("host_event", None)
    s["host_measurements"] = [m.lower() for m in s["host_measurements"]]
    tcb = s.get("tcb") or {}
    if not tcb.get("tdx_statuses"):
        tcb.pop("tdx_statuses", None)
    if tcb.get("snp_minimum") is None:
        tcb.pop("snp_minimum", None)
    if tcb:
        s["tcb"] = tcb
    else:
        s.pop("tcb", None)
    return s


def check_x402_resources(v):
    """The resource a paid request's challenge names, per kind of paid route (PROTOCOL.md 6b)."""
    r = v["x402_resources"]
    base = r["public_url"].rstrip("/")
    for case in r["cases"]:
        requested, kind = case["requested"], case["kind"]
        if kind == "code route":  # its own path
            path, mime = requested, "application/json"
        elif kind == "handler or CLI agent":  # its invoke route
            path, mime = f"/agents/{case['agent']}/invoke", "application/json"
        else:  # an HTTP agent: the agent, whatever path and query were requested
            path = f"/agents/{case['agent']}/"
            mime = case["declared_content_type"] or "application/octet-stream"
        check(f"x402 resource of {requested}", base + path, case["resource_url"])
        check(f"x402 mimeType of {requested}", mime, case["mime_type"])


def check_reference_values(v):
    """Reference value sets and RTMR3 replay (PROTOCOL.md sections 12b, 12c)."""
    r = v["reference_values"]
    check("reference set canonical JSON", jcs(normalised_set(r["set"])).decode(), r["canonical"])
    check("reference set digest", hashlib.sha256(jcs(normalised_set(r["set"]))).hexdigest(),
          r["digest"])
    written = json.loads(r["set_as_written"])
    check("the set as written has the same digest",
          hashlib.sha256(jcs(normalised_set(written))).hexdigest(), r["digest"])
    rtmr3 = bytes(48)
    for e in r["event_log"]:
        payload = bytes.fromhex(e["event_payload"])
        digest = hashlib.sha384(struct.pack("<I", e["event_type"]) + b":"
                                + e["event"].encode() + b":" + payload).digest()
        check(f"runtime event digest {e['event']}", digest.hex(), e["digest"])
        rtmr3 = hashlib.sha384(rtmr3 + digest).digest()
    check("replayed RTMR3", rtmr3.hex(), r["rtmr3"])
    compose = next(e for e in r["event_log"] if e["event"] == "compose-hash")
    check("compose-hash event = the set's compose hash", compose["event_payload"],
          r["set"]["tdx"]["app"]["compose_hash"])


def check_agent_calls(v, client_pub):
    """Grants and wallets (PROTOCOL.md section 18): the signed details, rebuilt from the JSON
    as the section says, the owner messages and their signatures; the wallet key's envelope."""
    a = v["agent_calls"]
    g = a["grants"]

    def refs(items):
        return ",".join(f"{r['name']}:{r['owner_key'].lower()}" for r in items)

    callers = g.get("callers")
    detail = "\n".join([
        "agents=" + refs(g.get("agents", [])),
        "origins=" + ",".join(g.get("origins", [])),
        "search=" + ("true" if g.get("search") else "false"),
        "callers=" + ("-" if callers is None else refs(callers)),
    ] + ([
        "hypervisors=" + ",".join(
            f"{h['origin']}|"
            + "+".join(["ref:" + hashlib.sha256(jcs(normalised_set(r))).hexdigest()
                        for r in h.get("reference_values", [])]
                       + [m.lower() for m in h.get("measurements", [])])
            + "|" + ("true" if h.get("allow_simulated") else "false")
            for h in g["hypervisors"])
    ] if g.get("hypervisors") else []) + ([
        f"sign_in={g['sign_in'].get('after_payment_seconds', 0)}|"
        + ",".join(w.lower() for w in g["sign_in"].get("wallets", []))
    ] if g.get("sign_in") is not None else []))
    check("grants_detail", detail, a["grants_detail"])
    p = a["wallet_policy"]
    payees = p.get("payees")
    wallet = "\n".join([
        "address=" + a["wallet_address"].lower(),
        "networks=" + ",".join(p["networks"]),
        "assets=" + ",".join(x.lower() for x in p["assets"]),
        "max_per_call=" + p["max_per_call"],
        "max_per_day=" + p["max_per_day"],
        "max_total=" + p["max_total"],
        "payees=" + ("-" if payees is None else ",".join(x.lower() for x in payees)),
    ])
    check("wallet_detail", wallet, a["wallet_detail"])
    for action, detail in (("grants", detail), ("wallet", wallet)):
        message = owner_message(a, action, a[f"{action}_sequence"], detail)
        check(f"{action}_message", message.hex(), a[f"{action}_message"])
        verify_sig(client_pub, message, a[f"{action}_signature"], action)
    sealed = [e for e in v["envelopes"] if e["role"] == "wallet-key"]
    check("one wallet-key envelope", len(sealed), 1)
    check("wallet-key role byte", sealed[0]["role_byte"], ROLES["wallet-key"])
    check("wallet-key plaintext", sealed[0]["plaintext"], a["wallet_secret"])
    check("wallet-key envelope does not open as an event",
          opens(v, sealed[0]["envelope"], ROLES["event"]), False)


def deploy_detail(component_sha256, req):
    """The deploy detail of PROTOCOL.md section 17, from the request's JSON fields: absent
    (or null) is "-", booleans are true/false, numbers decimal, the price the string sent."""
    def field(value):
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int):
            return str(value)
        assert isinstance(value, str) and value.isascii() and value.isdigit(), value
        return value

    limits = req.get("limits") or {}
    lines = [
        component_sha256,
        "public=" + field(req.get("public")),
        "price=" + field(req.get("price")),
        "ttl_seconds=" + field(req.get("ttl_seconds")),
        "limits=" + ",".join(field(limits.get(k)) for k in ("time_ms", "memory_bytes", "fuel")),
    ]
    if req.get("tariff") is not None:
        t = req["tariff"]
        lines.append("tariff=" + ",".join(
            field(t.get(k, "0")) for k in ("fixed", "per_million_fuel", "per_ms", "per_kib_out")))
    if req.get("schemas") is not None:
        lines.append("schemas=" + hashlib.sha256(jcs(req["schemas"])).hexdigest())
    return "\n".join(lines)


def tariff_charge(tariff, meter, maximum):
    """PROTOCOL.md section 6b: min(maximum, fixed + ceil(fuel * per_million_fuel / 10^6)
    + ms * per_ms + ceil(output_bytes * per_kib_out / 1024)), exact integers."""
    rate = {k: int(tariff.get(k, "0")) for k in ("fixed", "per_million_fuel", "per_ms", "per_kib_out")}
    def ceil_div(a, b):
        return -(-a // b)
    total = (rate["fixed"] + ceil_div(meter["fuel"] * rate["per_million_fuel"], 10**6)
             + meter["ms"] * rate["per_ms"] + ceil_div(meter["output_bytes"] * rate["per_kib_out"], 1024))
    return min(maximum, total)


if __name__ == "__main__":
    main()

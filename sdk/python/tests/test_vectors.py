"""docs/test-vectors.json through the SDK's own code paths (not a second implementation)."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

import pytest

from wasm_hypervisor import ClientKey, Policy, VerifyError, eventlog, owner, reference, statements
from wasm_hypervisor._ops import Inputs, check_receipt
from wasm_hypervisor.crypto import Envelopes, Role, is_low_s, session_key, verify_signature
from wasm_hypervisor.errors import ProtocolError
from wasm_hypervisor.verify import verify_attestation

ROLES = {r.name.lower().replace("_", "-"): r for r in Role}


def key(v: dict[str, Any], name: str) -> ClientKey:
    return ClientKey.from_scalar(bytes.fromhex(v[name]))


def sid(v: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(v["session_id"])


def envelopes(v: dict[str, Any]) -> Envelopes:
    return Envelopes(bytes.fromhex(v["session_key"]), sid(v))


def test_session_key(vectors: dict[str, Any]) -> None:
    client, server = key(vectors, "client_secret"), key(vectors, "server_secret")
    assert client.public_hex == vectors["client_public"]
    assert server.public_hex == vectors["server_public"]
    assert client.shared_x(server.public_bytes).hex() == vectors["ecdh_shared_x"]
    k = session_key(client, client.public_bytes, server.public_bytes, sid(vectors))
    assert k.hex() == vectors["session_key"]
    # A compressed key is the same key (§2): the derivation uses the uncompressed form.
    compressed = bytes([2 + (server.public_bytes[64] & 1)]) + server.public_bytes[1:33]
    assert session_key(client, client.public_bytes, compressed, sid(vectors)) == k
    assert session_key(client, client.public_bytes, server.public_bytes, uuid.uuid4()) != k


@pytest.mark.parametrize("index", range(12))
def test_envelopes(vectors: dict[str, Any], index: int) -> None:
    e = vectors["envelopes"][index]
    role = ROLES[e["role"].split(" ")[0]]
    assert role == e["role_byte"]
    env = envelopes(vectors)
    sealed = env.seal(role, bytes.fromhex(e["plaintext"]), e["index"], bytes.fromhex(e["nonce"]))
    assert sealed.hex() == e["envelope"]
    assert env.open(role, sealed, e["index"]).hex() == e["plaintext"]
    # Bound to its place: another role, index or session does not open it.
    other = Role.STDIN if role != Role.STDIN else Role.PROGRAM
    with pytest.raises(ProtocolError):
        env.open(other, sealed, e["index"])
    with pytest.raises(ProtocolError):
        env.open(role, sealed, e["index"] + 1)
    with pytest.raises(ProtocolError):
        Envelopes(bytes.fromhex(vectors["session_key"]), uuid.uuid4()).open(role, sealed, e["index"])


def test_commitment(vectors: dict[str, Any]) -> None:
    c = vectors["commitment"]
    got = statements.result_commitment(
        sid(vectors),
        bytes.fromhex(c["program_sha256"]),
        [bytes.fromhex(a) for a in c["argument_sha256"]],
        bytes.fromhex(c["stdin_sha256"]),
        bytes.fromhex(c["result_plaintext"]),
    )
    assert got.hex() == c["result_commitment"]


def test_riscv_program(vectors: dict[str, Any]) -> None:
    r = vectors["riscv_program"]
    elf = bytes.fromhex(r["elf"])
    assert hashlib.sha256(elf).hexdigest() == r["program_sha256"]
    sealed = envelopes(vectors).seal(Role.PROGRAM, elf, 0, bytes.fromhex(r["envelope_nonce"]))
    assert sealed.hex() == r["envelope"]
    got = statements.result_commitment(
        sid(vectors),
        hashlib.sha256(elf).digest(),
        [hashlib.sha256(bytes.fromhex(a)).digest() for a in r["arguments"]],
        hashlib.sha256(bytes.fromhex(r["stdin"])).digest(),
        bytes.fromhex(r["result_plaintext"]),
    )
    assert got.hex() == r["result_commitment"]


def vector_attestation(v: dict[str, Any]) -> dict[str, Any]:
    a = v["attestation"]
    return {
        "tee": "simulated",
        "simulated": True,
        "evidence_format": "simulated-not-for-production",
        "evidence": a["evidence"],
        "report_data": a["report_data"],
        "signing_key": a["signing_key"],
        "host_measurement": a["host_measurement"],
        "key_created_at": a["key_created_at"],
    }


def test_attestation_statements(vectors: dict[str, Any]) -> None:
    a = vectors["attestation"]
    signing = key(a, "signing_secret")
    assert signing.public_hex == a["signing_key"]
    rd = statements.report_data(
        signing.public_bytes, bytes.fromhex(a["host_measurement"]), a["key_created_at"]
    )
    assert rd.hex() == a["report_data"]
    st = a["session_statement"]
    client, server = key(vectors, "client_secret"), key(vectors, "server_secret")
    message = statements.session_statement(
        sid(vectors), server.public_bytes, client.public_bytes, st["created_at"], st["expires_at"]
    )
    assert message.hex() == st["bytes"]
    assert verify_signature(signing.public_bytes, message, bytes.fromhex(st["signature"]))
    assert statements.receipt_statement(a["receipt"]).hex() == a["receipt_statement_bytes"]
    assert (
        statements.receipt_statement(a["receipt_with_calls"]).hex() == a["receipt_with_calls_statement_bytes"]
    )
    c = a["component_statement"]
    comp = statements.component_statement(bytes.fromhex(c["component_sha256"]), bytes.fromhex(c["user_data"]))
    assert comp.hex() == c["bytes"]
    assert verify_signature(signing.public_bytes, comp, bytes.fromhex(c["signature"]))
    # Our own signatures are low-s and verify.
    mine = signing.sign(message)
    assert is_low_s(mine) and verify_signature(signing.public_bytes, message, mine)


def test_the_vector_attestation_verifies_only_where_allowed(vectors: dict[str, Any]) -> None:
    att = vector_attestation(vectors)
    with pytest.raises(VerifyError) as e:
        verify_attestation(att, Policy(accept_any_measurement=True))
    assert e.value.kind == "simulated"
    with pytest.raises(VerifyError) as e:
        verify_attestation(att, Policy(allow_simulated=True))
    assert e.value.kind == "no_expected_measurement"
    with pytest.raises(VerifyError) as e:
        verify_attestation(att, Policy(allow_simulated=True, host_measurements=[att["host_measurement"]]))
    assert e.value.kind == "host_pin_only"
    with pytest.warns(UserWarning, match="accept_any_measurement"):
        verified = verify_attestation(att, Policy(allow_simulated=True, accept_any_measurement=True))
    assert verified.simulated and verified.reference is None
    assert verified.evidence_sha256.hex() == vectors["attestation"]["receipt"]["evidence_sha256"]
    # A claim of another host binary breaks the binding.
    with pytest.raises(VerifyError) as e, pytest.warns(UserWarning):
        verify_attestation(
            dict(att, host_measurement="00" * 32), Policy(allow_simulated=True, accept_any_measurement=True)
        )
    assert e.value.kind == "binding"
    # Labels: hardware claims on simulated evidence, simulated claims on hardware evidence.
    with pytest.raises(VerifyError) as e:
        verify_attestation(
            dict(att, tee="tdx", simulated=False), Policy(allow_simulated=True, accept_any_measurement=True)
        )
    assert e.value.kind == "label_mismatch"
    with pytest.raises(VerifyError) as e:
        verify_attestation(dict(att, evidence_format="tdx-dcap-quote"), Policy(accept_any_measurement=True))
    assert e.value.kind == "simulated"


def receipt_inputs(v: dict[str, Any]) -> Inputs:
    c = v["commitment"]
    return Inputs(
        bytes.fromhex(c["program_sha256"]),
        [bytes.fromhex(a) for a in c["argument_sha256"]],
        bytes.fromhex(c["stdin_sha256"]),
        "/verifiable/execute/wasm",
    )


def test_receipt(vectors: dict[str, Any]) -> None:
    with pytest.warns(UserWarning):
        verified = verify_attestation(
            vector_attestation(vectors), Policy(allow_simulated=True, accept_any_measurement=True)
        )
    receipt = vectors["attestation"]["receipt"]
    commitment = bytes.fromhex(vectors["commitment"]["result_commitment"])
    check_receipt(receipt, verified, sid(vectors), receipt_inputs(vectors), commitment)
    for change in (
        {"sequence": 2},
        {"route": "/test/execute/wasm"},
        {"argument_sha256": receipt["argument_sha256"][::-1]},
        {"replica": "replica-b"},
        {"tee": "tdx"},
        {"signature": receipt["signature"][:64] + "00" * 32},
    ):
        with pytest.raises(VerifyError) as e:
            check_receipt(
                dict(receipt, **change), verified, sid(vectors), receipt_inputs(vectors), commitment
            )
        assert e.value.kind == "receipt"
    with pytest.raises(VerifyError):
        check_receipt(receipt, verified, uuid.uuid4(), receipt_inputs(vectors), commitment)
    with pytest.raises(VerifyError):
        check_receipt(receipt, verified, sid(vectors), receipt_inputs(vectors), bytes(32))


def test_owner_signatures(vectors: dict[str, Any]) -> None:
    a = vectors["agents"]
    owner_key = key(a, "owner_secret")
    program = bytes.fromhex(vectors["envelopes"][0]["plaintext"])
    assert hashlib.sha256(program).hexdigest() == a["component_sha256"]
    detail = owner.deploy_detail(a["component_sha256"], a["deploy_request"])
    assert detail == a["deploy_detail"]
    # A metered agent: its tariff's line; absent rates are "0", as the host reads them.
    t = a["tariff"]
    assert (
        owner.deploy_detail(a["component_sha256"], {**a["deploy_request"], "tariff": t["tariff"]})
        == t["deploy_detail"]
    )
    partial = t["partial"]
    assert (
        owner.deploy_detail(a["component_sha256"], {**a["deploy_request"], "tariff": partial["tariff"]})
        == partial["deploy_detail"]
    )
    for action, d in (("deploy", detail), ("delete", "")):
        message = owner.owner_message(
            a["audience"], action, a["name"], a["signed_at"], int(a[f"{action}_sequence"]), d
        )
        assert message.hex() == a[f"{action}_message"]
        assert verify_signature(owner_key.public_bytes, message, bytes.fromhex(a[f"{action}_signature"]))
    twin = a["deploy_signature_high_s"]
    assert twin["must_refuse"] is True
    assert not verify_signature(
        owner_key.public_bytes, bytes.fromhex(a["deploy_message"]), bytes.fromhex(twin["signature"])
    )
    req = a["deploy_request"]
    for altered in (
        dict(req, public=True),
        dict(req, price=req["price"] + "0"),
        {k: x for k, x in req.items() if k != "ttl_seconds"},
    ):
        assert owner.deploy_detail(a["component_sha256"], altered) != detail
    assert owner.deploy_detail(a["component_sha256"], dict(req, description="x", tags=["y"])) == detail
    s = a["schemas"]
    assert owner.deploy_detail(a["component_sha256"], dict(req, schemas=s["schemas"])) == s["deploy_detail"]


def test_reference_values(vectors: dict[str, Any]) -> None:
    r = vectors["reference_values"]
    s = reference.decode(r["set"])
    assert json.dumps(s.canonical, sort_keys=True, separators=(",", ":")) == r["canonical"]
    assert s.digest == r["digest"]
    assert reference.decode(json.loads(r["set_as_written"])).digest == r["digest"]
    events = eventlog.parse(json.dumps(r["event_log"]))
    for e, want in zip(events, r["event_log"], strict=True):
        assert e.digest.hex() == want["digest"]
    replay = eventlog.replay(events)
    assert replay.rtmrs[3].hex() == r["rtmr3"]
    assert replay.identity["compose-hash"].hex() == r["set"]["tdx"]["app"]["compose_hash"]
    # §12b's worked example: evidence with the set's registers matches; another claim does not
    # (row 12), another compose file neither (row 6).
    t = r["set"]["tdx"]
    measured = reference.Measured(
        tee="tdx",
        mrtd=bytes.fromhex(t["mrtd"]),
        rtmrs=(bytes.fromhex(t["rtmr0"]), bytes.fromhex(t["rtmr1"]), bytes.fromhex(t["rtmr2"])),
        identity=replay.identity,
        tdx_status="UpToDate",
        host_measurement=bytes.fromhex(r["set"]["host_measurements"][0]),
    )
    assert reference.match([s], measured, ("UpToDate",)) is s
    measured.host_measurement = bytes(32)
    with pytest.raises(VerifyError, match="host_measurement"):
        reference.match([s], measured, ("UpToDate",))
    measured.host_measurement = bytes.fromhex(r["set"]["host_measurements"][0])
    measured.identity = dict(replay.identity, **{"compose-hash": bytes(32)})
    with pytest.raises(VerifyError, match="compose-hash"):
        reference.match([s], measured, ("UpToDate",))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"version": 2}, "version"),
        ({"tee": "sgx"}, "tee"),
        ({"host_measurements": []}, "host_measurements"),
        ({"tdx": {"mrtd": "00", "rtmr0": "", "rtmr1": "", "rtmr2": "", "app": {}}}, "tdx.mrtd"),
        ({"extra": 1}, "extra"),
        ({"name": None}, "name"),
    ],
)
def test_reference_sets_refuse_what_the_spec_refuses(
    vectors: dict[str, Any], change: dict[str, Any], field: str
) -> None:
    with pytest.raises(VerifyError, match=field) as e:
        reference.decode(dict(vectors["reference_values"]["set"], **change))
    assert e.value.kind == "bad_reference"


def test_event_logs_refuse_tampering(vectors: dict[str, Any]) -> None:
    log = vectors["reference_values"]["event_log"]
    bad_digest = [dict(log[0], digest="00" * 48)] + log[1:]
    with pytest.raises(VerifyError, match="digest"):
        eventlog.parse(json.dumps(bad_digest))
    relabelled = [dict(log[0], event_type=1)] + log[1:]
    with pytest.raises(VerifyError, match="not a runtime event"):
        eventlog.parse(json.dumps(relabelled))
    # Stripped digests are recomputed, and replay to the same RTMR3.
    stripped = [dict(e, digest="") for e in log]
    assert (
        eventlog.replay(eventlog.parse(json.dumps(stripped))).rtmrs[3].hex()
        == vectors["reference_values"]["rtmr3"]
    )
    # Reordered: another RTMR3.
    assert (
        eventlog.replay(eventlog.parse(json.dumps(log[::-1]))).rtmrs[3].hex()
        != vectors["reference_values"]["rtmr3"]
    )


def test_grants_and_wallet(vectors: dict[str, Any]) -> None:
    a = vectors["agent_calls"]
    owner_key = key(vectors, "client_secret")
    grants = owner.grants_detail(a["grants"])
    assert grants == a["grants_detail"]
    wallet = owner.wallet_detail(a["wallet_address"], a["wallet_policy"])
    assert wallet == a["wallet_detail"]
    for action, detail in (("grants", grants), ("wallet", wallet)):
        message = owner.owner_message(
            a["audience"], action, a["name"], a["signed_at"], a[f"{action}_sequence"], detail
        )
        assert message.hex() == a[f"{action}_message"]
        assert verify_signature(owner_key.public_bytes, message, bytes.fromhex(a[f"{action}_signature"]))
    # A deployment with grants signs the grants detail after the settings.
    req = dict(vectors["agents"]["deploy_request"], grants=a["grants"])
    assert owner.deploy_detail("ab" * 32, req).endswith("\n" + grants)
    # Another reference set for a hypervisor is another detail.
    if a["grants"].get("hypervisors"):
        h = dict(
            a["grants"]["hypervisors"][0],
            allow_simulated=not a["grants"]["hypervisors"][0].get("allow_simulated"),
        )
        assert owner.grants_detail(dict(a["grants"], hypervisors=[h])) != grants


def test_state_and_configuration(vectors: dict[str, Any]) -> None:
    s = vectors["state"]
    owner_key = key(vectors, "client_secret")
    envs = {e["role"]: e for e in vectors["envelopes"]}
    change = bytes.fromhex(envs["agent-config"]["plaintext"])
    assert change.decode() == s["config_change"]
    assert hashlib.sha256(change).hexdigest() == s["config_detail"]
    for st in s["statements"]:
        message = owner.owner_message(
            s["audience"], st["action"], s["name"], s["signed_at"], st["sequence"], st["detail"]
        )
        assert message.hex() == st["message"]
        assert verify_signature(owner_key.public_bytes, message, bytes.fromhex(st["signature"]))
    for h in s["value_hashes"]:
        assert owner.value_hash(h["agent"], h["name"], h["value"]) == h["sha256"]
    export = bytes.fromhex(envs["state-export"]["plaintext"])
    assert export.decode() == s["export"]
    imported = json.loads(bytes.fromhex(envs["state-import"]["plaintext"]))
    # The SDK seals an import as the export's JSON, compact: the vector's bytes exactly.
    assert json.dumps(imported, separators=(",", ":")).encode() == bytes.fromhex(
        envs["state-import"]["plaintext"]
    )
    assert hashlib.sha256(export).hexdigest() + "\nreplace=true" == s["import_detail"]
    env = envelopes(vectors)
    with pytest.raises(ProtocolError):
        env.open(Role.STATE_IMPORT, bytes.fromhex(envs["state-export"]["envelope"]))


def test_js_source_hash(vectors: dict[str, Any]) -> None:
    from wasm_hypervisor import JsSource
    from wasm_hypervisor.js import source_sha256

    js = vectors["js_source"]
    assert source_sha256(js["source"]["main"], js["source"]["modules"]).hex() == js["sha256"]
    # The engine is signed with the source.
    sm = js["starlingmonkey"]
    assert sm["source"]["engine"] == "starlingmonkey"
    on_sm = JsSource(sm["source"]["main"], sm["source"]["modules"], engine="starlingmonkey")
    assert on_sm.sha256.hex() == sm["sha256"]
    assert on_sm.to_json() == sm["source"]
    source = JsSource(js["source"]["main"], js["source"]["modules"])
    sealed = next(e for e in vectors["envelopes"] if e["role"] == "agent-js")
    assert source.sealed_plaintext().hex() == sealed["plaintext"]
    assert (
        envelopes(vectors)
        .seal(Role.AGENT_JS, source.sealed_plaintext(), 0, bytes.fromhex(sealed["nonce"]))
        .hex()
        == sealed["envelope"]
    )


def test_x402_resources(vectors: dict[str, Any]) -> None:
    from wasm_hypervisor.payments import resource_of

    r = vectors["x402_resources"]
    for case in r["cases"]:
        url, mime = resource_of(
            r["public_url"],
            case["requested"],
            case["kind"],
            case.get("agent"),
            case.get("declared_content_type"),
        )
        assert (url, mime) == (case["resource_url"], case["mime_type"]), case


def test_protocol_md_tables_quote_the_vectors(vectors: dict[str, Any]) -> None:
    """Every hex value §16 of PROTOCOL.md prints is one of docs/test-vectors.json's: a value
    changed in one place and not the other (a stale signature) fails here."""
    from conftest import REPO

    text = (REPO / "docs" / "PROTOCOL.md").read_text()
    section = text[text.index("## 16. Test vectors") : text.index("## 17. Agents")]
    dumped = json.dumps(vectors)
    values = re.findall(r"`([0-9a-f]{32,})`", section)
    assert len(values) > 20
    stale = [v for v in values if v not in dumped]
    assert not stale, f"PROTOCOL.md §16 values not in test-vectors.json: {stale}"


def test_tls_channel_and_certificate(vectors: dict[str, Any]) -> None:
    from wasm_hypervisor.tls import EXPORTER_LABEL, certificate_message

    a, t = vectors["attestation"], vectors["tls"]
    assert EXPORTER_LABEL.decode() == t["exporter_label"]
    c = t["channel"]
    fields = (bytes.fromhex(c["exporter"]), bytes.fromhex(c["nonce"]), bytes.fromhex(c["certificate_sha256"]))
    message = statements.channel_statement(*fields, c["audience"])
    assert message.hex() == c["statement_bytes"]
    signing = bytes.fromhex(a["signing_key"])
    assert verify_signature(signing, message, bytes.fromhex(c["signature"]))
    other = statements.channel_statement(bytes(32), *fields[1:], c["audience"])
    assert not verify_signature(signing, other, bytes.fromhex(c["signature"]))
    cert = t["certificate"]
    rd = statements.report_data_of(
        statements.TLS_CERTIFICATE_PURPOSE,
        [
            bytes.fromhex(cert["spki_sha256"]),
            signing,
            bytes.fromhex(a["host_measurement"]),
            cert["created_at"].to_bytes(8, "big"),
        ],
    )
    assert rd.hex() == cert["report_data"]
    m = certificate_message(bytes.fromhex(cert["extension_value"]))
    assert (m["signing_key"], m["host_measurement"], m["created_at"]) == (
        a["signing_key"],
        a["host_measurement"],
        cert["created_at"],
    )
    assert bytes.fromhex(m["evidence"]) == b"example evidence"


def test_cluster_statements(vectors: dict[str, Any]) -> None:
    """§22.1 is between replicas, not a client's; its vectors are checked with the SDK's own
    primitives (keys, ECDH, statement encoding, low-s verification) so that every entry of the
    file is covered and those primitives stay honest."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    c = vectors["cluster"]
    signing = bytes.fromhex(vectors["attestation"]["signing_key"])
    joiner, responder = key(c, "joiner_exchange_secret"), key(c, "responder_exchange_secret")
    assert (joiner.public_hex, responder.public_hex) == (
        c["joiner_exchange_key"],
        c["responder_exchange_key"],
    )
    shared = joiner.shared_x(responder.public_bytes)
    assert shared.hex() == c["ecdh_shared_x"]
    label, run = b"wasm-hypervisor/v1/cluster-key-grant", c["run"].encode()
    k = HKDF(hashes.SHA256(), 32, label, label + run + joiner.public_bytes + responder.public_bytes).derive(
        shared
    )
    sealed = bytes.fromhex(c["sealed_key"])
    assert AESGCMSIV(k).decrypt(sealed[:12], sealed[12:], run).hex() == c["cluster_key"]
    join = statements.statement(0x05, [run, c["replica"].encode(), joiner.public_bytes])
    assert join.hex() == c["join_statement_bytes"]
    assert verify_signature(signing, join, bytes.fromhex(c["join_signature"]))
    grant = statements.statement(0x06, [run, joiner.public_bytes, responder.public_bytes, sealed])
    assert grant.hex() == c["grant_statement_bytes"]
    assert verify_signature(signing, grant, bytes.fromhex(c["grant_signature"]))
    assert not verify_signature(
        signing,
        statements.statement(0x06, [run, responder.public_bytes, responder.public_bytes, sealed]),
        bytes.fromhex(c["grant_signature"]),
    )

"""HTTPS hosts whose TLS ends inside the TEE (PROTOCOL.md §19): the RA-TLS evidence of the
host's self-generated certificate, and the channel binding, checked on a connection of our own
whose TLS exporter the attested key must have signed.

Python's `ssl` module cannot export keying material, so the binding runs over pyOpenSSL (PyCA),
on its own connection. The certificate it proves is then the only trust anchor of the
client's HTTP connections (`pinned_context`): a handshake with any other certificate fails. The
certificate's key is generated inside the TEE and never leaves it, so every pinned connection
reaches the attested host. An operator's certificate (`certificate_generated: false`) is
refused: its key lives outside the TEE, so each connection would need its own binding, which
Python's `ssl` cannot compute."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import time
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import _json
from ._bytes import ct_equal, from_hex
from .crypto import verify_signature
from .errors import ProtocolError, TransportError, VerifyError
from .statements import TLS_CERTIFICATE_PURPOSE, channel_statement
from .verify import FORMATS, Policy, VerifiedKey, needs_collateral, verify_attestation

EXPORTER_LABEL = b"EXPORTER-wasm-hypervisor-channel-binding"
CMW_OID = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.35")
CMW_TYPE = "application/vnd.wasm-hypervisor.certificate-evidence+json"
TIMEOUT = 30.0
MAX_ANSWER = 1 << 20


def _utf8string(der: bytes) -> bytes:
    """The contents of a DER UTF8String."""
    if len(der) < 2 or der[0] != 0x0C:
        raise VerifyError("evidence", "the RA-TLS extension is not a DER UTF8String")
    if der[1] < 0x80:
        length, start = der[1], 2
    else:
        n = der[1] & 0x7F
        length, start = int.from_bytes(der[2 : 2 + n], "big"), 2 + n
    if len(der) - start != length:
        raise VerifyError("evidence", "the RA-TLS extension's length is wrong")
    return der[start:]


def certificate_message(extension_value: bytes) -> dict[str, Any]:
    """The JSON message of an RA-TLS extension value (a CMW record, §19)."""
    try:
        record = _json.loads(_utf8string(extension_value))
        if not (isinstance(record, list) and len(record) == 3 and record[0] == CMW_TYPE and record[2] == 4):
            raise VerifyError("evidence", "the RA-TLS extension is not our CMW evidence record")
        text = record[1]
        message = _json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, TypeError) as e:
        raise VerifyError("evidence", f"the RA-TLS extension does not parse: {e}") from None
    if not isinstance(message, dict) or message.get("version") != 1:
        raise VerifyError("evidence", "the RA-TLS message is not version 1")
    return message


def verify_certificate(cert_der: bytes, policy: Policy, collateral: Any = None) -> VerifiedKey | None:
    """Verifies the RA-TLS evidence of a certificate (§12a under `policy`, bound to the
    certificate's public key); None when the certificate carries no RA-TLS extension."""
    try:
        cert = x509.load_der_x509_certificate(cert_der)
        ext = cert.extensions.get_extension_for_oid(CMW_OID)
    except x509.ExtensionNotFound:
        return None
    except ValueError as e:  # a certificate (or its extensions) that does not parse
        raise VerifyError("evidence", f"the host's certificate does not parse: {e}") from None
    value = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else b""
    m = certificate_message(value)
    fmt = m.get("evidence_format")
    tee = FORMATS.get(fmt) if isinstance(fmt, str) else None
    att: dict[str, Any] = {
        "evidence_format": fmt,
        "tee": tee,
        "simulated": tee == "simulated",
        "evidence": m.get("evidence"),
        "signing_key": m.get("signing_key"),
        "host_measurement": m.get("host_measurement"),
        "key_created_at": m.get("created_at"),
    }
    if m.get("event_log") is not None:
        att["event_log"] = m["event_log"]
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return verify_attestation(att, policy, collateral, TLS_CERTIFICATE_PURPOSE, hashlib.sha256(spki).digest())


@dataclass(frozen=True)
class BoundChannel:
    """A verified binding: the attested key, the certificate it vouched for, the audience."""

    verified: VerifiedKey
    certificate: bytes
    audience: str


def _read_answer(conn: Any, deadline: float) -> tuple[int, bytes]:
    """One HTTP/1.1 answer read exactly (§19 step 5): status, one Content-Length, no chunking."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline or len(buf) > 64 * 1024:
            raise TransportError("the channel binding's answer did not come in time")
        buf += _recv(conn)
    head, body = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    try:
        status = int(lines[0].split(" ")[1])
    except (IndexError, ValueError):
        raise ProtocolError("the channel binding's answer is not HTTP/1.1") from None
    headers = [line.split(":", 1) for line in lines[1:] if ":" in line]
    lengths = [v.strip() for k, v in headers if k.strip().lower() == "content-length"]
    if any(k.strip().lower() == "transfer-encoding" for k, _ in headers) or len(lengths) != 1:
        raise ProtocolError("the channel binding's answer must have exactly one Content-Length")
    if not lengths[0].isdigit():
        raise ProtocolError("the channel binding's Content-Length is not a number")
    length = int(lengths[0])
    if length > MAX_ANSWER:
        raise ProtocolError("the channel binding's answer is too large")
    while len(body) < length:
        if time.monotonic() > deadline:
            raise TransportError("the channel binding's answer did not come in time")
        body += _recv(conn)
    return status, body[:length]


def _recv(conn: Any) -> bytes:
    from OpenSSL import SSL

    try:
        data: bytes = conn.recv(65536)
    except (SSL.WantReadError, SSL.WantWriteError):
        return b""
    except SSL.SysCallError as e:
        if e.args and e.args[0] in (11, 35):  # EAGAIN: the one-second tick passed
            return b""
        raise TransportError(f"TLS error reading the channel binding: {e}") from None
    except SSL.Error as e:
        raise TransportError(f"TLS error reading the channel binding: {e}") from None
    if not data:
        raise TransportError("the host closed the connection before the channel binding")
    return data


def bind_channel(
    url: str, policy: Policy, expected_audience: str | None = None, collateral_fetcher: Any = None
) -> BoundChannel:
    """§19 steps 1-4 on a TLS 1.3 connection of our own (blocking; at most 30 s)."""
    from OpenSSL import SSL

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError(f"not an https:// URL: {url}")
    host, port = parts.hostname, parts.port or 443
    deadline = time.monotonic() + TIMEOUT
    ctx = SSL.Context(SSL.TLS_CLIENT_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_3_VERSION)
    ctx.set_verify(SSL.VERIFY_NONE, lambda *a: True)  # the binding authenticates, not a web root
    ctx.set_alpn_protos([b"http/1.1"])
    try:
        sock = socket.create_connection((host, port), timeout=TIMEOUT)
    except OSError as e:
        raise TransportError(f"connecting to {host}:{port}: {e}") from None
    # pyOpenSSL wants a blocking socket: the deadline is kept by the kernel's receive and send
    # timeouts, a second at a time, checked against the whole exchange's deadline.
    sock.settimeout(None)
    tick = struct.pack("ll", 1, 0)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tick)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tick)
    conn = SSL.Connection(ctx, sock)
    try:
        try:
            ip_address(host)
        except ValueError:
            conn.set_tlsext_host_name(host.encode())
        conn.set_connect_state()
        while True:
            try:
                conn.do_handshake()
                break
            except (SSL.WantReadError, SSL.WantWriteError):
                if time.monotonic() > deadline:
                    raise TransportError("the TLS handshake did not finish in time") from None
        peer = conn.get_peer_certificate(as_cryptography=True)
        if peer is None:
            raise ProtocolError("the host presented no certificate")
        cert_der = peer.public_bytes(serialization.Encoding.DER)
        exporter: bytes = conn.export_keying_material(EXPORTER_LABEL, 32, b"")
        nonce = os.urandom(32)
        authority = parts.netloc.rsplit("@", 1)[-1]
        conn.sendall(
            f"GET /attestation/channel?nonce={nonce.hex()} HTTP/1.1\r\nHost: {authority}\r\n"
            "Accept: application/json\r\n\r\n".encode()
        )
        status, body = _read_answer(conn, deadline)
    except SSL.Error as e:
        raise TransportError(f"TLS with {host}:{port}: {type(e).__name__} {e}") from None
    finally:
        try:
            conn.shutdown()
        except SSL.Error:
            pass
        sock.close()
    if status != 200:
        raise VerifyError("channel", f"the host answered {status} to /attestation/channel: {body[:300]!r}")
    try:
        answer = _json.loads(body)
        if not isinstance(answer, dict) or not isinstance(answer.get("attestation"), dict):
            raise ValueError("not a channel binding object")
        if not isinstance(answer.get("audience"), str):
            raise ValueError("no audience")
        got_nonce = from_hex("nonce", answer.get("nonce"), 32)
        cert_sha = from_hex("certificate_sha256", answer.get("certificate_sha256"), 32)
        signature = from_hex("signature", answer.get("signature"), 64)
        audience = answer["audience"]
        att = answer["attestation"]
    except (ValueError, KeyError, TypeError, RecursionError, ProtocolError) as e:
        raise VerifyError("channel", f"the channel binding is malformed: {e}") from None
    collateral = None
    if collateral_fetcher is not None:
        quote = needs_collateral(att, policy)
        if quote is not None:
            collateral = collateral_fetcher(quote)
    verified = verify_attestation(att, policy, collateral)
    if not ct_equal(got_nonce, nonce):
        raise VerifyError("channel", "the binding answers another nonce")
    if not ct_equal(cert_sha, hashlib.sha256(cert_der).digest()):
        raise VerifyError("channel", "the binding names another certificate than the one shown")
    if expected_audience is not None and audience != expected_audience:
        raise VerifyError("channel", f"the host is deployment {audience}, not the pinned {expected_audience}")
    if not verify_signature(
        verified.signing_key, channel_statement(exporter, nonce, cert_sha, audience), signature
    ):
        raise VerifyError(
            "channel",
            "the attested key did not sign this connection (a TLS-terminating proxy is in between?)",
        )
    if answer.get("certificate_generated") is not True:
        raise VerifyError(
            "channel",
            "the host presents an operator's certificate; the Python SDK pins only the host's own "
            "RA-TLS certificate (Python's ssl cannot bind each connection)",
        )
    from_cert = verify_certificate(cert_der, policy, collateral)
    if from_cert is None:
        raise VerifyError("channel", "the host's generated certificate carries no RA-TLS evidence")
    if not ct_equal(from_cert.signing_key, verified.signing_key):
        raise VerifyError("channel", "the certificate's evidence names another signing key")
    return BoundChannel(verified, cert_der, str(audience))


def pinned_context(cert_der: bytes) -> ssl.SSLContext:
    """A client context that trusts exactly this certificate (TLS 1.3). The exact pin is what
    authenticates the host, so its names are not checked (a host reached by a name outside
    its `tls.names` still verifies, as with the Rust client)."""
    ctx = ssl.create_default_context(cadata=cert_der)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.check_hostname = False
    strict = getattr(ssl, "VERIFY_X509_STRICT", 0)
    ctx.verify_flags &= ~strict
    return ctx

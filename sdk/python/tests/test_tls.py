"""HTTPS hosts (PROTOCOL §19): the SDK binds the channel and pins the host's RA-TLS certificate;
a TLS-terminating proxy in between, or another deployment than the pinned one, is refused."""

from __future__ import annotations

import datetime
import select
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import Host, start_host
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from wasm_hypervisor import Client, Policy, VerifyError
from wasm_hypervisor.tls import pinned_context


@pytest.fixture(scope="module")
def tls_host() -> Iterator[Host]:
    yield from start_host('[tls]\nlisten = "127.0.0.1:0"\nplain = false\n')


def policy(host: Host) -> Policy:
    return Policy(reference_values=[host.reference_set()], allow_simulated=True)


def test_an_https_host_is_bound_and_pinned(tls_host: Host, wasm: Any) -> None:
    assert tls_host.url.startswith("https://127.0.0.1:")
    with Client(tls_host.url, policy(tls_host)) as c:
        session = c.verifiable_session()
        assert c.channel is not None and c.channel.verified.simulated
        assert c.channel.verified.reference is not None
        result = c.execute_wasm(session, wasm("hello"), args=["over", "tls"])
        assert result.text == "Hello over tls\n"
        audience = c.host()["audience"]
        assert c.channel.audience == audience
    with Client(tls_host.url, policy(tls_host), expected_audience="00" * 16) as c:
        with pytest.raises(VerifyError, match="not the pinned") as e:
            c.ping()
    assert e.value.kind == "channel"
    # Without the binding, ordinary TLS refuses the self-signed certificate.
    with Client(tls_host.url, tls_binding=False) as c:
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            c.ping()


def _self_signed(tmp: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "proxy")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
    return ctx


def test_a_tls_terminating_proxy_cannot_bind(tls_host: Host, tmp_path: Path) -> None:
    """A proxy with its own TLS sessions forwards everything, /attestation/channel included:
    the host vouches for the certificate and exporter of the proxy's connection, not the
    client's (the certificate differs first: the proxy cannot show the host's, whose key never
    leaves the TEE)."""
    server_ctx = _self_signed(tmp_path)
    upstream = urlsplit(tls_host.url)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def relay(a: Any, b: Any) -> None:
        """Both directions of one proxied connection in one thread. OpenSSL's connections are
        not to be read and written from two threads at once: a thread per direction hung this
        test now and then under load (the answer never came back)."""
        peer = {a: b, b: a}
        try:
            for s in (a, b):
                s.setblocking(False)
            while True:
                ready = [s for s in (a, b) if s.pending()] or select.select([a, b], [], [], 60)[0]
                if not ready:
                    return
                for s in ready:
                    try:
                        data = s.recv(65536)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        continue  # TLS records without application data (a session ticket)
                    if not data:
                        return
                    out = peer[s]
                    out.setblocking(True)
                    out.sendall(data)
                    out.setblocking(False)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def serve() -> None:
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            # One connection's failed handshake (a client that gave up) must not stop the
            # proxy: the next connections are still served.
            try:
                client_side = server_ctx.wrap_socket(raw, server_side=True)
                up_ctx = ssl.create_default_context()
                up_ctx.check_hostname = False
                up_ctx.verify_mode = ssl.CERT_NONE
                up = up_ctx.wrap_socket(socket.create_connection((upstream.hostname, upstream.port)))
            except OSError:
                raw.close()
                continue
            threading.Thread(target=relay, args=(client_side, up), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with Client(f"https://127.0.0.1:{port}", policy(tls_host)) as c:
            with pytest.raises(VerifyError) as e:
                c.ping()
        assert e.value.kind == "channel" and "another certificate than the one shown" in e.value.message
    finally:
        listener.close()


def test_a_rotated_certificate_is_bound_again(wasm: Any) -> None:
    """The host's key (and so its certificate) rotates: a new connection fails the pinned
    handshake, and the client binds the new certificate before it sends anything."""
    gen = start_host('[tls]\nlisten = "127.0.0.1:0"\nplain = false\n', "key_rotation_seconds = 2\n")
    host = next(gen)
    try:
        with Client(host.url, policy(host)) as c:
            assert c.ping()
            first = c.channel
            assert first is not None
            time.sleep(3)
            # Drop the pooled connection, as the host's idle timeout would; the next one
            # handshakes again, still pinned to the first certificate.
            c._http.close()
            c._http = httpx.Client(verify=pinned_context(first.certificate))
            assert c.ping()
            assert c.channel is not None and c.channel.certificate != first.certificate
            assert c.channel.verified.signing_key != first.verified.signing_key
    finally:
        gen.close()


async def test_the_async_client_binds_once_under_concurrent_first_requests(tls_host: Host) -> None:
    import asyncio

    from wasm_hypervisor import AsyncClient

    async with AsyncClient(tls_host.url, policy(tls_host)) as c:
        answers = await asyncio.gather(*(c.host() for _ in range(4)))
        assert len({a["audience"] for a in answers}) == 1
        assert c.channel is not None and c.channel.audience == answers[0]["audience"]
        session = await c.verifiable_session()
        assert session.verified is not None

"""The primitives of PROTOCOL.md §2-§5 on pyca/cryptography: P-256 keys, the session key
(ECDH, HKDF-SHA256), envelopes (AES-256-GCM-SIV with role-bound associated data) and low-s
ECDSA P-256 signatures (§1)."""

from __future__ import annotations

import enum
import hashlib
import os
import uuid

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._bytes import u32be
from .errors import ProtocolError

HKDF_SALT = b"wasm-hypervisor/v1/hkdf-salt"
HKDF_INFO = b"wasm-hypervisor/v1/aes-256-gcm-siv"
AAD_LABEL = b"wasm-hypervisor/v1/aad"

#: The P-256 group order (SEC 2); a signature's `s` must be at most `N // 2` (§1).
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class Role(enum.IntEnum):
    """Envelope roles (§5): the byte bound into every envelope's associated data."""

    PROGRAM = 0x01
    ARGUMENT = 0x02
    STDIN = 0x03
    RESULT = 0x04
    EVENT = 0x05
    AGENT_COMPONENT = 0x06
    WALLET_KEY = 0x07
    AGENT_CONFIG = 0x08
    STATE_EXPORT = 0x09
    AGENT_JS = 0x0A
    STATE_IMPORT = 0x0B


def public_key_from_bytes(sec1: bytes) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from its SEC1 encoding (compressed or uncompressed)."""
    if len(sec1) not in (33, 65):
        raise ProtocolError(f"a P-256 public key is 33 or 65 bytes, not {len(sec1)}")
    try:
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), sec1)
    except ValueError as e:
        raise ProtocolError(f"not a P-256 point: {e}") from None


def uncompressed(key: ec.EllipticCurvePublicKey) -> bytes:
    """The 65-byte uncompressed SEC1 form (§2: the form every derivation uses)."""
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


class ClientKey:
    """A client's (or an agent owner's) P-256 key pair. The private half never leaves it."""

    def __init__(self, private: ec.EllipticCurvePrivateKey) -> None:
        self._private = private
        self.public_bytes = uncompressed(private.public_key())

    @classmethod
    def generate(cls) -> ClientKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def from_scalar(cls, scalar: bytes) -> ClientKey:
        """From a 32-byte big-endian private scalar."""
        if len(scalar) != 32:
            raise ValueError("a P-256 private scalar is 32 bytes")
        return cls(ec.derive_private_key(int.from_bytes(scalar, "big"), ec.SECP256R1()))

    @classmethod
    def from_pem(cls, pem: bytes, password: bytes | None = None) -> ClientKey:
        key = serialization.load_pem_private_key(pem, password)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("not a P-256 private key")
        return cls(key)

    def to_pem(self) -> bytes:
        """PKCS#8 PEM, unencrypted: store it as you would any private key."""
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_hex(self) -> str:
        return self.public_bytes.hex()

    def shared_x(self, peer_public: bytes) -> bytes:
        """The x-coordinate of ECDH(self, peer) (32 bytes)."""
        return self._private.exchange(ec.ECDH(), public_key_from_bytes(peer_public))

    def sign(self, message: bytes) -> bytes:
        """ECDSA P-256 / SHA-256, 64 bytes `r || s`, low-s (§1: pyca does not normalise)."""
        der = self._private.sign(message, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        if s > N // 2:
            s = N - s
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def __repr__(self) -> str:  # never the private half
        return f"ClientKey(public={self.public_hex[:18]}…)"


def is_low_s(signature: bytes) -> bool:
    """`r || s`, 64 bytes, with `0 < s <= n/2` (§1)."""
    if len(signature) != 64:
        return False
    s = int.from_bytes(signature[32:], "big")
    return 0 < s <= N // 2


def verify_signature(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether `signature` (64 bytes r || s) is a valid **low-s** ECDSA P-256 / SHA-256
    signature of `message` by `public` (SEC1)."""
    if not is_low_s(signature):
        return False
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not 0 < r < N:
        return False
    try:
        public_key_from_bytes(public).verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ProtocolError):
        return False
    return True


def session_key(
    client: ClientKey, client_public: bytes, server_public: bytes, session_id: uuid.UUID
) -> bytes:
    """§4: HKDF-SHA256 over the ECDH x-coordinate, salted with the session id and bound to
    both public keys (uncompressed)."""
    client_full = uncompressed(public_key_from_bytes(client_public))
    server_full = uncompressed(public_key_from_bytes(server_public))
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=HKDF_SALT + session_id.bytes,
        info=HKDF_INFO + client_full + server_full,
    ).derive(client.shared_x(server_full))


def aad(session_id: uuid.UUID, role: Role, index: int = 0) -> bytes:
    """§5: `"wasm-hypervisor/v1/aad" || session_id || role || u32be(index)`."""
    return AAD_LABEL + session_id.bytes + bytes([role]) + u32be(index)


class Envelopes:
    """Seals and opens the envelopes of one session (§5)."""

    def __init__(self, key: bytes, session_id: uuid.UUID) -> None:
        self._aead = AESGCMSIV(key)
        self.session_id = session_id

    def seal(self, role: Role, plaintext: bytes, index: int = 0, nonce: bytes | None = None) -> bytes:
        """`nonce || AES-256-GCM-SIV(plaintext)`; a fresh random nonce unless one is given
        (test vectors only)."""
        nonce = os.urandom(12) if nonce is None else nonce
        if len(nonce) != 12:
            raise ValueError("an envelope nonce is 12 bytes")
        return nonce + self._aead.encrypt(nonce, plaintext, aad(self.session_id, role, index))

    def open(self, role: Role, envelope: bytes, index: int = 0, field: str = "envelope") -> bytes:
        if len(envelope) < 28:
            raise ProtocolError(f"{field}: an envelope is at least 28 bytes")
        try:
            return self._aead.decrypt(envelope[:12], envelope[12:], aad(self.session_id, role, index))
        except InvalidTag:
            raise ProtocolError(
                f"{field} does not open under this session and role (tampered, or not ours)"
            ) from None


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()

"""The protocol's operations, written once without I/O (a generator yields each HTTP request
and gets its response back), and driven by the synchronous `Client` and the asynchronous
`AsyncClient` alike."""

from __future__ import annotations

import json
import uuid
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import _json
from ._bytes import ct_equal, from_hex, is_hex
from .crypto import ClientKey, Role, sha256, verify_signature
from .errors import GuestStopped, HostError, PaymentRequired, ProtocolError, VerifyError
from .results import ExecutionResult, parse_document
from .session import Session, check_session_statement, open_session
from .statements import receipt_statement, result_commitment
from .verify import Policy, VerifiedKey, needs_collateral, verify_attestation


@dataclass
class Request:
    method: str
    path: str
    json: Any = None
    #: multipart/form-data parts: name → (filename or None, bytes, content type)
    parts: dict[str, tuple[str | None, bytes, str]] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] | None = None


@dataclass
class Response:
    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        try:
            return _json.loads(self.content)
        except (ValueError, RecursionError):
            raise ProtocolError(f"the host answered {self.status} with a body that is not JSON") from None


@dataclass
class FetchCollateral:
    """A step the driver performs: fetch TDX collateral for `quote` from `pccs_url`."""

    quote: bytes
    pccs_url: str


@dataclass
class Pay:
    """A step the driver performs: turn a 402 into payment headers with the x402 SDK it was
    given (`None` when it has none: the 402 is then raised as `PaymentRequired`)."""

    response: Response
    path: str


@dataclass
class NeedAudience:
    """A step the driver answers: the host's audience (§17) for an owner statement. The driver
    takes it from the verified TLS channel when there is one, else reads `GET /host` once per
    client, and holds it to `expected_audience` when that is set."""


Step = Request | FetchCollateral | Pay | NeedAudience
T = TypeVar("T")
#: an operation: yields steps, is sent their outcomes, returns a T
Op = Generator[Step, Any, T]

#: binary fields larger than this travel as multipart parts (§6c), as the Rust client does
UPLOAD_THRESHOLD = 4 * 1024 * 1024


def error_of(resp: Response) -> HostError:
    """The typed error of a non-2xx answer (§9)."""
    try:
        body = _json.loads(resp.content)
    except (ValueError, RecursionError):
        body = None
    # A challenge's `error` is the x402 reason, a string; `settlement_failed` and other 402s
    # that ask for no payment carry §9's error object (the run happened: nothing to pay again).
    if resp.status == 402 and isinstance(body, dict) and not isinstance(body.get("error"), dict):
        return PaymentRequired(
            str(body.get("code", "payment_required")),
            str(body.get("message", "payment required")),
            body,
            dict(resp.headers),
        )
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        e = body["error"]
        return HostError(resp.status, str(e.get("code", "unknown")), str(e.get("message", "")), body)
    text = resp.content[:200].decode("utf-8", "replace")
    return HostError(resp.status, "unknown", f"the host answered {resp.status}: {text}", body)


def settlement_of(resp: Response) -> dict[str, Any] | None:
    """The decoded settlement header of a paid answer (v2 `PAYMENT-RESPONSE`, else v1
    `X-PAYMENT-RESPONSE`: standard base64 of JSON, §6b), or None."""
    for name in ("payment-response", "x-payment-response"):
        value = resp.headers.get(name)
        if value:
            try:
                doc = _json.loads_b64(value)
            except ValueError:
                raise ProtocolError(f"the {name} header is not base64 JSON") from None
            if not isinstance(doc, dict):
                raise ProtocolError(f"the {name} header is not a JSON object")
            return doc
    return None


def send_payable(req: Request) -> Op[Response]:
    """Sends `req`; a 402 is paid by the driver's x402 client (if any) and `req` sent once more
    with the payment headers."""
    resp: Response = yield req
    if resp.status != 402:
        return resp
    if b"accepts" in resp.content or "payment-required" in resp.headers:
        from .payments import check_challenge

        check_challenge(resp.headers, resp.content, req.path)
    headers = yield Pay(resp, req.path)
    if headers is None:
        raise error_of(resp)
    paid: Response = yield Request(
        req.method, req.path, req.json, req.parts, dict(req.headers, **headers), req.params
    )
    return paid


def field_of(body: Any, name: str, kind: type = list) -> Any:
    """`body[name]` of a JSON object answer, of the JSON type `kind`, or ProtocolError."""
    value = body.get(name) if isinstance(body, Mapping) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProtocolError(f"the answer has no `{name}` ({kind.__name__})")
    return value


def checked(resp: Response) -> Any:
    """The JSON body of a 2xx answer, or the typed error."""
    if not 200 <= resp.status < 300:
        raise error_of(resp)
    return resp.json()


# Sessions (§3, §13).


def create_session(key: ClientKey | None) -> Op[Session]:
    key = key or ClientKey.generate()
    resp = yield Request("POST", "/encrypt/create_keypair", json={"pubkey": key.public_hex})
    return open_session(key, checked(resp))


def verify_host_attestation(att: Any, policy: Policy, purpose: int = 0x01) -> Op[VerifiedKey]:
    """Verifies an attestation object, fetching TDX collateral first when the policy has none."""
    collateral = None
    if isinstance(att, Mapping):
        quote = needs_collateral(att, policy)
        if quote is not None:
            from dcap_qvl import INTEL_PCS_URL

            collateral = yield FetchCollateral(quote, policy.pccs_url or INTEL_PCS_URL)
    return verify_attestation(att, policy, collateral, purpose)


def create_verifiable_session(key: ClientKey | None, policy: Policy) -> Op[Session]:
    """§13: the chain is verified before anything is sent under the session."""
    key = key or ClientKey.generate()
    resp = yield Request("POST", "/verifiable/encrypt/create_keypair", json={"pubkey": key.public_hex})
    body = checked(resp)
    session = open_session(key, body)
    quote = body.get("quote") if isinstance(body, Mapping) else None
    if not isinstance(quote, Mapping):
        raise VerifyError("malformed", "a verifiable session's answer has no quote")
    verified = yield from verify_host_attestation(quote.get("attestation"), policy)
    check_session_statement(session, quote, verified)
    session.verified = verified
    return session


def attestation(policy: Policy) -> Op[VerifiedKey]:
    """`GET /attestation`, verified."""
    resp = yield Request("GET", "/attestation")
    body = checked(resp)
    if not isinstance(body, Mapping) or body.get("attestation") is None:
        provider = body.get("provider") if isinstance(body, Mapping) else None
        raise VerifyError("malformed", f"the host has no attestation (provider {provider!r})")
    return (yield from verify_host_attestation(body["attestation"], policy))


# Executions (§6, §6a, §6c, §7, §8, §14).


@dataclass
class Inputs:
    program_sha256: bytes
    argument_sha256: list[bytes]
    stdin_sha256: bytes
    route: str


def _body_or_parts(
    body: dict[str, Any], field_name: str, envelope: bytes, threshold: int
) -> tuple[Any, dict[str, tuple[str | None, bytes, str]] | None]:
    if len(envelope) > threshold:
        parts = {
            "request": (None, json.dumps(body).encode(), "application/json"),
            field_name: ("upload", envelope, "application/octet-stream"),
        }
        return None, parts
    return dict(body, **{field_name: envelope.hex()}), None


def execute(
    session: Session,
    route: str,
    field_name: str,
    program: bytes,
    args: Sequence[str],
    stdin: bytes | None,
    limits: Mapping[str, int] | None,
    program_kind: str | None,
    threshold: int,
    extra_headers: Mapping[str, str] | None = None,
) -> Op[ExecutionResult]:
    env = session.envelopes
    arg_bytes = [a.encode() for a in args]
    body: dict[str, Any] = {
        "encrypted_arguments": [env.seal(Role.ARGUMENT, a, i).hex() for i, a in enumerate(arg_bytes)],
        "public_key": session.key.public_hex,
        "session_id": str(session.id),
    }
    if stdin is not None:
        body["encrypted_stdin"] = env.seal(Role.STDIN, stdin).hex()
    if limits:
        body["limits"] = dict(limits)
    if program_kind is not None:
        body["program_kind"] = program_kind
    envelope = env.seal(Role.PROGRAM, program)
    json_body, parts = _body_or_parts(body, field_name, envelope, threshold)
    inputs = Inputs(sha256(program), [sha256(a) for a in arg_bytes], sha256(stdin or b""), route)
    req = Request("POST", route, json=json_body, parts=parts, headers=dict(extra_headers or {}))
    resp = yield from send_payable(req)
    return finish_sealed(session, resp, inputs)


def finish_sealed(session: Session, resp: Response, inputs: Inputs) -> ExecutionResult:
    """Opens an encrypted result, recomputes its commitment, verifies its receipt; a stopped
    guest's 422 becomes `GuestStopped` carrying the checked result."""
    if resp.status != 200 and not (resp.status == 422 and b"encrypted_result" in resp.content):
        raise error_of(resp)
    body = resp.json()
    if not isinstance(body, dict):
        raise ProtocolError("the answer is not a JSON object")
    try:
        if session.id != uuid.UUID(str(body["session_id"])):
            raise ProtocolError("the answer names another session")
        envelope = from_hex("encrypted_result", body["encrypted_result"])
        nonce = from_hex("result_nonce", body["result_nonce"], 12)
        claimed = from_hex("result_commitment", body["result_commitment"], 32)
    except (KeyError, ValueError) as e:
        raise ProtocolError(f"the answer lacks or garbles {e}") from None
    if envelope[:12] != nonce:
        raise ProtocolError("result_nonce is not the envelope's nonce")
    plaintext = session.envelopes.open(Role.RESULT, envelope, field="encrypted_result")
    commitment = result_commitment(
        session.id, inputs.program_sha256, inputs.argument_sha256, inputs.stdin_sha256, plaintext
    )
    if not ct_equal(commitment, claimed):
        raise ProtocolError("result_commitment does not match the decrypted result and the inputs sent")
    receipt = None
    if session.verified is not None:
        receipt = body.get("result_quote")
        check_receipt(receipt, session.verified, session.id, inputs, commitment)
    settlement = settlement_of(resp)
    if receipt is not None and settlement is not None:
        payer = str(settlement.get("payer", "")).lower()
        if not payer or f"payer={payer}" not in str(receipt.get("payment") or "").lower():
            raise VerifyError("receipt", "the receipt's payment does not name the payer that settled")
    result = parse_document(
        session.id, plaintext, commitment, receipt, resp.headers.get("x-execution-id"), settlement
    )
    if receipt is not None and receipt.get("status") != result.status:
        raise VerifyError("receipt", "the receipt's status is not the result's")
    if resp.status == 422:
        err = body.get("error")
        err = err if isinstance(err, dict) else {}
        raise GuestStopped(422, str(err.get("code", result.status)), str(err.get("message", "")), result)
    return result


def check_receipt(
    receipt: Any, verified: VerifiedKey, session_id: uuid.UUID, inputs: Inputs, commitment: bytes
) -> None:
    """§14: signed by the attested key, naming this session, its TEE and evidence, exactly the
    inputs sent, and the commitment recomputed here."""
    if not isinstance(receipt, Mapping):
        raise VerifyError("receipt", "a verifiable route answered without a receipt")
    try:
        message = receipt_statement(receipt)
        signature = from_hex("signature", receipt.get("signature"), 64)
        key = from_hex("signing_key", receipt.get("signing_key"), 65)
    except ProtocolError as e:
        raise VerifyError("receipt", str(e)) from None
    if not ct_equal(key, verified.signing_key) or not verify_signature(key, message, signature):
        raise VerifyError("receipt", "the receipt is not signed by the session's attested key")
    h = bytes.fromhex
    checks = [
        (str(uuid.UUID(receipt["session_id"])) == str(session_id), "session"),
        (receipt["tee"] == verified.tee, "TEE"),
        (ct_equal(h(receipt["evidence_sha256"]), verified.evidence_sha256), "evidence"),
        (receipt["route"] == inputs.route, "route"),
        (ct_equal(h(receipt["program_sha256"]), inputs.program_sha256), "program"),
        ([h(a) for a in receipt["argument_sha256"]] == inputs.argument_sha256, "arguments"),
        (ct_equal(h(receipt["stdin_sha256"]), inputs.stdin_sha256), "stdin"),
        (ct_equal(h(receipt["result_commitment"]), commitment), "result commitment"),
    ]
    for ok, what in checks:
        if not ok:
            raise VerifyError("receipt", f"the receipt names another {what} than this request's")


def host_info() -> Op[dict[str, Any]]:
    return (yield from get_object("/host"))


def _audience() -> Op[str]:
    audience: str = yield NeedAudience()
    return audience


def audience_of(info: Any) -> str:
    """The audience of a `GET /host` answer: 32 lowercase hex digits."""
    audience = info.get("audience") if isinstance(info, Mapping) else None
    if not isinstance(audience, str) or len(audience) != 32 or not is_hex(audience, lowercase=True):
        raise ProtocolError("GET /host gave no audience")
    return audience


def get_object(path: str) -> Op[dict[str, Any]]:
    """A `GET` whose answer must be a JSON object."""
    resp = yield Request("GET", path)
    body = checked(resp)
    if not isinstance(body, dict):
        raise ProtocolError(f"GET {path} did not answer a JSON object")
    return body


def get_json(path: str, params: dict[str, str] | None = None) -> Op[Any]:
    resp = yield Request("GET", path, params=params)
    return checked(resp)


def post_json(path: str, body: Any) -> Op[Any]:
    resp = yield Request("POST", path, json=body)
    return checked(resp)

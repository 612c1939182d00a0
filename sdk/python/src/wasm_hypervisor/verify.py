"""Verifying a host's attestation (PROTOCOL.md §12a), in the spec's order; the first failure
ends it. What comes out is the attested signing key, the TEE, and the name of the pinned
reference set the platform's measured values matched: which code runs."""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import _json, eventlog, reference, tdx
from ._bytes import ct_equal, from_hex, u64be
from .errors import ProtocolError, VerifyError
from .reference import Measured, ReferenceSet
from .statements import SESSION_KEY_PURPOSE, report_data_of

FORMATS = {
    "tdx-dcap-quote": "tdx",
    "sev-snp-report": "sev-snp",
    "simulated-not-for-production": "simulated",
}


@dataclass
class Policy:
    """What a verifier accepts.

    `reference_values` are the pinned sets (§12b): `ReferenceSet`s, decoded JSON documents, or
    paths of reference-values files. Without one, verification refuses, unless
    `accept_any_measurement` is set: an explicit opt-out that accepts a host whatever code it
    runs, and warns (`UserWarning`) each time it is used. Simulated evidence is refused unless
    `allow_simulated` (development only). `host_measurements` is an extra filter on the host's
    claim, never a pin on its own. `tdx_statuses` are the accepted TDX TCB statuses (a set's own
    list replaces it for that set). TDX collateral comes from `collateral` (dcap-qvl's
    `QuoteCollateralV3` JSON) or is fetched from `pccs_url` (Intel's PCS by default); `now`
    fixes the verification time (Unix seconds), default the current time."""

    reference_values: Sequence[ReferenceSet | Mapping[str, Any] | str | Path] = ()
    accept_any_measurement: bool = False
    allow_simulated: bool = False
    host_measurements: Sequence[str] = ()
    tdx_statuses: Sequence[str] = ("UpToDate",)
    collateral: Any = None
    pccs_url: str | None = None
    now: int | None = None

    def reference_sets(self) -> list[ReferenceSet]:
        """The pinned sets, decoded as they stand now (BadReference names the set and the
        field). A `ReferenceSet` given directly is decoded again from its canonical form, so
        one built by hand meets the same rules as a file's."""
        sets: list[ReferenceSet] = []
        for item in self.reference_values:
            if isinstance(item, ReferenceSet):
                sets.append(reference.decode(dict(item.canonical), len(sets)))
            elif isinstance(item, (str, Path)):
                sets.extend(reference.load_file(item))
            else:
                sets.extend(reference.load(item))
        return sets


@dataclass(frozen=True)
class VerifiedKey:
    """The outcome of a verification: the attested key and what stands behind it."""

    signing_key: bytes
    tee: str
    simulated: bool
    evidence_sha256: bytes
    host_measurement: bytes
    key_created_at: int
    #: the matched reference set, None under `accept_any_measurement`
    reference: ReferenceSet | None
    tcb_status: str | None = None


def _labels(att: Mapping[str, Any], policy: Policy) -> str:
    fmt = att.get("evidence_format")
    tee = FORMATS.get(fmt) if isinstance(fmt, str) else None
    if tee is None:
        raise VerifyError("malformed", f"unknown evidence format {fmt!r}")
    claims_simulated = att.get("simulated") is True or att.get("tee") == "simulated"
    if tee != "simulated" and claims_simulated:
        raise VerifyError("simulated", f"the attestation claims to be simulated on `{fmt}` evidence")
    if tee == "simulated" and not policy.allow_simulated:
        raise VerifyError(
            "simulated",
            "the host's evidence is SIMULATED (not for production, proves nothing); allow_simulated is off",
        )
    if att.get("tee") != tee or att.get("simulated") is not (tee == "simulated"):
        raise VerifyError(
            "label_mismatch",
            f"`tee` {att.get('tee')!r} / `simulated` {att.get('simulated')!r} disagree with "
            f"the evidence format `{fmt}`",
        )
    return tee


def _pins(policy: Policy) -> list[ReferenceSet]:
    sets = policy.reference_sets()
    if sets:
        return sets
    if policy.accept_any_measurement:
        warnings.warn(
            "accept_any_measurement: this host is accepted whatever code it runs "
            "(no reference value set is pinned)",
            UserWarning,
            stacklevel=4,
        )
        return []
    if policy.host_measurements:
        raise VerifyError(
            "host_pin_only",
            "only host measurements are pinned; the host writes that value itself, so it "
            "proves nothing: pin a reference value set (§12b)",
        )
    raise VerifyError(
        "no_expected_measurement",
        "no reference value set is pinned: pin one, or opt out with accept_any_measurement",
    )


def needs_collateral(att: Mapping[str, Any], policy: Policy) -> bytes | None:
    """The quote whose collateral a driver must fetch first (TDX evidence, no collateral in the
    policy), or None."""
    if att.get("evidence_format") == "tdx-dcap-quote" and policy.collateral is None:
        try:
            return from_hex("evidence", att.get("evidence"))
        except ProtocolError:
            return None
    return None


def verify_attestation(
    att: Mapping[str, Any],
    policy: Policy,
    collateral: Any = None,
    purpose: int = SESSION_KEY_PURPOSE,
    bound_first: bytes | None = None,
) -> VerifiedKey:
    """§12a steps 1-7 over the `attestation` object of `GET /attestation` (or a session quote).
    TDX needs `collateral` (or the policy's); `needs_collateral` says when to fetch it.
    An RA-TLS certificate's evidence (§19) binds purpose 0x02 with the SHA-256 of the
    certificate's public key (`bound_first`) before the signing key; it has no `report_data`
    field of its own."""
    if not isinstance(att, Mapping):
        raise VerifyError("malformed", "the attestation is not an object")
    tee = _labels(att, policy)
    sets = _pins(policy)
    try:
        evidence = from_hex("evidence", att.get("evidence"))
        claimed_rd = (
            from_hex("report_data", att.get("report_data"), 64)
            if "report_data" in att or bound_first is None
            else None
        )
        signing_key = from_hex("signing_key", att.get("signing_key"), 65)
        host_measurement = from_hex("host_measurement", att.get("host_measurement"), 32)
    except ProtocolError as e:
        raise VerifyError("malformed", str(e)) from None
    created = att.get("key_created_at")
    if type(created) is not int or not 0 <= created < 2**64:
        raise VerifyError("malformed", "key_created_at is not a Unix time")
    now = policy.now if policy.now is not None else int(time.time())
    measured = Measured(tee=tee, host_measurement=host_measurement)
    rtmr3: bytes | None = None
    status = None

    # 3. The evidence.
    if tee == "tdx":
        col = collateral if collateral is not None else policy.collateral
        if col is None:
            raise VerifyError("evidence", "no TDX collateral: give one, or a PCCS to fetch it from")
        if isinstance(col, (str, bytes, dict)):
            col = tdx.collateral_from_json(col)
        report = tdx.verify_quote(evidence, col, now)
        # With sets pinned, a status some set accepts (its own list, or the policy's for a set
        # without one); each set then holds the quote to its own list in step 7.
        accepted: set[str] = set() if sets else set(policy.tdx_statuses)
        for s in sets:
            accepted |= set(s.tdx_statuses or policy.tdx_statuses)
        if report.status not in accepted:
            raise VerifyError(
                "evidence",
                f"TDX TCB status {report.status} is not accepted ({', '.join(sorted(accepted)) or 'none'})",
            )
        if report.td_attributes and report.td_attributes[0] & 1:
            raise VerifyError("evidence", "the TD is a debug TD (td_attributes bit 0)")
        evidence_rd = report.report_data
        measured.mrtd = report.mrtd
        measured.rtmrs = (report.rtmrs[0], report.rtmrs[1], report.rtmrs[2])
        rtmr3 = report.rtmrs[3]
        measured.tdx_status = status = report.status
    elif tee == "sev-snp":
        raise VerifyError(
            "unsupported",
            "SEV-SNP evidence cannot be verified by this SDK: no maintained SEV-SNP report "
            "verifier exists for Python; verify it with hypervisor-client (Rust) instead",
        )
    else:
        evidence_rd, regs = _simulated(evidence)
        if regs is not None:
            measured.mrtd = regs[0]
            measured.rtmrs = (regs[1], regs[2], regs[3])
            rtmr3 = regs[4]

    # 4. The event log.
    log_text = att.get("event_log")
    if log_text is not None and measured.mrtd is not None and measured.rtmrs is not None:
        if not isinstance(log_text, str):
            raise VerifyError("event_log", "`event_log` must be a JSON string")
        replay = eventlog.replay(eventlog.parse(log_text))
        evidence_regs = [*measured.rtmrs, rtmr3]
        for i, (got, want) in enumerate(zip(replay.rtmrs, evidence_regs, strict=True)):
            if (i == 3 or replay.touched[i]) and (want is None or not ct_equal(got, want)):
                raise VerifyError(
                    "event_log",
                    f"RTMR{i}: the log replays to {got.hex()}, the evidence has "
                    f"{want.hex() if want else 'none'}",
                )
        measured.identity = replay.identity

    # 5. The binding.
    fields = [signing_key, host_measurement, u64be(created)]
    if bound_first is not None:
        fields.insert(0, bound_first)
    expected_rd = report_data_of(purpose, fields)
    if not ct_equal(expected_rd, evidence_rd) or (
        claimed_rd is not None and not ct_equal(expected_rd, claimed_rd)
    ):
        raise VerifyError(
            "binding", "REPORTDATA does not bind the signing key, host measurement and key time"
        )

    # 6. The host filter.
    if policy.host_measurements and not any(
        ct_equal(bytes.fromhex(h), host_measurement) for h in policy.host_measurements
    ):
        raise VerifyError(
            "measurement", f"the host's claimed measurement {host_measurement.hex()} is not pinned"
        )

    # 7. The reference sets.
    matched = reference.match(sets, measured, tuple(policy.tdx_statuses)) if sets else None
    return VerifiedKey(
        signing_key=signing_key,
        tee=tee,
        simulated=tee == "simulated",
        evidence_sha256=hashlib.sha256(evidence).digest(),
        host_measurement=host_measurement,
        key_created_at=created,
        reference=matched,
        tcb_status=status,
    )


def _simulated(evidence: bytes) -> tuple[bytes, tuple[bytes, ...] | None]:
    """REPORTDATA and the simulated platform's registers (MRTD, RTMR0-3), if it has them."""
    try:
        doc = _json.loads(evidence)
        if doc.get("format") != "simulated-not-for-production":
            raise VerifyError("malformed", "simulated evidence of another format")
        rd = from_hex("report_data", doc.get("report_data"), 64)
        platform = doc.get("platform")
        if platform is None:
            return rd, None
        regs = tuple(
            from_hex(f"platform.{r}", platform.get(r), 48)
            for r in ("mrtd", "rtmr0", "rtmr1", "rtmr2", "rtmr3")
        )
        return rd, regs
    except (ValueError, AttributeError, ProtocolError) as e:
        raise VerifyError("malformed", f"the simulated evidence does not parse: {e}") from None

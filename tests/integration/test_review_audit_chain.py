"""The audit chain as the sides and an attacker meet it (red-team F3, F6), over real HTTP.

F6: China's history
is its own chain, contiguous and with no link to an entry it may not see, and China checks it
and its signed checkpoint with nothing but what it is shown. F3: whoever writes the database
rewrites a refusal reason (recomputing every hash and head) or drops the last entry (moving
the head back); the API and `reechannel audit verify --checkpoints` both catch it.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlmodel import Session

from services.review.audit_service import entry_of, view_chains, view_entries
from services.review.domain.audit import (
    GENESIS_HASH,
    canonical_json,
    entry_hash,
    head_mac,
    verify_view,
)
from services.review.domain.checkpoints import Leaf, TreeHead, root_from_proof, signature_valid
from services.review.store import Case, audit_of
from shared.config import DEV_AUDIT_KEY, CommonSettings
from shared.db import make_engine
from tests.integration.conftest import new_company
from tests.integration.test_review_audit_leaks import HEX64, get, sent_to_china
from tests.integration.test_review_flow import _settings_env, decide_with_four_eyes, token
from tests.support import ROOT, Infra, ServiceProcess, create_officials, running, wait_until


@pytest.fixture(scope="module")
def infra(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    """A deployment of this module's own: its attacks rewrite and drop audit entries, which the
    metrics tests (recomputing every figure from the audit trail) must not meet in theirs."""
    own = infra.isolated(tmp_path_factory.mktemp("audit-chain"))
    yield own
    own.drop_schemas()


@pytest.fixture(scope="module")
def intake(infra: Infra) -> Iterator[ServiceProcess]:
    yield from running("intake", infra)


@pytest.fixture(scope="module")
def review(infra: Infra, intake: ServiceProcess) -> Iterator[ServiceProcess]:
    yield from running("review", infra)


@pytest.fixture(scope="module")
def officials(infra: Infra) -> dict[str, dict[str, Any]]:
    return create_officials(infra)


@pytest.fixture(scope="module")
def company_a(infra: Infra) -> dict[str, Any]:
    return new_company(infra, "Audit Magnets GmbH")


# --- F6: China's history is its own chain, and China checks it alone ---------------------------


def test_china_sees_a_contiguous_chain_of_its_own_and_checks_it_and_its_checkpoint(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    case = sent_to_china(intake, review, officials, company_a)
    for who, visibility in (
        ("eu_officer", "side"),
        ("cn_officer", "joint"),
        ("eu_officer", "side"),
    ):
        with review.client(token(officials, who)) as c:
            r = c.post(
                f"/v1/cases/{case['id']}/notes", json={"text": "note", "visibility": visibility}
            )
            assert r.status_code == 201, r.text
    with review.client(token(officials, "cn_supervisor")) as c:
        issued = c.post("/v1/audit/checkpoints")
        assert issued.status_code == 201, issued.text

    cn = token(officials, "cn_officer")
    audit = get(review, cn, f"/v1/cases/{case['id']}/audit")
    eu_audit = get(review, token(officials, "eu_officer"), f"/v1/cases/{case['id']}/audit")
    entries = audit["entries"]
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["prev_hash"] for e in entries] == [GENESIS_HASH] + [e["hash"] for e in entries[:-1]]
    hidden = [e for e in eu_audit["entries"] if e["payload"].get("visibility") == "eu"]
    assert len(hidden) == 2
    hidden_values = {v for e in hidden for v in HEX64.findall(json.dumps(e))}
    assert not hidden_values & set(HEX64.findall(json.dumps(audit)))
    assert {e["id"] for e in hidden}.isdisjoint(json.dumps(audit))

    # China verifies every link with its own data, then the case's place in its checkpoint.
    assert verify_view(case["id"], "CN", view_entries(entries)).ok
    assert verify_view(case["id"], "EU", view_entries(eu_audit["entries"])).ok
    key = get(review, cn, "/v1/audit/public-key")
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public_key"]))
    proof = audit["checkpoints"][-1]
    signed = get(review, cn, f"/v1/audit/checkpoints/{proof['number']}")
    assert signed["side"] == "CN" and signed == issued.json()
    assert signature_valid(public_key, TreeHead.from_dict(signed), signed["signature"])
    leaf = Leaf(case["id"], proof["seq"], entries[proof["seq"] - 1]["hash"])
    root = root_from_proof(leaf, proof["leaf_index"], signed["tree_size"], proof["audit_path"])
    assert root == signed["root_hash"]


# --- F3: a rewrite of the database is caught by the API and the command ------------------------


def _engine(infra: Infra) -> Any:
    return make_engine(CommonSettings(**_settings_env(infra)), "review")


def _legacy_hash(entry: Any, prev: str) -> str:
    # The hash before this design: unkeyed SHA-256, which anyone can recompute.
    document = {"prev_hash": prev, "entry": entry.body()}
    return hashlib.sha256(canonical_json(document)).hexdigest()


def _rechain(session: Session, case_id: str, key: bytes | None) -> None:
    """Recompute every hash and head of the case as an attacker with database access would:
    the joint chain and the heads' MAC with the key if it leaked (else the unkeyed formula and
    no MAC), the view chains. Only a checkpoint the sides hold stops the one with the key."""
    case = session.get(Case, case_id)
    assert case is not None
    records = audit_of(session, case_id)
    prev, entries = GENESIS_HASH, []
    for record in records:
        entry = replace(entry_of(record), prev_hash=prev)
        digest = _legacy_hash(entry, prev) if key is None else entry_hash(entry, prev, key)
        record.prev_hash, record.hash, prev = prev, digest, digest
        entries.append(replace(entry, hash=digest))
        session.add(record)
    case.audit_head, case.audit_seq = prev, len(records)
    # Old schema had no view heads; the attack on it needs only the joint chain.
    chains = view_chains(case_id, entries)
    eu, cn = chains.entries["EU"], chains.entries["CN"]
    case.audit_seq_eu, case.audit_head_eu = len(eu), eu[-1].hash if eu else GENESIS_HASH
    case.audit_seq_cn, case.audit_head_cn = len(cn), cn[-1].hash if cn else GENESIS_HASH
    if key is not None:
        views = {"EU": (case.audit_seq_eu, case.audit_head_eu)}
        views["CN"] = (case.audit_seq_cn, case.audit_head_cn)
        case.audit_head_mac = head_mac(case_id, case.audit_seq, case.audit_head, views, key)
    session.add(case)
    session.commit()


def refused_case_with_kept_checkpoints(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company: Any,
    folder: Path,
    checkpoint_after_refusal: bool = True,
) -> dict[str, Any]:
    """A refused case; each side's supervisor has a checkpoint issued and keeps its own (after
    the refusal, or before it: then the refusal is newer than every checkpoint)."""
    case = sent_to_china(intake, review, officials, company)
    if checkpoint_after_refusal:
        refuse(review, officials, case)
    for side in ("eu", "cn"):
        with review.client(token(officials, f"{side}_supervisor")) as c:
            assert c.post("/v1/audit/checkpoints").status_code == 201
            kept = c.get("/v1/audit/checkpoints").json()
        (folder / f"{side}-checkpoints.json").write_text(json.dumps(kept))
    if not checkpoint_after_refusal:
        refuse(review, officials, case)
    for who in ("eu_officer", "cn_officer"):
        assert get(review, token(officials, who), f"/v1/cases/{case['id']}/audit/verify")["ok"]
    return case


def refuse(review: ServiceProcess, officials: dict[str, Any], case: dict[str, Any]) -> None:
    r = decide_with_four_eyes(review, officials, case, "refuse", reason="listed_entity")
    assert r.status_code == 200, r.text


def _caught(review: ServiceProcess, officials: dict[str, Any], case_id: str) -> list[str]:
    """Both sides' verification fails; the reasons they are given."""
    reasons = []
    for who in ("eu_officer", "cn_officer"):
        result = get(review, token(officials, who), f"/v1/cases/{case_id}/audit/verify")
        assert result["ok"] is False, (who, result)
        reasons.append(result["reason"])
    return reasons


def _command(infra: Infra, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "reechannel.cli", "audit", "verify", *args, "--json"],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "attacker_key", [None, DEV_AUDIT_KEY.encode()], ids=["no-key", "key-leaked"]
)
def test_a_rewritten_refusal_reason_with_every_hash_recomputed_is_caught(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
    tmp_path: Path,
    attacker_key: bytes | None,
) -> None:
    case = refused_case_with_kept_checkpoints(intake, review, officials, company_a, tmp_path)
    engine = _engine(infra)
    with Session(engine) as session:
        refusal = next(r for r in audit_of(session, case["id"]) if r.action == "refuse")
        refusal.payload = {**refusal.payload, "reason": "incomplete_file"}
        session.add(refusal)
        session.commit()
        _rechain(session, case["id"], attacker_key)
    engine.dispose()

    reasons = _caught(review, officials, case["id"])
    if attacker_key is not None:
        # With the key everything in the database fits again: only the signed checkpoint does not.
        assert all("checkpoint" in reason for reason in reasons), reasons
    for kept in ("cn-checkpoints.json", "eu-checkpoints.json"):
        run = _command(infra, "--checkpoints", str(tmp_path / kept))
        assert run.returncode == 1, run.stderr
        report = json.loads(run.stdout)
        assert case["id"] in {f["case_id"] for f in report["failures"]}, report


@pytest.mark.parametrize("checkpointed", [True, False], ids=["in-a-checkpoint", "newer"])
def test_a_dropped_last_entry_with_the_head_moved_back_is_caught(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
    tmp_path: Path,
    checkpointed: bool,
) -> None:
    case = refused_case_with_kept_checkpoints(
        intake, review, officials, company_a, tmp_path, checkpoint_after_refusal=checkpointed
    )
    engine = _engine(infra)
    with Session(engine) as session:
        records = audit_of(session, case["id"])
        session.delete(records[-1])
        session.commit()
        # The head moves back to the stored hash of the entry before: no key is needed.
        stored = session.get(Case, case["id"])
        assert stored is not None
        stored.audit_head, stored.audit_seq = records[-2].hash, records[-2].seq
        chains = view_chains(case["id"], [entry_of(r) for r in records[:-1]])
        eu, cn = chains.entries["EU"], chains.entries["CN"]
        stored.audit_seq_eu, stored.audit_head_eu = len(eu), eu[-1].hash
        stored.audit_seq_cn, stored.audit_head_cn = len(cn), cn[-1].hash
        session.add(stored)
        session.commit()
    engine.dispose()

    # Without the key the heads' MAC cannot follow; a checkpoint holding the entry also fails.
    _caught(review, officials, case["id"])
    run = _command(infra, "--checkpoints", str(tmp_path))
    assert run.returncode == 1, run.stderr
    failures = json.loads(run.stdout)["failures"]
    assert case["id"] in {f["case_id"] for f in failures}
    if checkpointed:
        assert {(f["case_id"], f["side"]) for f in failures if "checkpoint" in f} >= {
            (case["id"], "EU"),
            (case["id"], "CN"),
        }
    assert _command(infra, "--case", case["id"]).returncode == 1
    plain = subprocess.run(
        [sys.executable, "-m", "reechannel.cli", "audit", "verify", "--case", case["id"]],
        env=infra.env(),
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert plain.returncode == 1 and f"ALTERED case {case['id']}" in plain.stdout, plain


def test_checkpoint_numbers_out_of_range_are_problems_not_errors(
    review: ServiceProcess, officials: dict[str, Any]
) -> None:
    with review.client(token(officials, "cn_officer")) as c:
        assert c.get(f"/v1/audit/checkpoints/{2**40}").status_code == 422
        missing = c.get(f"/v1/audit/checkpoints/{2**31 - 1}")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert c.post("/v1/audit/checkpoints").status_code == 403  # an officer may not issue


def test_review_issues_checkpoints_by_itself_and_announces_them_to_both_sides(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
    infra: Infra,
) -> None:
    sent_to_china(intake, review, officials, company_a)
    known = {f["subject"] for _i, f in infra.redis().xrange(infra.stream("review.events"))}
    # A replica whose interval is a second: its periodic worker issues without being asked.
    ticker = ServiceProcess("review", infra.env(REE_AUDIT_CHECKPOINT_SECONDS="1")).start()
    try:
        announced = wait_until(
            lambda: [
                json.loads(f["data"])
                for _i, f in infra.redis().xrange(infra.stream("review.events"))
                if f["type"] == "audit.checkpoint_issued" and f["subject"] not in known
            ],
            timeout=60,
            what="a checkpoint issued by review's periodic worker",
        )
    finally:
        ticker.stop()
    event = announced[0]
    assert {h["side"] for h in event["tree_heads"]} == {"EU", "CN"}
    key = get(review, token(officials, "cn_officer"), "/v1/audit/public-key")
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key["public_key"]))
    for side in ("eu", "cn"):
        served = get(
            review, token(officials, f"{side}_officer"), f"/v1/audit/checkpoints/{event['number']}"
        )
        (sent,) = [h for h in event["tree_heads"] if h["side"] == served["side"]]
        assert served["side"] == side.upper() and served["root_hash"] == sent["root_hash"]
        assert signature_valid(public_key, TreeHead.from_dict(sent), sent["signature"])

"""China brute-forces the hidden urgency values against every hash it is shown (red-team F1).

The attacker has the rule file (it ships with the code) and every field China sees; it
enumerates stock days 0..400 and jobs at risk 0..5000 and hashes each candidate priority
payload in every document an audit hash could have been taken over. In the design before the
view chains it found the values (the `open` entry's unsalted hash); now it must find nothing.
This file imports only what existed before, so the same test runs against the old code.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from datetime import UTC, datetime
from typing import Any

from services.review.domain.audit import GENESIS_HASH, canonical_json
from services.review.domain.priority import RuleSet, score
from tests.integration.test_review_flow import act, case_of, submit, token
from tests.support import ServiceProcess

HEX64 = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")
URGENCY = {"stock_days": 9, "jobs_at_risk": 321, "production_stop_date": "2027-09-30"}


def get(review: ServiceProcess, credential: str, path: str) -> Any:
    with review.client(credential) as c:
        r = c.get(path)
        assert r.status_code == 200, r.text
        return r.json()


def sent_to_china(
    intake: ServiceProcess, review: ServiceProcess, officials: dict[str, Any], company: Any
) -> dict[str, Any]:
    """A case with urgency data, admitted and fast-tracked to China."""
    app = submit(intake, company, urgency=URGENCY, sme=False)
    case = case_of(review, officials, app["reference"])
    assert act(review, token(officials, "eu_officer"), case, "admit").status_code == 200
    r = act(review, token(officials, "eu_supervisor"), case, "fast_track", reason="9 days left")
    assert r.status_code == 200, r.text
    return case


def _priority_candidates(
    core: dict[str, Any], today: Any, tier: str, rules: RuleSet
) -> list[tuple[tuple[int, int, bool], bytes]]:
    """Every priority payload the rule file can give for stock 0..400, jobs 0..5000, SME or not,
    with the CN-visible application; one candidate per distinct outcome, of the tier China sees,
    as canonical JSON (assembled from pieces: some 300,000 candidates must hash in seconds).
    `rules` are those in force (another test of the deployment may have adopted new ones).
    """
    order = {rule.id: n for n, rule in enumerate(rules.rules)}
    flags_of = {rule.id: rule.flags for rule in rules.rules}

    def fired(**application: Any) -> frozenset[Any]:
        return frozenset(score({**core, **application}, rules, today).fired)

    base = fired(sme=False)

    def outcomes(values: range, make: Any) -> dict[frozenset[Any], int]:
        found: dict[frozenset[Any], int] = {}
        for value in values:
            found.setdefault(fired(**make(value)) - base, value)
        return found

    stock = outcomes(range(401), lambda v: {"sme": False, "urgency": {"stock_days": v}})
    jobs = outcomes(range(5001), lambda v: {"sme": False, "urgency": {"jobs_at_risk": v}})
    sme = {fired(sme=True) - base: True, frozenset(): False}
    every_fired = base.union(*stock, *jobs, *sme)
    pieces = {f: canonical_json(f.as_dict()) for f in every_fired}
    tail = b',"rules_version":' + canonical_json(rules.version) + b',"score":'
    tier_json = canonical_json(tier)
    flags_json: dict[tuple[str, ...], bytes] = {}
    out = []
    for (s_rules, s), (j_rules, j), (m_rules, m) in itertools.product(
        stock.items(), jobs.items(), sme.items()
    ):
        rules_fired = sorted(base | s_rules | j_rules | m_rules, key=lambda f: order[f.rule_id])
        total = sum(f.points for f in rules_fired)
        if rules.tier_for(total) != tier:
            continue
        flags: list[str] = []
        for f in rules_fired:
            flags += [x for x in flags_of[f.rule_id] if x not in flags]
        # {"fired", "flags", "rules_version", "score", "tier"}: canonical_json's key order.
        payload = b"".join(
            (
                b'{"fired":[',
                b",".join(pieces[f] for f in rules_fired),
                b'],"flags":',
                flags_json.setdefault(tuple(flags), canonical_json(flags)),
                tail,
                str(total).encode(),
                b',"tier":',
                tier_json,
                b"}",
            )
        )
        out.append(((s, j, m), payload))
    return out


def _templates(case_id: str, opened: dict[str, Any]) -> list[tuple[Any, bytes]]:
    """Documents an attacker would hash around the priority payload: the old joint entry, an
    unsalted commitment to the entry or its payload, the priority alone."""
    marker = "@@PRIORITY@@"
    at = datetime.fromisoformat(opened["at"].replace("Z", "+00:00"))
    entry = {
        "id": opened["id"],
        "actor": opened["actor"],
        "action": opened["action"],
        "at": at,
        "from_state": opened["from_state"],
        "to_state": opened["to_state"],
        "payload": {"priority": marker},
    }
    old_body = entry | {"case_id": case_id, "seq": opened["seq"]}
    documents = [
        *({"prev_hash": prev, "entry": old_body} for prev in {opened["prev_hash"], GENESIS_HASH}),
        entry,
        {"priority": marker},
        marker,
    ]
    out = []
    for document in documents:
        before, after = canonical_json(document).split(json.dumps(marker).encode())
        out.append((hashlib.sha256(before), after))
    return out


def test_china_cannot_recover_hidden_urgency_from_any_hash_it_is_shown(
    intake: ServiceProcess,
    review: ServiceProcess,
    officials: dict[str, Any],
    company_a: dict[str, Any],
) -> None:
    case = sent_to_china(intake, review, officials, company_a)
    cn = token(officials, "cn_supervisor")
    with review.client(cn) as c:
        # A checkpoint China holds is among what it is shown (the old design had none).
        issued = c.post("/v1/audit/checkpoints")
        seen_texts = [issued.text] if issued.status_code == 201 else []
    seen_texts += [
        json.dumps(get(review, cn, path))
        for path in (
            f"/v1/cases/{case['id']}",
            f"/v1/cases/{case['id']}/audit",
            f"/v1/cases/{case['id']}/audit/verify",
        )
    ]
    seen = set(HEX64.findall(" ".join(seen_texts)))
    cn_view = get(review, cn, f"/v1/cases/{case['id']}")
    history = get(review, cn, f"/v1/cases/{case['id']}/audit")["entries"]
    opened = next(e for e in history if e["action"] == "open")
    assert seen, "China is shown hashes to check the history with"

    today = datetime.fromisoformat(opened["at"].replace("Z", "+00:00")).astimezone(UTC).date()
    in_force = RuleSet.from_dict(get(review, token(officials, "eu_officer"), "/v1/priority/rules"))
    tier = cn_view["priority"]["tier"]
    candidates = _priority_candidates(cn_view["application"], today, tier, in_force)
    # The enumeration is sound: for the true values it rebuilds what the EU side was shown.
    eu_history = get(review, token(officials, "eu_officer"), f"/v1/cases/{case['id']}/audit")
    truth = next(e for e in eu_history["entries"] if e["action"] == "open")["payload"]["priority"]
    true_key = (URGENCY["stock_days"], URGENCY["jobs_at_risk"], False)
    assert dict(candidates)[true_key] == canonical_json(truth)

    templates = _templates(case["id"], opened)
    matches = set()
    for values, payload in candidates:
        for before, after in templates:
            digest = before.copy()
            digest.update(payload + after)
            if digest.hexdigest() in seen:
                matches.add(values)
    assert matches == set(), f"hidden values recovered from a hash China sees: {matches}"

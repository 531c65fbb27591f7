"""What the protocol file answers beyond the actions: permissions, labels and the clock.

The expected permissions are written out by hand from what the routes enforced before they
moved into protocol.yaml (api.py, casework.py, console.py), so a change to the file shows.
"""

from __future__ import annotations

from typing import Any

import pytest

from services.review.domain.errors import InvalidProtocol, UnknownAction, UnknownState
from services.review.domain.protocol import Protocol

PROTOCOL = Protocol.load()

OFFICIALS = [(side, role) for side in ("EU", "CN") for role in ("officer", "supervisor")]
EU, CN = {("EU", "officer"), ("EU", "supervisor")}, {("CN", "officer"), ("CN", "supervisor")}
BOTH = EU | CN
SUPERVISORS = {("EU", "supervisor"), ("CN", "supervisor")}

PERMISSIONS: dict[str, set[tuple[str, str]]] = {
    "record_shipment": CN,
    "revoke_licence": {("CN", "supervisor")},
    "assign_other_official": SUPERVISORS,
    "read_priority_rules": EU,
    "simulate_priority_rules": {("EU", "supervisor")},
    "adopt_priority_rules": {("EU", "supervisor")},
    "issue_priority_list": {("EU", "supervisor")},
    "read_priority_lists": BOTH,
    "read_metrics": BOTH,
    "read_audit_checkpoints": BOTH,
    "issue_audit_checkpoint": SUPERVISORS,
}


def _data() -> dict[str, Any]:
    return PROTOCOL.spec.model_dump(by_alias=True, exclude_none=True)


@pytest.mark.parametrize("permission", sorted(PERMISSIONS))
@pytest.mark.parametrize(("side", "role"), OFFICIALS)
def test_each_permission_admits_exactly_its_officials(
    permission: str, side: str, role: str
) -> None:
    assert PROTOCOL.permits(permission, side, role) == ((side, role) in PERMISSIONS[permission])


def test_the_file_names_exactly_these_permissions() -> None:
    assert set(PROTOCOL.permissions) == set(PERMISSIONS)


@pytest.mark.parametrize("permission", sorted(PERMISSIONS))
@pytest.mark.parametrize(
    ("side", "role"), [(None, None), (None, "supervisor"), ("EU", None), ("applicant", None)]
)
def test_no_permission_without_an_official_side_and_role(
    permission: str, side: str | None, role: str | None
) -> None:
    assert PROTOCOL.permits(permission, side, role) is False


def test_an_unknown_permission_is_an_error_not_a_refusal() -> None:
    with pytest.raises(KeyError, match="revoke_license"):
        PROTOCOL.permits("revoke_license", "CN", "supervisor")


def test_the_protocol_document_lists_the_permissions() -> None:
    document = PROTOCOL.as_document()
    assert document["permissions"]["revoke_licence"]["by"] == [{"side": "CN", "role": "supervisor"}]
    assert set(document["permissions"]) == set(PERMISSIONS)


def test_a_permission_that_is_also_an_action_must_name_the_same_people() -> None:
    data = _data()
    data["permissions"]["issue_priority_list"]["by"] = [{"side": "EU", "role": "officer"}]
    with pytest.raises(InvalidProtocol, match="permission issue_priority_list"):
        Protocol.from_dict(data)


# --- labels --------------------------------------------------------------------------------


def test_every_state_and_action_has_an_english_label_in_sentence_case() -> None:
    for kind, names in (("state", PROTOCOL.states), ("action", PROTOCOL.actions)):
        for name in names:
            label = PROTOCOL.label(kind, name)  # type: ignore[arg-type]
            assert label and label[0].isupper() and label != name, (kind, name)


def test_labels_are_the_consoles_wording() -> None:
    assert PROTOCOL.label("state", "awaiting_applicant") == "Waiting for applicant"
    assert PROTOCOL.label("state", "queued") == "Queued for a list"
    assert PROTOCOL.label("action", "set_priority") == "Change tier"
    assert PROTOCOL.label("action", "acknowledge") == "Acknowledge (MOFCOM accepted)"


def test_a_missing_language_falls_back_to_english_and_a_present_one_is_used() -> None:
    assert PROTOCOL.label("state", "cn_review", "zh-Hans") == "中方审查"
    diversion = PROTOCOL.label("reason", "diversion_risk", "zh-Hans", of="refuse")
    assert diversion == "存在转用或再出口风险"
    data = _data()
    del data["states"]["cn_review"]["label"]["zh-Hans"]
    del data["labels"]["elements"]["Dy"]["zh-Hans"]
    fallback = Protocol.from_dict(data)
    assert fallback.label("state", "cn_review", "zh-Hans") == "CN review"
    assert fallback.label("element", "Dy", "zh-Hans") == "Dysprosium (Dy)"


def test_a_code_without_a_label_is_shown_as_its_code() -> None:
    data = _data()
    del data["labels"]["forms"]["magnet"]
    assert Protocol.from_dict(data).label("form", "magnet", "zh-Hans") == "magnet"


def test_a_label_of_a_reason_code_or_licence_type_the_protocol_lacks_does_not_load() -> None:
    data = _data()
    data["labels"]["reason_codes"]["refuse"]["diversion"] = {"en": "Diversion"}
    with pytest.raises(InvalidProtocol, match=r"unknown reason code refuse\.diversion"):
        Protocol.from_dict(data)
    data = _data()
    data["labels"]["licence_types"]["six_month"] = {"en": "Six-month licence"}
    with pytest.raises(InvalidProtocol, match="unknown licence type"):
        Protocol.from_dict(data)


def test_the_languages_start_with_english() -> None:
    data = _data()
    data["languages"] = ["zh-Hans", "en"]
    with pytest.raises(InvalidProtocol, match="start with 'en'"):
        Protocol.from_dict(data)


def test_the_document_has_labels_in_a_language_only_when_asked() -> None:
    plain = PROTOCOL.as_document()
    assert "labels" not in plain
    assert plain["actions"]["admit"]["label"] == {"en": "Admit"}
    chinese = PROTOCOL.as_document("zh-Hans")
    assert chinese["actions"]["admit"]["label"] == {"en": "Admit", "zh-Hans": "予以受理"}
    assert chinese["labels"]["licence_types"]["annual"] == "年度出口许可证"
    assert chinese["labels"]["value_chains"]["wind_energy"] == "风能"


def test_a_label_without_english_does_not_load() -> None:
    data = _data()
    data["actions"]["admit"]["label"] = {"zh-Hans": "接纳"}
    with pytest.raises(InvalidProtocol, match="'en'"):
        Protocol.from_dict(data)


def test_labels_of_unknown_codes_are_errors() -> None:
    with pytest.raises(UnknownState):
        PROTOCOL.label("state", "screening")
    with pytest.raises(UnknownAction):
        PROTOCOL.label("action", "screen")


# --- the clock -----------------------------------------------------------------------------


def test_the_clock_of_each_state() -> None:
    clocks = {state: PROTOCOL.clock(state) for state in PROTOCOL.states}
    assert clocks == {
        "submitted": "none",
        "eu_screening": "running",
        "awaiting_applicant": "paused",
        "queued": "running",
        "cn_review": "running",
        "joint_review": "running",
        "approved": "none",
        "refused": "none",
        "not_admitted": "none",
        "withdrawn": "none",
        "lapsed": "none",
    }


def test_where_each_stage_clock_starts_and_what_a_breach_does() -> None:
    starts = {state: PROTOCOL.clock_starts_on(state) for state in PROTOCOL.states}
    assert {s: v for s, v in starts.items() if v is not None} == {
        "eu_screening": "stage_start",
        "queued": "stage_start",
        "cn_review": "acknowledgement",
        "awaiting_applicant": "stage_start",
        "joint_review": "stage_start",
    }
    breaches = {state: PROTOCOL.on_breach(state) for state in PROTOCOL.states}
    assert {s: v for s, v in breaches.items() if v is not None} == {
        "cn_review": "escalate",
        "awaiting_applicant": "lapse",
    }


def test_clock_questions_about_unknown_states_are_errors() -> None:
    for question in (PROTOCOL.clock, PROTOCOL.clock_starts_on, PROTOCOL.on_breach):
        with pytest.raises(UnknownState):
            question("screening")

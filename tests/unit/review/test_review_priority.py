"""Priority scoring with the default rules, the condition language, drafts and simulation."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

import pytest

from services.review.domain.priority import (
    InvalidRuleSet,
    RuleSet,
    SimulationCase,
    production_stop_date,
    score,
    simulate,
    stops_before_decision,
)
from services.review.service.rescoring import rescore_reason
from tests.support import sample_application

TODAY = date(2026, 11, 20)
RULES = RuleSet.default()


def application(**changes: Any) -> dict[str, Any]:
    # The sample application with a second line (a neodymium magnet), its stop 25 days ahead.
    goods = [
        {"element": "Nd", "form": "magnet", "hs_code": "850511", "quantity_kg": 900.0},
        {"element": "Dy", "form": "metal", "hs_code": "280530", "quantity_kg": 120.5},
    ]
    return sample_application(TODAY, **{"goods": goods, **changes})


def fired(result: Any) -> dict[str, str]:
    return {f.rule_id: f.explanation for f in result.fired}


def test_critical_urgent_ev_magnet_case_is_p1_with_concrete_explanations() -> None:
    result = score(application(), RULES, TODAY)
    assert result.tier == "P1"
    assert result.score == 20 + 15 + 25 + 15 + 10
    assert result.rules_version == RULES.version
    assert result.flags == ()
    explanations = fired(result)
    assert explanations["stock_critical"] == "12 days of stock left (≤ 14)"
    assert explanations["jobs_at_risk_many"] == "800 jobs at risk (≥ 500)"
    assert explanations["heavy_rare_earths"] == "line 2: element Dy (one of Dy, Tb)"
    assert explanations["production_stop_near"] == (
        "production stops on 2026-12-15, in 25 days (within 30 days)"
    )
    assert explanations["critical_value_chain"].startswith("end-use category automotive (one of")


def test_critical_chain_with_heavy_rare_earths_but_no_urgency_is_p2() -> None:
    result = score(application(urgency=None), RULES, TODAY)
    assert (result.score, result.tier) == (35, "P2")
    assert set(fired(result)) == {"critical_value_chain", "heavy_rare_earths"}


def test_critical_chain_alone_is_p3() -> None:
    result = score(
        application(urgency={}, goods=[{"element": "Nd", "form": "magnet", "quantity_kg": 5}]),
        RULES,
        TODAY,
    )
    assert (result.score, result.tier) == (20, "P3")


def test_urgency_without_a_critical_chain_or_heavy_rare_earths_stays_below_p1() -> None:
    result = score(
        application(
            end_use={"category": "other", "description": "loudspeakers"},
            goods=[{"element": "Nd", "form": "magnet", "quantity_kg": 50}],
            sme=True,
        ),
        RULES,
        TODAY,
    )
    assert result.score == 25 + 15 + 10 + 5
    assert result.tier == "P2"


def test_defence_end_use_is_flagged_not_ranked_up() -> None:
    result = score(
        application(end_use={"category": "defence", "description": "guidance actuators"}),
        RULES,
        TODAY,
    )
    assert result.flags == ("military_end_use",)
    assert "critical_value_chain" not in fired(result)
    assert fired(result)["military_end_use"] == "end-use category defence (= defence)"


def test_stock_and_job_bands_do_not_overlap() -> None:
    result = score(application(urgency={"stock_days": 20, "jobs_at_risk": 499}), RULES, TODAY)
    assert (
        fired(result)["stock_low"] == "20 days of stock left (> 14); 20 days of stock left (≤ 30)"
    )
    assert "stock_critical" not in fired(result)
    assert "jobs_at_risk_some" in fired(result)
    assert "jobs_at_risk_many" not in fired(result)


def test_production_stop_in_45_days_is_soon_not_near() -> None:
    result = score(application(urgency={"production_stop_date": "2027-01-04"}), RULES, TODAY)
    assert "production_stop_near" not in fired(result)
    assert fired(result)["production_stop_soon"] == (
        "production stops on 2027-01-04, in 45 days (within 60 days); "
        "production stops on 2027-01-04, in 45 days (not within 30 days)"
    )


def test_a_production_stop_already_past_counts_as_near() -> None:
    result = score(application(urgency={"production_stop_date": "2026-11-10"}), RULES, TODAY)
    assert "10 days ago" in fired(result)["production_stop_near"]


def test_missing_or_mistyped_values_never_fire_and_never_crash() -> None:
    result = score(
        {"end_use": "automotive", "goods": "Dy", "urgency": {"stock_days": "12"}, "sme": "yes"},
        RULES,
        TODAY,
    )
    assert (result.score, result.tier, result.fired) == (0, "P3", ())


def test_small_and_medium_enterprises_get_points() -> None:
    assert "small_or_medium_enterprise" in fired(score(application(sme=True), RULES, TODAY))
    assert "small_or_medium_enterprise" not in fired(score(application(), RULES, TODAY))


def test_result_serialises_for_storage() -> None:
    stored = score(application(), RULES, TODAY).as_dict()
    assert stored["tier"] == "P1"
    assert stored["fired"][0] == {
        "rule_id": "critical_value_chain",
        "description": "The end use is in a critical European value chain.",
        "points": 20,
        "explanation": stored["fired"][0]["explanation"],
    }


# --- the condition language and drafts ----------------------------------------------------


def draft(*rules: dict[str, Any], thresholds: dict[str, int] | None = None) -> dict[str, Any]:
    return {
        "version": "draft-1",
        "thresholds": thresholds or {"P1": 50, "P2": 20},
        "rules": list(rules),
    }


def rule(when: dict[str, Any], points: int = 10, rule_id: str = "r") -> dict[str, Any]:
    return {"id": rule_id, "description": "test rule", "when": when, "points": points}


def test_all_goods_any_and_not_combinators() -> None:
    rules = RuleSet.from_dict(
        draft(
            rule(
                {"all_goods": {"field": "form", "in": ["magnet", "alloy"]}}, rule_id="all_magnets"
            ),
            rule(
                {"any": [{"field": "sme", "eq": True}, {"field": "consignee.country", "eq": "DE"}]},
                rule_id="sme_or_de",
            ),
            rule({"not": {"field": "urgency.jobs_at_risk", "exists": True}}, rule_id="no_jobs"),
        )
    )
    result = score(application(), rules, TODAY)
    assert set(fired(result)) == {"sme_or_de"}
    assert fired(result)["sme_or_de"] == "consignee country DE (= DE)"
    magnets_only = application(goods=[{"element": "Nd", "form": "magnet"}], urgency={})
    assert set(fired(score(magnets_only, rules, TODAY))) == {"all_magnets", "sme_or_de", "no_jobs"}


def test_a_label_words_the_explanation() -> None:
    rules = RuleSet.from_dict(
        draft(rule({"field": "urgency.stock_days", "lt": 30, "label": "stock for {value} days"}))
    )
    assert fired(score(application(), rules, TODAY))["r"] == "stock for 12 days (< 30)"


def test_thresholds_map_scores_to_tiers() -> None:
    rules = RuleSet.from_dict(draft(rule({"field": "sme", "eq": False}, points=20)))
    assert rules.tier_for(50) == "P1"
    assert rules.tier_for(49) == "P2"
    assert rules.tier_for(20) == "P2"
    assert rules.tier_for(19) == "P3"


def invalid(data: Any) -> dict[str, str]:
    with pytest.raises(InvalidRuleSet) as raised:
        RuleSet.from_dict(data)
    return {e["field"]: e["message"] for e in raised.value.as_dicts()}


def test_a_malformed_draft_reports_each_error_with_its_path() -> None:
    errors = invalid(
        draft(
            rule({"field": "urgncy.stock_days", "lte": 14}, rule_id="typo"),
            rule({"field": "urgency.stock_days", "lte": "14"}, rule_id="text"),
            rule(
                {
                    "all": [
                        {"field": "sme", "eq": True},
                        {"any_goods": {"field": "element", "gte": 3}},
                    ]
                }
            ),
            rule({"field": "sme", "within_days": 3}, rule_id="typo"),
            thresholds={"P1": 10, "P2": 20},
        )
    )
    assert errors["thresholds"] == "P1 must be higher than P2"
    assert errors["rules[0].when.field"].startswith("unknown field 'urgncy.stock_days'")
    assert errors["rules[1].when.lte"] == "must be a number"
    assert (
        errors["rules[2].when.all[1].any_goods.gte"] == "gte applies to number and date fields only"
    )
    assert errors["rules[3].id"] == "duplicate rule id 'typo'"
    assert errors["rules[3].when.within_days"] == "within_days applies to date fields only"


def test_code_in_a_draft_is_data_not_something_to_run() -> None:
    errors = invalid(draft(rule({"field": "__import__('os').system('true')", "eq": 1})))
    assert "rules[0].when.field" in errors
    errors = invalid(draft(rule({"lambda": "x"})))
    assert errors["rules[0].when"] == "unknown condition 'lambda'"


def test_deeply_nested_drafts_are_refused() -> None:
    condition: dict[str, Any] = {"field": "sme", "eq": True}
    for _ in range(12):
        condition = {"not": condition}
    assert "nest at most" in next(iter(invalid(draft(rule(condition))).values()))


def test_drafts_need_version_thresholds_and_rules() -> None:
    assert set(invalid({})) == {"version", "thresholds", "rules"}
    assert invalid([]) == {"": "a rule set must be an object"}


def test_yaml_drafts_are_parsed_safely() -> None:
    with pytest.raises(InvalidRuleSet, match="not valid YAML"):
        RuleSet.from_yaml("rules: [unclosed")
    with pytest.raises(InvalidRuleSet):
        RuleSet.from_yaml("!!python/object/apply:os.system ['true']")


def test_the_default_rules_round_trip_through_as_dict() -> None:
    again = RuleSet.from_dict(copy.deepcopy(RULES.as_dict()))
    assert score(application(), again, TODAY) == score(application(), RULES, TODAY)


# --- simulation ---------------------------------------------------------------------------


def test_simulate_lists_only_cases_whose_tier_would_change() -> None:
    urgent = application()
    calm = application(urgency=None)
    lenient = RuleSet.from_dict(
        {**copy.deepcopy(RULES.as_dict()), "version": "draft", "thresholds": {"P1": 30, "P2": 10}}
    )
    changes = simulate(
        [
            SimulationCase("c-urgent", urgent, "P1", 85),
            ("c-calm", calm, "P2", 35),
            ("c-manual", calm, "P3"),
        ],
        lenient,
        TODAY,
    )
    assert [c.as_dict() for c in changes] == [
        {"case_id": "c-calm", "from_tier": "P2", "to_tier": "P1", "from_score": 35, "to_score": 35},
        {
            "case_id": "c-manual",
            "from_tier": "P3",
            "to_tier": "P1",
            "from_score": None,
            "to_score": 35,
        },
    ]


def test_simulating_the_current_rules_changes_nothing() -> None:
    cases = [
        (f"c{i}", app, score(app, RULES, TODAY).tier)
        for i, app in enumerate(
            [
                application(),
                application(urgency=None),
                application(sme=True, end_use={"category": "other"}),
            ]
        )
    ]
    assert simulate(cases, RULES, TODAY) == []


# --- live priority: the same application scored on later days ------------------------------


def test_the_production_stop_is_counted_from_the_day_scored() -> None:
    stop = date(2027, 1, 4)
    body = application(urgency={"stock_days": 20, "production_stop_date": stop.isoformat()})
    early, late = score(body, RULES, date(2026, 11, 20)), score(body, RULES, date(2026, 12, 10))
    assert "in 45 days" in fired(early)["production_stop_soon"]
    assert "in 25 days" in fired(late)["production_stop_near"]
    assert "production_stop_near" not in fired(early)
    assert late.score - early.score == 10


def test_the_reason_of_a_rescore_names_the_day_the_rules_and_what_fired() -> None:
    stop = date(2027, 1, 4).isoformat()
    body = application(urgency={"stock_days": 20, "production_stop_date": stop})
    before = score(body, RULES, date(2026, 11, 20))
    after = score(body, RULES, date(2026, 12, 10))
    reason = rescore_reason(
        before.score, {f.rule_id for f in before.fired}, "2025.9", after, date(2026, 12, 10)
    )
    assert reason.startswith(
        f"Scored again on 2026-12-10 under rules {RULES.version} (was 2025.9): "
        f"{before.score} → {after.score}."
    )
    assert "Now: production_stop_near (" in reason and "in 25 days" in reason
    assert reason.endswith("No longer: production_stop_soon.")


@pytest.mark.parametrize(
    ("stop", "expected", "flagged"),
    [
        (date(2026, 12, 1), date(2026, 12, 2), True),
        (date(2026, 12, 2), date(2026, 12, 2), False),
        (date(2026, 12, 3), date(2026, 12, 2), False),
        (None, date(2026, 12, 2), False),
        (date(2026, 12, 1), None, False),
    ],
)
def test_a_case_is_flagged_when_production_stops_before_the_expected_decision(
    stop: date | None, expected: date | None, flagged: bool
) -> None:
    assert stops_before_decision(stop, expected) is flagged


def test_the_production_stop_date_is_read_from_the_application() -> None:
    assert production_stop_date(application()) == date(2026, 12, 15)
    assert production_stop_date(application(urgency=None)) is None
    assert production_stop_date(application(urgency={"production_stop_date": "soon"})) is None


def test_a_version_longer_than_a_case_can_record_is_refused() -> None:
    draft = {**RULES.as_dict(), "version": "v" * 41}
    with pytest.raises(InvalidRuleSet) as refused:
        RuleSet.from_dict(draft)
    assert [e.field for e in refused.value.errors] == ["version"]

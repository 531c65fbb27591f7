"""Licence validity, approved quantities, status and shipments drawing them down."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from services.review.domain.licences import (
    InvalidLicence,
    InvalidShipment,
    Licence,
    LicenceNotActive,
    QuantityExceeded,
    draw,
    issue_licence,
    remaining,
    revoke,
    status,
    validity_end,
)
from services.review.domain.protocol import Actor, Protocol

GOODS = [
    {"element": "Dy", "form": "metal", "hs_code": "280530", "quantity_kg": 120.5},
    {"element": "Nd", "form": "magnet", "hs_code": "850511", "quantity_kg": 900},
    {"element": "Dy", "form": "oxide", "hs_code": "284690", "quantity_kg": 30.1},
]


def approve(**licence: Any) -> Licence:
    """Through the protocol engine first, as the service does, then the licence rules."""
    params = {"licence": {"number": "L-2026-0001", "valid_from": "2026-01-15"} | licence}
    transition = Protocol.load().decide(
        "approve", Actor("CN", "officer"), "cn_review", params=params
    )
    return issue_licence(transition.params["licence"], GOODS)


def errors(raised: pytest.ExceptionInfo[InvalidLicence]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in raised.value.as_dicts()}


@pytest.mark.parametrize(
    ("months", "valid_from", "last_day"),
    [
        (3, date(2026, 1, 15), date(2026, 4, 14)),
        (12, date(2026, 3, 1), date(2027, 2, 28)),
        (36, date(2026, 2, 1), date(2029, 1, 31)),
        (1, date(2026, 1, 31), date(2026, 2, 28)),  # no 31 February: to the end of the month
        (3, date(2026, 11, 30), date(2027, 2, 28)),
    ],
)
def test_validity_runs_to_the_day_before_the_same_date_months_later(
    months: int, valid_from: date, last_day: date
) -> None:
    assert validity_end(months, valid_from) == last_day


def test_validity_is_derived_from_the_licence_type() -> None:
    assert approve(type="three_month").valid_until == date(2026, 4, 14)
    assert approve(type="annual").valid_until == date(2027, 1, 14)
    assert approve(type="general").valid_until == date(2029, 1, 14)


def test_an_explicit_validity_may_be_shorter_than_the_type_allows() -> None:
    assert approve(type="general", valid_until="2027-06-30").valid_until == date(2027, 6, 30)


def test_an_explicit_validity_beyond_the_type_maximum_is_refused() -> None:
    with pytest.raises(InvalidLicence) as raised:
        approve(type="three_month", valid_until="2026-04-15")
    assert errors(raised) == {
        "licence.valid_until": "a three_month licence is valid for at most 3 months: "
        "until 2026-04-14 at the latest"
    }


def test_validity_cannot_end_before_it_starts() -> None:
    with pytest.raises(InvalidLicence) as raised:
        approve(type="annual", valid_until="2026-01-14")
    assert "licence.valid_until" in errors(raised)


def test_lines_default_to_what_was_asked() -> None:
    licence = approve(type="annual")
    assert [line.approved_kg for line in licence.lines] == [
        Decimal("120.5"),
        Decimal("900"),
        Decimal("30.1"),
    ]


def test_china_may_approve_less_than_asked_for_a_line() -> None:
    licence = approve(type="annual", lines=[{"line": 2, "approved_quantity_kg": 400}])
    assert [line.approved_kg for line in licence.lines] == [
        Decimal("120.5"),
        Decimal("400"),
        Decimal("30.1"),
    ]


def test_china_may_not_approve_more_than_asked() -> None:
    with pytest.raises(InvalidLicence) as raised:
        approve(type="annual", lines=[{"line": 1, "approved_quantity_kg": 120.6}])
    assert errors(raised) == {
        "licence.lines[0].approved_quantity_kg": "must not exceed the 120.5 kg asked for line 1"
    }


def test_approved_lines_must_exist_once() -> None:
    with pytest.raises(InvalidLicence) as raised:
        approve(
            type="annual",
            lines=[
                {"line": 4, "approved_quantity_kg": 1},
                {"line": 1, "approved_quantity_kg": 1},
                {"line": 1, "approved_quantity_kg": 2},
            ],
        )
    assert errors(raised) == {
        "licence.lines[0].line": "the application has no line 4",
        "licence.lines[2].line": "line 1 is listed twice",
    }


def test_approving_nothing_at_all_is_refused() -> None:
    zero = [{"line": n, "approved_quantity_kg": 0} for n in (1, 2, 3)]
    with pytest.raises(InvalidLicence, match="refuse instead"):
        approve(type="annual", lines=zero)


# --- drawing shipments ------------------------------------------------------------------


def test_shipments_draw_down_each_line() -> None:
    licence = approve(type="annual")
    first = draw(licence, [], [{"line": 1, "quantity_kg": 100.4}], date(2026, 2, 1))
    second = draw(licence, [first], [{"line": 1, "quantity_kg": 20.1}], date(2026, 3, 1))
    assert remaining(licence, [first, second])[1] == Decimal("0.0")


def test_a_shipment_beyond_what_remains_is_refused_whole() -> None:
    licence = approve(type="annual")
    first = draw(licence, [], [{"line": 1, "quantity_kg": 100}], date(2026, 2, 1))
    with pytest.raises(QuantityExceeded) as raised:
        draw(
            licence,
            [first],
            [{"line": 2, "quantity_kg": 10}, {"line": 1, "quantity_kg": 20.6}],
            date(2026, 2, 2),
        )
    (excess,) = raised.value.excesses
    assert (excess.key, excess.requested_kg, excess.remaining_kg) == ("line 1", "20.6", "20.5")


def test_split_lines_in_one_shipment_are_added_up() -> None:
    licence = approve(type="annual")
    with pytest.raises(QuantityExceeded):
        draw(
            licence,
            [],
            [{"line": 3, "quantity_kg": 20}, {"line": 3, "quantity_kg": 10.2}],
            date(2026, 2, 2),
        )


def test_a_general_licence_caps_each_element_across_lines() -> None:
    licence = approve(type="general")
    assert licence.ceilings() == {"Dy": Decimal("150.6"), "Nd": Decimal("900")}
    shipment = draw(licence, [], [{"element": "Dy", "quantity_kg": 150}], date(2026, 5, 1))
    by_line = draw(licence, [shipment], [{"line": 3, "quantity_kg": 0.6}], date(2026, 5, 2))
    with pytest.raises(QuantityExceeded, match="Dy"):
        draw(
            licence, [shipment, by_line], [{"element": "Dy", "quantity_kg": 0.1}], date(2026, 5, 3)
        )


def test_shipment_lines_must_name_the_licence_and_a_positive_quantity() -> None:
    licence = approve(type="annual")
    with pytest.raises(InvalidShipment) as raised:
        draw(
            licence,
            [],
            [{"line": 9, "quantity_kg": 1}, {"line": 1, "quantity_kg": 0}, {"element": "Dy"}],
            date(2026, 2, 1),
        )
    assert {e["field"] for e in raised.value.as_dicts()} == {
        "lines[0].line",
        "lines[1].quantity_kg",
        "lines[2].quantity_kg",
        "lines[2].line",
    }
    with pytest.raises(InvalidShipment):
        draw(licence, [], [], date(2026, 2, 1))


def test_status_follows_time_quantities_and_revocation() -> None:
    licence = approve(
        type="three_month", lines=[{"line": n, "approved_quantity_kg": 0} for n in (2, 3)]
    )
    assert status(licence, [], date(2026, 4, 14)) == "active"
    assert status(licence, [], date(2026, 4, 15)) == "expired"
    everything = draw(licence, [], [{"line": 1, "quantity_kg": 120.5}], date(2026, 2, 1))
    assert status(licence, [everything], date(2026, 3, 1)) == "exhausted"
    revoked = revoke(licence, date(2026, 3, 1))
    assert status(revoked, [], date(2026, 2, 28)) == "active"
    assert status(revoked, [everything], date(2026, 3, 1)) == "revoked"


def test_no_shipment_on_an_expired_revoked_exhausted_or_not_yet_valid_licence() -> None:
    licence = approve(type="three_month")
    line = [{"line": 2, "quantity_kg": 1}]
    with pytest.raises(LicenceNotActive, match="expired"):
        draw(licence, [], line, date(2026, 4, 15))
    with pytest.raises(LicenceNotActive, match="revoked"):
        draw(revoke(licence, date(2026, 2, 1)), [], line, date(2026, 2, 2))
    with pytest.raises(LicenceNotActive, match="valid only from 2026-01-15"):
        draw(licence, [], line, date(2026, 1, 14))
    everything = draw(
        licence,
        [],
        [{"line": n, "quantity_kg": q} for n, q in ((1, 120.5), (2, 900), (3, 30.1))],
        date(2026, 2, 1),
    )
    with pytest.raises(LicenceNotActive, match="exhausted"):
        draw(licence, [everything], line, date(2026, 2, 2))


def test_a_revoked_licence_takes_no_shipment_recorded_after_the_revocation_whatever_its_date() -> (
    None
):
    revoked = revoke(approve(type="three_month"), date(2026, 3, 1))
    line = [{"line": 2, "quantity_kg": 1}]
    for shipped_on in (date(2026, 2, 1), date(2026, 2, 28), date(2026, 3, 1)):
        with pytest.raises(LicenceNotActive, match="revoked on 2026-03-01"):
            draw(revoked, [], line, shipped_on, recorded_on=date(2026, 3, 2))
    with pytest.raises(LicenceNotActive, match="revoked"):
        draw(revoked, [], line, date(2026, 2, 27), recorded_on=date(2026, 3, 1))
    # Recorded before the revocation, a shipment of that time was drawn as usual.
    kept = draw(revoked, [], line, date(2026, 2, 27), recorded_on=date(2026, 2, 28))
    assert kept.shipped_on == date(2026, 2, 27)


def test_a_shipment_is_not_dated_beyond_the_next_day_of_its_recording() -> None:
    licence = approve(type="three_month")
    line = [{"line": 2, "quantity_kg": 1}]
    today = date(2026, 2, 1)
    for ahead in (date(2026, 2, 3), date(2028, 7, 21), date(9999, 12, 31)):
        with pytest.raises(InvalidShipment) as refused:
            draw(licence, [], line, ahead, recorded_on=today)
        assert [e.field for e in refused.value.errors] == ["shipped_on"]
    # China's day starts eight hours before UTC's: tomorrow in UTC may be today there.
    assert draw(licence, [], line, date(2026, 2, 2), recorded_on=today).shipped_on.day == 2
    with pytest.raises(LicenceNotActive, match="valid only from 2026-01-15"):
        draw(licence, [], line, date(2026, 1, 14), recorded_on=today)


def test_licence_serialises_quantities_exactly() -> None:
    shown = approve(type="annual").as_dict()
    assert shown["valid_until"] == "2027-01-14"
    assert shown["lines"][0]["approved_quantity_kg"] == "120.5"
    assert shown["quantity_basis"] == "line"

"""GET /v1/metrics/summary, /commission and /monthly/{month}: the caller's side's figures,
as JSON or CSV."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from sqlalchemy.engine import Engine
from sqlmodel import Session

from services.review.metrics.commission import (
    commission_csv,
    commission_figures,
    monthly_csv,
    monthly_report,
)
from services.review.metrics.facts import Audience, GroupBy
from services.review.metrics.reports import Period, summary, summary_csv
from services.review.queue import stopping_before_decision
from shared.directory import Principal
from shared.http import current_official
from shared.problems import documented_errors, invalid

router = APIRouter(prefix="/v1", responses=documented_errors())

# No case is older than the channel, and no decision is a year ahead: a period outside
# these bounds is a typo (or a probe), and 9999-12-31 would overflow the month arithmetic.
EARLIEST = date(2020, 1, 1)
AHEAD = timedelta(days=366)


def _engine(request: Request) -> Engine:
    return request.app.state.runtime.engine


def parse_period(start: str | None, end: str | None, today: date) -> Period:
    """The `from`/`to` parameters, each a date from 2020-01-01 to a year after `today`."""
    latest = today + AHEAD
    errors: list[dict[str, str]] = []
    parsed: dict[str, date | None] = {}
    for name, value in (("from", start), ("to", end)):
        try:
            parsed[name] = date.fromisoformat(value) if value else None
        except ValueError:
            errors.append({"field": name, "message": "must be a date, YYYY-MM-DD"})
            continue
        day = parsed[name]
        if day is not None and not EARLIEST <= day <= latest:
            errors.append(
                {
                    "field": name,
                    "message": f"must be from {EARLIEST.isoformat()} to {latest.isoformat()}",
                }
            )
    if errors:
        raise invalid(errors)
    period = Period(parsed["from"], parsed["to"])
    if period.start and period.end and period.start > period.end:
        raise invalid([{"field": "from", "message": "must not be after `to`"}])
    return period


def audience_of(principal: Principal) -> Audience:
    """Officials of China read China's figures; every other official the EU's."""
    return "CN" if principal.side is not None and principal.side.value == "CN" else "EU"


def compute(request: Request, group_by: str, period: Period, audience: Audience) -> dict[str, Any]:
    casework = request.app.state.casework
    with Session(_engine(request)) as session:
        result = summary(session, casework.protocol, casework.today(), group_by, period, audience)
        if audience == "EU":
            # Read off the cases now, whatever the period: the production stop is the EU's.
            result["backlog"]["stopping_before_decision"] = stopping_before_decision(
                session, casework.protocol
            )
        return result


def _csv(body: str, name: str) -> Response:
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def period_of(request: Request, start: str | None, end: str | None) -> Period:
    return parse_period(start, end, request.app.state.casework.today())


@router.get(
    "/metrics/summary",
    tags=["metrics"],
    summary="Approval rate, processing times per stage, backlog and breaches, by group",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_summary(
    request: Request,
    official: Annotated[Principal, Depends(current_official)],
    group_by: Annotated[GroupBy, Query()] = "form",
    start: Annotated[str | None, Query(alias="from", description="YYYY-MM-DD")] = None,
    end: Annotated[str | None, Query(alias="to", description="YYYY-MM-DD")] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    # China's figures cover only the cases sent to China, and only what it may see of them.
    result = compute(request, group_by, period_of(request, start, end), audience_of(official))
    if format == "csv":
        return _csv(summary_csv(result), f"ree-metrics-{group_by}.csv")
    # The summary is plain JSON apart from its three dates (jsonable_encoder would walk
    # every figure to find them).
    dates = {k: v.isoformat() for k, v in result.items() if isinstance(v, date)}
    return JSONResponse({**result, **dates})


def parse_month(value: str, today: date) -> date:
    """A `YYYY-MM` month from 2020-01 to the current month (422 naming `month` otherwise)."""
    try:
        month = date.fromisoformat(value + "-01") if len(value) == 7 else None
    except ValueError:
        month = None
    if month is None:
        raise invalid([{"field": "month", "message": "must be a month, YYYY-MM"}])
    if not EARLIEST <= month <= today:
        raise invalid(
            [
                {
                    "field": "month",
                    "message": f"must be from {EARLIEST:%Y-%m} to {today:%Y-%m}",
                }
            ]
        )
    return month


def commission_of(request: Request, audience: Audience) -> dict[str, Any]:
    casework = request.app.state.casework
    with Session(_engine(request)) as session:
        return commission_figures(session, casework.protocol, casework.today(), audience)


def monthly_of(request: Request, month: str, audience: Audience) -> dict[str, Any]:
    casework = request.app.state.casework
    today = casework.today()
    first = parse_month(month, today)
    with Session(_engine(request)) as session:
        return monthly_report(session, casework.protocol, today, audience, first)


@router.get(
    "/metrics/commission",
    tags=["metrics"],
    summary="The Commission's figures: share approved by month, cases past the statutory "
    "period, processing time by product category",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_commission(
    request: Request,
    official: Annotated[Principal, Depends(current_official)],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    figures = commission_of(request, audience_of(official))
    if format == "csv":
        return _csv(commission_csv(figures), "ree-commission.csv")
    return JSONResponse(jsonable_encoder(figures))


@router.get(
    "/metrics/monthly/{month}",
    tags=["metrics"],
    summary="One month's report for the Commission (YYYY-MM)",
    responses={200: {"content": {"text/csv": {}}}},
)
def get_monthly(
    request: Request,
    month: str,
    official: Annotated[Principal, Depends(current_official)],
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Response:
    report = monthly_of(request, month, audience_of(official))
    if format == "csv":
        return _csv(monthly_csv(report), f"ree-monthly-{report['month']}.csv")
    return JSONResponse(jsonable_encoder(report))

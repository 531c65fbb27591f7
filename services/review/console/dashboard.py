"""The dashboard: the metrics summary and the Commission's figures as charts and tables, and
their CSV exports."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.review.api.common import casework_of
from services.review.console.pages import (
    SECURITY_HEADERS,
    problem_text,
    render,
    router,
    words_of,
)
from services.review.console.session import signed_in
from services.review.console.wording import Words
from services.review.domain.protocol import Protocol
from services.review.metrics.api import audience_of, commission_of, compute, period_of
from services.review.metrics.commission import commission_csv
from services.review.metrics.facts import GROUPINGS, NO_GROUP, NOT_LISTED, STAGE_LABELS
from services.review.metrics.reports import summary_csv
from shared.i18n import N_
from shared.problems import Problem

# The groups that are not a code of the protocol, as the figures name them.
GROUP_NAMES = {NO_GROUP: N_("(none)"), NOT_LISTED: N_("not listed"), "fast track": N_("fast track")}


def _dashboard_query(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    group_by = q.get("group_by") if q.get("group_by") in GROUPINGS else "form"
    return str(group_by), q.get("from", ""), q.get("to", "")


def group_name(protocol: Protocol, group_by: str, group: str, words: Words) -> str:
    """A group of the figures as people read it: the protocol's label of its code."""
    if group in GROUP_NAMES:
        return words.gettext(GROUP_NAMES[group])
    if group_by == "priority_list" and group.startswith("list "):
        return words.gettext(N_("List %(number)s")) % {"number": group.removeprefix("list ")}
    if group_by in ("form", "element", "value_chain", "licence_type"):
        return protocol.label(group_by, group, words.lang)  # type: ignore[arg-type]
    return group


@router.get("/dashboard", response_class=HTMLResponse)
def dashboard(request: Request) -> HTMLResponse:
    principal = signed_in(request)
    group_by, start, end = _dashboard_query(request)
    try:
        period = period_of(request, start, end)
    except Problem as exc:
        _status, message, fields = problem_text(exc)
        period, start, end = period_of(request, None, None), "", ""
        error: tuple[str, list[str]] | None = (message, fields)
    else:
        error = None
    result = compute(request, group_by, period, audience_of(principal))
    commission = commission_of(request, audience_of(principal))
    groups = result["groups"]
    words = words_of(request, principal)
    protocol = casework_of(request).protocol

    stage_names = {stage: words.gettext(label) for stage, label in STAGE_LABELS.items()}

    def named(group: str) -> str:
        return group_name(protocol, group_by, group, words)

    charts = {
        "approval": [
            {
                "label": named(g["group"]),
                "rate": g["approval_rate"],
                "n": g["outcomes"]["approved"] + g["outcomes"]["refused"],
            }
            for g in groups
        ],
        "processing": [
            {"label": named(g["group"]), **g["processing_days"]["total"]}
            for g in groups
            if g["processing_days"]["total"]["cases"]
        ],
        "stages": [
            {**s, "label": stage_names[s["stage"]]} for s in result["bottlenecks"]["stages"]
        ],
        "months": result["by_month"][-18:],
    }
    csv_link = "/dashboard.csv?" + urlencode({"group_by": group_by, "from": start, "to": end})
    return render(
        request,
        "dashboard.html",
        principal,
        result=result,
        charts=charts,
        groupings=GROUPINGS,
        group_by=group_by,
        start=start,
        end=end,
        csv_link=csv_link,
        commission=commission,
        error=error,
        stage_labels=result["stages"],
        group_name=named,
    )


@router.get("/dashboard.csv")
def dashboard_csv(request: Request) -> Response:
    principal = signed_in(request)
    group_by, start, end = _dashboard_query(request)
    result = compute(request, group_by, period_of(request, start, end), audience_of(principal))
    return Response(
        summary_csv(result),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="ree-metrics-{group_by}.csv"',
            **SECURITY_HEADERS,
        },
    )


@router.get("/dashboard/commission.csv")
def commission_dashboard_csv(request: Request) -> Response:
    principal = signed_in(request)
    return Response(
        commission_csv(commission_of(request, audience_of(principal))),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": 'attachment; filename="ree-commission.csv"',
            **SECURITY_HEADERS,
        },
    )

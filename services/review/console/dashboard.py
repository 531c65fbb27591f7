"""The dashboard: the metrics summary and the Commission's figures as charts and tables, and
their CSV exports."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.review.console.pages import SECURITY_HEADERS, problem_text, render, router
from services.review.console.session import signed_in
from services.review.metrics.api import audience_of, commission_of, compute, period_of
from services.review.metrics.commission import commission_csv
from services.review.metrics.facts import GROUPINGS, STAGE_LABELS
from services.review.metrics.reports import summary_csv
from shared.problems import Problem


def _dashboard_query(request: Request) -> tuple[str, str, str]:
    q = request.query_params
    group_by = q.get("group_by") if q.get("group_by") in GROUPINGS else "form"
    return str(group_by), q.get("from", ""), q.get("to", "")


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
    charts = {
        "approval": [
            {
                "label": g["group"],
                "rate": g["approval_rate"],
                "n": g["outcomes"]["approved"] + g["outcomes"]["refused"],
            }
            for g in groups
        ],
        "processing": [
            {"label": g["group"], **g["processing_days"]["total"]}
            for g in groups
            if g["processing_days"]["total"]["cases"]
        ],
        "stages": [
            {**s, "label": STAGE_LABELS[s["stage"]]} for s in result["bottlenecks"]["stages"]
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

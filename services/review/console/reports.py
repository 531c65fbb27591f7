"""The Commission's monthly report: one printable page per month, and its CSV."""

from __future__ import annotations

from datetime import date

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from services.review.api.common import casework_of
from services.review.console.pages import SECURITY_HEADERS, problem_text, render, router
from services.review.console.session import signed_in
from services.review.metrics.api import audience_of, monthly_of
from services.review.metrics.commission import monthly_csv
from shared.problems import Problem


def _month_links(month: str, today: date) -> tuple[str | None, str | None]:
    """The months before and after `month` (YYYY-MM), None past the current month."""
    year, number = int(month[:4]), int(month[5:])
    before = f"{year - (number == 1)}-{(number - 2) % 12 + 1:02d}"
    after = f"{year + (number == 12)}-{number % 12 + 1:02d}"
    return before, (after if after <= f"{today:%Y-%m}" else None)


@router.get("/reports/monthly", response_class=HTMLResponse)
def monthly_page(request: Request) -> HTMLResponse:
    principal = signed_in(request)
    today = casework_of(request).today()
    month = request.query_params.get("month") or f"{today:%Y-%m}"
    error: tuple[str, list[str]] | None = None
    try:
        report = monthly_of(request, month, audience_of(principal))
    except Problem as exc:
        _status, message, fields = problem_text(exc)
        error, month = (message, fields), f"{today:%Y-%m}"
        report = monthly_of(request, month, audience_of(principal))
    before, after = _month_links(month, today)
    return render(
        request,
        "monthly.html",
        principal,
        report=report,
        error=error,
        before=before,
        after=after,
    )


@router.get("/reports/monthly.csv")
def monthly_page_csv(request: Request) -> Response:
    principal = signed_in(request)
    month = request.query_params.get("month") or f"{casework_of(request).today():%Y-%m}"
    report = monthly_of(request, month, audience_of(principal))
    return Response(
        monthly_csv(report),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="ree-monthly-{report["month"]}.csv"',
            **SECURITY_HEADERS,
        },
    )

"""The protocol is wholly data: no state name is spelt outside the engine and its file.

Scans every string literal of review's service layer, its domain and the simulator; a
state name there repeats what protocol.yaml says and would drift from it.
"""

from __future__ import annotations

import ast
from pathlib import Path

from services.review.domain.protocol import Protocol

ROOT = Path(__file__).resolve().parents[3]
SCANNED = [
    "services/review/service",
    "services/review/domain/deadlines.py",
    "services/review/domain/errors.py",
    "services/review/domain/priority.py",
    "services/review/domain/priority_conditions.py",
    "services/review/domain/protocol_params.py",
    "services/review/domain/statistics.py",
    "services/review/api",
    "services/review/console",
    "services/review/queue.py",
    "services/review/documents.py",
    "services/review/handlers.py",
    "services/review/app.py",
    "services/review/problems.py",
    "services/review/audit_service",
    "reechannel/simulate",
]
# The engine and its file may name states.
ENGINE = {"services/review/domain/protocol.py", "services/review/domain/protocol_file.py"}
# Literals that are not case states though they are spelt like one.
NOT_STATES = {
    # An information request's status (store.InformationRequest.status).
    ("services/review/service/ticker.py", "lapsed"),
    # A proposal's status (store.Proposal.status: four eyes), not the case's.
    ("services/review/service/proposals.py", "withdrawn"),
    ("services/review/console/wording.py", "withdrawn"),  # its word on the console's pages
    # The status of intake's application in the event the simulator writes.
    ("reechannel/simulate/history.py", "submitted"),
    # A sort order of the queue named after the column it sorts by (submitted_at).
    ("services/review/queue.py", "submitted"),
    # Keys of the metrics summary's outcomes (services/review/metrics/), not states read here.
    ("services/review/console/dashboard.py", "approved"),
    ("services/review/console/dashboard.py", "refused"),
}
# Not scanned yet: the metrics (services/review/metrics/) still name the states their stages
# and figures are made of (issue 16 stays open for them).
KNOWN_ELSEWHERE = [
    "services/review/metrics",
]


def _files() -> list[Path]:
    files: list[Path] = []
    for entry in SCANNED:
        path = ROOT / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _state_literals(path: Path, states: set[str]) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and node.value in states
        and id(node) not in docstrings
    ]


def test_no_state_name_is_spelt_outside_the_engine() -> None:
    states = set(Protocol.load().states)
    found = []
    for path in _files():
        name = path.relative_to(ROOT).as_posix()
        if name in ENGINE:
            continue
        found += [
            f"{name}:{line}: {value!r}"
            for line, value in _state_literals(path, states)
            if (name, value) not in NOT_STATES
        ]
    assert found == []


def test_the_scan_finds_a_state_name_where_there_is_one(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('def f(case):\n    """In cn_review."""\n    return case.state == "queued"\n')
    assert _state_literals(sample, set(Protocol.load().states)) == [(3, "queued")]


def test_the_known_exceptions_still_exist() -> None:
    # When review-http has removed their literals, drop them from KNOWN_ELSEWHERE and scan them.
    assert all(
        (ROOT / name).exists() or (ROOT / name.removesuffix(".py")).is_dir()
        for name in KNOWN_ELSEWHERE
    )

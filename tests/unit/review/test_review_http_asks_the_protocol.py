"""Review's routes and console decide who may act, and name states, from the protocol file.

Architecture issue 16, item 4: who may record shipments, revoke a licence, read or simulate
the rules, issue a list or a checkpoint is in `protocol.yaml` (`permissions`), and so are the
states' and actions' labels. A route that compares an official's side or role with a literal
before refusing, or a module that keeps its own table of state or action names, is a second
copy that drifts from the file; these tests read the modules' syntax to find one.
"""

from __future__ import annotations

import ast
from pathlib import Path

from services.review.domain.protocol import Protocol

REVIEW = Path(__file__).resolve().parents[3] / "services" / "review"
# The HTTP side of review: the API and the console, as modules or as packages.
HTTP_MODULES = sorted(
    {*REVIEW.glob("api.py"), *REVIEW.glob("api/*.py")}
    | {*REVIEW.glob("console.py"), *REVIEW.glob("console/*.py")}
)
SIDES_AND_ROLES = {"EU", "CN", "officer", "supervisor"}


def _refuses(body: list[ast.stmt]) -> bool:
    """Whether a block raises a 403: `forbidden(...)` or `Problem(403, ...)`."""
    for node in ast.walk(ast.Module(body=body, type_ignores=[])):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
            first = node.exc.args[0] if node.exc.args else None
            if name == "forbidden" or (
                name == "Problem" and isinstance(first, ast.Constant) and first.value == 403
            ):
                return True
    return False


def _names_a_side_or_role(test: ast.expr) -> bool:
    return any(
        (isinstance(n, ast.Constant) and n.value in SIDES_AND_ROLES)
        or (isinstance(n, ast.Attribute) and n.attr == "role")
        for n in ast.walk(test)
    )


def _compares_a_role(node: ast.AST) -> bool:
    """`….role.value == "supervisor"` and the like, wherever it stands."""
    return isinstance(node, ast.Compare) and any(
        isinstance(n, ast.Attribute)
        and n.attr == "value"
        and isinstance(n.value, ast.Attribute)
        and n.value.attr == "role"
        for n in ast.walk(node)
    )


def _own_decisions(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    found = [
        f"{path.name}:{node.lineno}: refuses by side or role"
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and _refuses(node.body) and _names_a_side_or_role(node.test)
    ]
    found += [
        f"{path.name}:{node.lineno}: compares a role"
        for node in ast.walk(tree)
        if _compares_a_role(node)
    ]
    return sorted(found, key=lambda f: int(f.split(":")[1]))


def _label_tables(path: Path, codes: set[str]) -> list[str]:
    """Dict literals keyed by three or more of the protocol's state or action names."""
    tree = ast.parse(path.read_text(), str(path))
    return [
        f"{path.name}:{node.lineno}: a table of {len(keys)} protocol names"
        for node in ast.walk(tree)
        if isinstance(node, ast.Dict)
        and len(
            keys := {k.value for k in node.keys if isinstance(k, ast.Constant) and k.value in codes}
        )
        >= 3
    ]


def test_the_routes_and_console_ask_the_protocol_who_may_act() -> None:
    assert len(HTTP_MODULES) >= 2, f"found too few modules under {REVIEW}"
    found = [f for path in HTTP_MODULES for f in _own_decisions(path)]
    assert found == [], "decide with Protocol.permits (protocol.yaml: permissions)"


def test_the_console_names_states_and_actions_from_the_protocol_only() -> None:
    protocol = Protocol.load()
    codes = set(protocol.states) | set(protocol.actions)
    found = [f for path in HTTP_MODULES for f in _label_tables(path, codes)]
    assert found == [], "label with Protocol.label (protocol.yaml: label)"


def test_the_check_finds_a_refusal_by_role_and_a_label_table(tmp_path: Path) -> None:
    example = tmp_path / "example.py"
    example.write_text(
        "def route(official):\n"
        "    if official.role is None or official.role.value != 'supervisor':\n"
        "        raise forbidden('no')\n"
        "    if side_of(official) != 'CN':\n"
        "        raise Problem(403, 'Forbidden')\n"
        "    may = official.role.value == 'supervisor'\n"
        "    if official.id == 'x':\n"
        "        raise forbidden('not a side or a role: fine')\n"
        "LABELS = {'admit': 'Admit', 'refuse': 'Refuse', 'approve': 'Approve'}\n"
        "OTHER = {'admit': 1, 'x': 2}\n"
    )
    assert _own_decisions(example) == [
        "example.py:2: refuses by side or role",
        "example.py:2: compares a role",
        "example.py:4: refuses by side or role",
        "example.py:6: compares a role",
    ]
    assert _label_tables(example, {"admit", "refuse", "approve"}) == [
        "example.py:9: a table of 3 protocol names"
    ]

"""`shared/` holds what the services import and imports none of them (architecture issue 16).

Every service depends on `shared`; if `shared` imported a service (or the operator tooling in
`reechannel`, which imports the services), the package every service depends on would depend
on one of them. The operator tooling lives in `reechannel/` for that reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
FORBIDDEN = ("services", "reechannel")
# Calls that import a module named by a string: a way round `import` statements.
IMPORTING_CALLS = ("import_module", "__import__", "find_spec")


def _is_forbidden(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN


def _called_name(node: ast.Call) -> str:
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    if isinstance(node.func, ast.Name):
        return node.func.id
    return ""


def forbidden_imports(source: str, filename: str) -> list[str]:
    """Each import of a service or of the operator tooling in one module, as `line: module`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        elif (
            isinstance(node, ast.Call)
            and _called_name(node) in IMPORTING_CALLS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            modules = [node.args[0].value]
        found += [f"{node.lineno}: {m}" for m in modules if _is_forbidden(m)]
    return found


def test_the_check_sees_every_way_of_importing_a_service() -> None:
    source = "\n".join(
        [
            "import services.review.api",
            "from services.review.store import Case",
            "from reechannel.cli import main",
            "import importlib",
            "importlib.import_module('services.notify.app')",
            "def f():",
            "    from services import intake",
            "import shared.db, servicesx",
        ]
    )
    assert forbidden_imports(source, "example.py") == [
        "1: services.review.api",
        "2: services.review.store",
        "3: reechannel.cli",
        "5: services.notify.app",
        "7: services",
    ]


def test_shared_imports_no_service_and_no_operator_tooling() -> None:
    modules = sorted(SHARED.rglob("*.py"))
    assert len(modules) > 10, f"found too few modules under {SHARED}"
    offenders = {
        str(path.relative_to(SHARED.parent)): found
        for path in modules
        if (found := forbidden_imports(path.read_text(), str(path)))
    }
    assert offenders == {}


def test_the_command_line_loads_no_services_tables_when_imported() -> None:
    """Intake's and review's tables share names (`documents`, `information_requests`) and
    cannot be in one process's metadata. `reechannel restore` migrates each schema in a
    spawned process, which imports the command line again as its main module: were
    `reechannel.cli` to load a service's tables, the restore of the other would fail. Its
    commands import a service's modules when they run."""
    import subprocess
    import sys

    probe = (
        "import reechannel.cli; from sqlmodel import SQLModel; "
        "print(' '.join(sorted(SQLModel.metadata.tables)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=SHARED.parent,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    loaded = set(out.stdout.split())
    assert not loaded & {"documents", "information_requests", "cases", "applications"}, loaded

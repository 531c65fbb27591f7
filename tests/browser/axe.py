"""The one axe-core check of the browser tests: no serious or critical violation on the page
as shown, and a full-page screenshot of it in test-artifacts/."""

from __future__ import annotations

import json
from typing import Any

from tests.browser.conftest import ARTIFACTS
from tests.support import ROOT

# Installed by the Makefile's npm install into .cache/npm (portal-core pins the version).
AXE = ROOT / ".cache" / "npm" / "node_modules" / "axe-core" / "axe.min.js"


def accessible(page: Any, name: str, prefix: str = "portal-") -> None:
    """axe-core on the page as shown: no serious or critical violation; a screenshot
    (test-artifacts/`prefix``name`.png). The page's context needs `bypass_csp=True`: axe is
    added as an inline script, which the pages' CSP rightly refuses."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("axe.run()")
    bad = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert not bad, f"{name}: {json.dumps(bad, indent=1)}"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{prefix}{name}.png"), full_page=True)

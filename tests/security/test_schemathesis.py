"""Hostile input: schemathesis against each service's own OpenAPI document, with valid credentials.

Checks: no server error, and every answer matches what the document declares (body schema,
status code, content type). Examples, coverage, fuzzing and stateful phases, one worker (its
coverage phase is not thread-safe on Python 3.11), a fixed seed and a bounded number of
examples so the three runs together stay around a minute. Path parameters are pinned to real
objects of the world so requests reach the routes' logic rather than stopping at 404.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import World

pytestmark = pytest.mark.slow

CHECKS = (
    "not_a_server_error,response_schema_conformance,status_code_conformance,"
    "content_type_conformance"
)
MAX_EXAMPLES = "40"
SEED = "20260601"


def _operations(world: World, service: str) -> list[tuple[str, dict[str, str]]]:
    """(path template, pinned path parameters) for the routes whose ids must be real."""
    ids = world.ids
    if service == "intake":
        return [
            ("/v1/applications/{application_id}", {"application_id": ids["app_main"]}),
            (
                "/v1/applications/{application_id}/documents",
                {"application_id": ids["app_main"]},
            ),
            (
                "/v1/applications/{application_id}/documents/{document_id}",
                {"application_id": ids["app_main"], "document_id": ids["document"]},
            ),
            (
                "/v1/applications/{application_id}/information-requests/{request_id}/answer",
                {"application_id": ids["app_asked"], "request_id": ids["request"]},
            ),
        ]
    if service == "review":
        case = {"case_id": ids["case_cn"]}
        return [
            *(
                (f"/v1/cases/{{case_id}}{tail}", case)
                for tail in ("", "/actions", "/notes", "/assign", "/audit", "/audit/verify")
            ),
            (
                "/v1/cases/{case_id}/documents/{document_id}",
                {"case_id": ids["case_cn"], "document_id": ids["document_cn"]},
            ),
            ("/v1/priority-lists/{number}", {"number": ids["list"]}),
            *(
                (f"/v1/licences/{{number}}{tail}", {"number": ids["licence"]})
                for tail in ("", "/shipments", "/revoke")
            ),
        ]
    endpoint = {"endpoint_id": ids["endpoint"]}
    return [
        *(
            (f"/v1/webhook-endpoints/{{endpoint_id}}{tail}", endpoint)
            for tail in ("", "/rotate-secret", "/enable", "/test", "/deliveries", "/recover")
        ),
        *(
            (f"/v1/deliveries/{{delivery_id}}{tail}", {"delivery_id": ids["delivery"]})
            for tail in ("", "/redeliver")
        ),
    ]


def _config(world: World, service: str, folder: Path) -> Path:
    kind = "eu_supervisor" if service == "review" else "applicant_a"
    lines = [f'headers = {{ Authorization = "Bearer {world.credentials[kind]}" }}', ""]
    for path, params in _operations(world, service):
        pinned = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in params.items())
        lines += [
            "[[operations]]",
            f"include-path = {json.dumps(path)}",
            f"parameters = {{ {pinned} }}",
            "",
        ]
    config = folder / f"schemathesis-{service}.toml"
    config.write_text("\n".join(lines))
    return config


@pytest.mark.timeout(300)
@pytest.mark.parametrize("service", ["intake", "review", "notify"])
def test_schemathesis_finds_no_server_error_and_no_answer_off_its_schema(
    world: World, service: str, tmp_path: Path
) -> None:
    config = _config(world, service, tmp_path)
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            world.services[service].url + "/openapi.json",
            "--checks",
            CHECKS,
            "--phases",
            "examples,coverage,fuzzing,stateful",
            "--max-examples",
            MAX_EXAMPLES,
            "--seed",
            SEED,
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--request-timeout",
            "20",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=280,
    )
    assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]

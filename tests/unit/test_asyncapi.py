"""The published AsyncAPI document: current, valid against the official schema, no dangling $ref."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from shared.asyncapi import asyncapi_document
from shared.events import EVENT_SCHEMAS

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "docs" / "asyncapi.json"
# The AsyncAPI Initiative's own JSON Schema of the 3.0.0 specification, from the npm package
# @asyncapi/specs that `make install` puts under .cache/ (not committed: it is theirs).
OFFICIAL_SCHEMA = (
    ROOT
    / ".cache"
    / "npm"
    / "node_modules"
    / "@asyncapi"
    / "specs"
    / "schemas"
    / "3.0.0-without-$id.json"
)


def references(node: Any, where: str = "#") -> Iterator[tuple[str, str]]:
    """Every `$ref` in a document, with the JSON pointer of the object that holds it."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield where, value
            else:
                yield from references(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, f"{where}/{index}")


def resolve(document: Any, pointer: str) -> Any:
    """The value a local JSON pointer (`#/a/b`) names in `document`; KeyError if there is none."""
    if not pointer.startswith("#/"):
        raise KeyError(f"{pointer}: not a local reference")
    node = document
    for token in pointer[2:].split("/"):
        token = token.replace("~1", "/").replace("~0", "~")
        node = node[int(token)] if isinstance(node, list) else node[token]
    return node


def unresolved(document: Any) -> list[str]:
    missing = []
    for where, pointer in references(document):
        try:
            resolve(document, pointer)
        except (KeyError, IndexError, ValueError):
            missing.append(f"{where}: {pointer}")
    return missing


def test_the_committed_asyncapi_document_is_current_and_names_every_event() -> None:
    committed = json.loads(COMMITTED.read_text())
    assert committed == json.loads(json.dumps(asyncapi_document())), (
        "docs/asyncapi.json is stale: run `make asyncapi`"
    )
    names = {m["name"] for m in committed["components"]["messages"].values()}
    assert names == set(EVENT_SCHEMAS)


def test_every_reference_in_the_asyncapi_document_resolves() -> None:
    document = json.loads(COMMITTED.read_text())
    assert list(references(document)), "the document has no references: the check would be empty"
    assert unresolved(document) == []


def test_the_reference_check_finds_a_dangling_reference() -> None:
    document = asyncapi_document()
    document["components"]["schemas"].pop("Urgency")
    assert any(m.endswith("#/components/schemas/Urgency") for m in unresolved(document))


def test_the_asyncapi_document_is_valid_against_the_official_3_0_schema() -> None:
    if not OFFICIAL_SCHEMA.exists():
        pytest.fail(f"{OFFICIAL_SCHEMA} is missing: `make install` fetches @asyncapi/specs")
    validator = jsonschema_rs.validator_for(json.loads(OFFICIAL_SCHEMA.read_text()))
    errors = [
        str(e).splitlines()[0] for e in validator.iter_errors(json.loads(COMMITTED.read_text()))
    ]
    assert errors == []
    broken = asyncapi_document()
    broken["operations"]["intake_sends_intake_events"]["action"] = "publish"  # AsyncAPI 2 word
    assert not validator.is_valid(broken), "the validator accepts an invalid document"

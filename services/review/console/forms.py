"""A case page's action forms, built from the protocol's parameters, and read back from a post.

What a page offers are exactly the actions Casework.allowed_actions returns, each with the
fields its protocol parameters need; what is posted is rebuilt into those parameters, which
the engine then validates as it validates the API's. Labels are in the page's language:
the protocol's for actions and codes, the catalogue's for parameters (wording.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from services.review.console.wording import ENGLISH, Words
from services.review.domain.protocol import ParamSpec
from services.review.domain.protocol_file import LabelKind
from services.review.service import Casework
from shared.i18n import N_


@dataclass
class FormField:
    """One input of an action form, named by its dotted path in the action's parameters."""

    name: str
    label: str
    kind: str  # text | textarea | number | date | select | checkbox | checklist | hidden
    required: bool = False
    value: str = ""
    options: list[tuple[str, str]] = field(default_factory=list)
    step: str | None = None
    min: str | None = None
    max: str | None = None
    hint: str = ""


@dataclass
class ActionForm:
    name: str
    label: str
    description: str
    fields: list[FormField]
    tone: str  # primary | danger | neutral
    proposal: bool = False  # four eyes: the form proposes, a second official countersigns


DANGER = {"decline", "refuse", "escalate"}
PRIMARY = {"admit", "approve", "acknowledge", "issue_priority_list", "fast_track"}
# Filled in by the engine when a case goes on a list, never typed by an official.
ENGINE_PARAMS = {"issue_priority_list": {"list_number", "position"}}


# The first option of a required choice: nothing is chosen for the official (a refusal's
# reason defaulted to the first code, military end use, when the form was sent untouched).
CHOOSE = N_("Choose…")
CHOOSE_REASON = N_("Choose a reason")
# Said of an action that needs a second official's countersignature (four eyes).
PROPOSAL_NOTE = N_("A proposal until a second official of your side countersigns it.")


def _scalar_field(
    name: str,
    key: str,
    spec: ParamSpec,
    casework: Casework,
    action: str,
    defaults: Mapping[str, str],
    words: Words,
) -> FormField:
    label = words.param(key)
    value = defaults.get(name, "")
    if spec.type == "enum":
        protocol = casework.protocol
        # A reason code or a licence type by its label; tiers are shown as they are.
        kind: LabelKind | None = (
            "reason" if key == "reason" else "licence_type" if key == "type" else None
        )
        options = [
            (v, protocol.label(kind, v, words.lang, of=action) if kind else v)
            for v in spec.values or ()
        ]
        if not spec.required:
            options.insert(0, ("", "—"))
        else:
            options.insert(0, ("", words.gettext(CHOOSE_REASON if key == "reason" else CHOOSE)))
        return FormField(name, label, "select", spec.required, value, options)
    if spec.type in ("int", "number"):
        return FormField(
            name,
            label,
            "number",
            spec.required,
            value,
            step="1" if spec.type == "int" else "any",
            min=None if spec.min is None else f"{spec.min:g}",
            max=None if spec.max is None else f"{spec.max:g}",
        )
    if spec.type == "date":
        return FormField(name, label, "date", spec.required, value)
    if spec.type == "bool":
        return FormField(name, label, "checkbox", spec.required, value)
    if spec.type == "list" and spec.officials_of_both_sides:
        # A joint meeting's participants: every official of both sides, to tick.
        officials = sorted(casework.directory.officials(), key=lambda o: (o.side, o.name))
        options = [(o.id, f"{o.name} ({o.side} {o.role})") for o in officials]
        return FormField(name, label, "checklist", spec.required, value, options)
    if spec.type == "list":
        hint = words.gettext(N_("comma-separated"))
        return FormField(name, label, "text", spec.required, value, hint=hint)
    long = spec.max_length is None or spec.max_length > 300
    hint = words.gettext(N_("required when the reason is “other”")) if spec.required_when else ""
    return FormField(name, label, "textarea" if long else "text", spec.required, value, hint=hint)


def _fields(
    params: Mapping[str, ParamSpec],
    prefix: str,
    casework: Casework,
    action: str,
    goods: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, str],
    words: Words,
    state: str,
) -> list[FormField]:
    out: list[FormField] = []
    for key, spec in params.items():
        if prefix == "" and key in ENGINE_PARAMS.get(action, set()):
            continue
        if spec.required_in is not None and state not in spec.required_in:
            continue  # asked only in those states (the joint meeting's record)
        name = f"{prefix}{key}"
        if spec.type == "object" and spec.fields:
            nested = _fields(
                spec.fields, name + ".", casework, action, goods, defaults, words, state
            )
            for item in nested:
                # The object's own fields say whose they are ("Meeting: held on").
                if item.kind != "hidden" and item.name.count(".") == name.count(".") + 1:
                    item.label = f"{words.param(key)}: {item.label[:1].lower()}{item.label[1:]}"
            out += nested
        elif (
            spec.type == "list" and spec.items and spec.items.fields and "line" in spec.items.fields
        ):
            # Per-line parameters (approved quantities): one row for each goods line of the case.
            for number, line in enumerate(goods, start=1):
                row = f"{name}.{number}."
                out.append(FormField(row + "line", "", "hidden", value=str(number)))
                for sub, sub_spec in spec.items.fields.items():
                    if sub == "line":
                        continue
                    item = _scalar_field(
                        row + sub, sub, sub_spec, casework, action, defaults, words
                    )
                    label = casework.protocol.label
                    item.label = words.gettext(
                        N_("Line %(line)s: %(element)s %(form)s, %(asked)s kg asked — %(field)s")
                    ) % {
                        "line": number,
                        "element": label("element", str(line.get("element", "")), words.lang),
                        "form": label("form", str(line.get("form", "")), words.lang),
                        "asked": words.number(line.get("quantity_kg")),
                        "field": words.param(sub).lower(),
                    }
                    item.value = item.value or _plain(line.get("quantity_kg"))
                    out.append(item)
        else:
            out.append(_scalar_field(name, key, spec, casework, action, defaults, words))
    return out


def action_forms(
    casework: Casework,
    allowed: Sequence[str],
    view: Mapping[str, Any],
    today: date,
    words: Words = ENGLISH,
) -> list[ActionForm]:
    application = view.get("application") or {}
    goods = [g for g in application.get("goods") or [] if isinstance(g, Mapping)]
    # No licence number: MOFCOM's own number is typed in, never made up from the reference.
    defaults = {
        "accepted_on": today.isoformat(),
        "licence.valid_from": today.isoformat(),
        "licence.type": str(application.get("licence_type") or ""),
    }
    state = str(view.get("state", ""))
    forms = []
    for name in allowed:
        action = casework.protocol.actions[name]
        description = words.gettext(action.description)
        if action.countersign is not None:
            description += " " + words.gettext(PROPOSAL_NOTE)
        forms.append(
            ActionForm(
                name=name,
                label=casework.protocol.label("action", name, words.lang),
                description=description,
                fields=_fields(action.params, "", casework, name, goods, defaults, words, state),
                tone="danger" if name in DANGER else "primary" if name in PRIMARY else "neutral",
                proposal=action.countersign is not None,
            )
        )
    return forms


def _plain(quantity: object) -> str:
    """A number as an input's value (`250`, `12.5`: no `.0`, no exponent, no grouping)."""
    if isinstance(quantity, bool) or not isinstance(quantity, int | float | str):
        return ""
    try:
        return format(Decimal(str(quantity)).normalize(), "f")
    except InvalidOperation:
        return str(quantity)


_INDEX = re.compile(r"^\d+$")


def _convert(spec: ParamSpec, raw: str) -> Any:
    if spec.type == "int" and re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if spec.type == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    if spec.type == "bool":
        return raw in ("on", "true", "1")
    if spec.type == "list":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw  # the engine validates and reports what is wrong


def parse_params(
    params: Mapping[str, ParamSpec], form: Mapping[str, str], prefix: str = ""
) -> dict[str, Any]:
    """Rebuild an action's parameters from dotted form names; empty inputs are left out."""
    out: dict[str, Any] = {}
    for key, spec in params.items():
        name = f"{prefix}{key}"
        if spec.type == "object" and spec.fields:
            nested = parse_params(spec.fields, form, name + ".")
            if nested:
                out[key] = nested
        elif spec.type == "list" and spec.items and spec.items.fields:
            indexes = sorted(
                {
                    int(part)
                    for k in form
                    if k.startswith(name + ".")
                    and _INDEX.match(part := k[len(name) + 1 :].split(".")[0])
                }
            )
            rows = [parse_params(spec.items.fields, form, f"{name}.{i}.") for i in indexes]
            rows = [r for r in rows if len(r) > 1 or (r and "line" not in r)]
            if rows:
                out[key] = rows
        elif spec.type == "list" and spec.officials_of_both_sides:
            # A checklist: one box per official, posted as name.1, name.2, ...
            ticked = [v.strip() for k, v in form.items() if _ticked(k, name) and v.strip()]
            if ticked:
                out[key] = ticked
        else:
            raw = form.get(name, "").strip()
            if raw != "":
                out[key] = _convert(spec, raw)
    return out


def _ticked(posted: str, name: str) -> bool:
    return posted.startswith(name + ".") and bool(_INDEX.match(posted[len(name) + 1 :]))


def checklist_value(form: Mapping[str, str], name: str) -> str:
    """The ids ticked in a checklist as posted, comma-separated (kept on a refused form)."""
    return ",".join(v for k, v in form.items() if _ticked(k, name))

"""The console's words for what the engine names by code or says in English.

Each message here is English, marked for the catalogue (`N_`) and translated where a page
shows it: the names of the actions' parameters and of document kinds, one sentence per kind
of problem, and the patterns of the engine's field messages (protocol_params.py words them
for the API, in English, with their particulars), so that a page in another language says
each refusal in that language. The protocol's own codes are named by its labels instead.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO

from shared.i18n import DEFAULT_LANGUAGE, N_, Formats

# The actions' parameters (protocol.yaml), as a form's fields are labelled.
PARAM_LABELS = {
    "accepted_on": N_("Accepted on"),
    "answer": N_("Answer"),
    "approved_quantity_kg": N_("Approved quantity (kg)"),
    "detail": N_("Detail"),
    "document_ids": N_("Documents"),
    "held_on": N_("Held on"),
    "meeting": N_("Joint meeting"),
    "due_in_working_days": N_("Due in working days"),
    "licence": N_("Licence"),
    "line": N_("Line"),
    "lines": N_("Lines"),
    "list_number": N_("List number"),
    "number": N_("Licence number"),
    "outcome": N_("Outcome"),
    "participants": N_("Participants"),
    "position": N_("Position"),
    "question": N_("Question"),
    "reason": N_("Reason"),
    "tier": N_("Tier"),
    "type": N_("Licence type"),
    "valid_from": N_("Valid from"),
    "valid_until": N_("Valid until"),
    # The forms' own fields (priority lists, notes).
    "max_cases": N_("At most"),
    "case_ids": N_("Cases"),
    "text": N_("Text"),
    "visibility": N_("Visibility"),
    "from": N_("From"),
    "to": N_("To"),
    "body": N_("Form"),
    # A shipment's (the API's; a refusal of one names them).
    "shipped_on": N_("Shipped on"),
    "quantity_kg": N_("Quantity (kg)"),
    "element": N_("Element"),
}

# Officials' roles, as the page header and the history name them.
ROLES = (N_("officer"), N_("supervisor"))

DOCUMENT_KINDS = {
    "end_user_statement": N_("End-user statement"),
    "contract": N_("Contract"),
    "technical_specification": N_("Technical specification"),
    "mofcom_acceptance": N_("MOFCOM acceptance notice"),
    "invoice": N_("Invoice"),
    "answer_attachment": N_("Attachment to an answer"),
    "other": N_("Other document"),
}

# The flags the priority rules raise for the officer (priority_rules.yaml, `flags:`). A flag
# of an adopted draft that is not named here is shown as its code, tidied.
PRIORITY_FLAGS = {
    "military_end_use": N_("Military end use"),
}

# One sentence per kind of problem (its type), for pages in languages other than English;
# English pages show the problem's own detail, which names its particulars.
PROBLEM_SENTENCES = {
    "stale-version": N_("The case has changed since you read it; reload and try again."),
    "conflict": N_("The case has changed since you read it; reload and try again."),
    "action-not-allowed-in-state": N_("This action is not open on the case in its state now."),
    "action-forbidden": N_("Your side and role may not take this action."),
    "forbidden": N_("You may not do this."),
    "licence-limit": N_("The licence does not allow this."),
    "validation-failed": N_("Some fields need attention."),
    "not-found": N_("There is no such page or case, or it is not shown to your side."),
    "too-many-requests": N_("Too many requests; wait a moment and try again."),
}
UNFORESEEN = N_("The request could not be carried out.")
PROBLEM_TITLES = (
    N_("Not found"),
    N_("Forbidden"),
    N_("Conflict"),
    N_("Validation failed"),
    N_("Too many requests"),
    N_("Internal error"),
    N_("Bad request"),
)
# The separator of a field and its message ("Detail: is required"; Chinese has its own).
FIELD_SEPARATOR = N_(": ")
# Between the field messages a refusal lists in its sentence.
LIST_SEPARATOR = N_("; ")
# A proposal's statuses (four eyes), as a refusal names them ("The proposal is withdrawn
# already").
PROPOSAL_STATUSES = (N_("countersigned"), N_("rejected"), N_("withdrawn"), N_("superseded"))
# Details the console words itself: shown translated as they are.
CONSOLE_DETAILS = frozenset(
    {
        N_("The form has expired or did not come from this console."),
        N_("The form lacks the case version; reload the page."),
        N_("A note needs text (up to 10,000 characters) and a visibility."),
        N_("The case has changed since you read it; reload and try again."),
        N_("That language is not offered."),
        # The sign-in page's (console/sign_in.py).
        N_("The sign-in form expired; please try again."),
        N_("That token is not a valid official's token."),
        # The priority rules page's (console/priority.py) and the proposals' (console/case.py).
        N_("The priority rules are the EU side's."),
        N_("Only an EU supervisor may change priority rules."),
        N_("A reason is at most 2,000 characters."),
    }
)
# An action's description in protocol.yaml: `    description: …` under `  <action>:`.
_DESCRIPTION = re.compile(r"^(?P<indent> +)description: (?P<text>.+)$")
_SECTION = re.compile(r"^(\w+):")
_DATE = r"(?P<date>\d{4}-\d{2}-\d{2})"
# The engine's field messages (protocol_params.py, metrics/api.py) and the request models'
# (pydantic), most particular first; a message none matches is shown as it is.
FIELD_MESSAGES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(f"^{pattern}$"), message)
    for pattern, message in (
        (
            r"is required when (?P<field>\w+) is (?P<value>\S+)",
            N_("is required when %(field)s is %(value)s"),
        ),
        (r"is required|Field required", N_("is required")),
        (r"must be at most (?P<n>[\d.,]+) characters", N_("must be at most %(n)s characters")),
        (r"must have at most (?P<n>[\d.,]+) items", N_("must have at most %(n)s items")),
        (
            r"(?:must be at least|Input should be greater than or equal to) (?P<n>-?[\d.,]+)",
            N_("must be at least %(n)s"),
        ),
        (
            r"(?:must be at most|Input should be less than or equal to) (?P<n>-?[\d.,]+)",
            N_("must be at most %(n)s"),
        ),
        (r"must be one of (?P<values>.+)", N_("must be one of %(values)s")),
        (
            rf"must not be before the application's submission \({_DATE}\)",
            N_("must not be before the application was submitted (%(date)s)"),
        ),
        (rf"must not be after today \({_DATE}\)", N_("must not be after today (%(date)s)")),
        (
            rf"must not be after {_DATE}: a shipment is recorded once it left",
            N_("must not be after %(date)s: a shipment is recorded once it left"),
        ),
        (rf"must not be before {_DATE}", N_("must not be before %(date)s")),
        (rf"must not be after {_DATE}", N_("must not be after %(date)s")),
        (
            r"must be from (?P<start>[\d-]+) to (?P<end>[\d-]+)",
            N_("must be from %(start)s to %(end)s"),
        ),
        (
            r"must not exceed the (?P<n>[\d.]+) kg asked for line (?P<line>\d+)",
            N_("must not exceed the %(n)s kg asked for line %(line)s"),
        ),
        (
            rf"a \w+ licence is valid for at most (?P<n>\d+) months: until {_DATE} at the latest",
            N_("this licence type is valid for at most %(n)s months: until %(date)s at the latest"),
        ),
        (r"must not be before valid_from", N_("must not be before the licence's first day")),
        (r"approves no quantity at all; refuse instead", N_("approves nothing; refuse instead")),
        (r"line (?P<line>\d+) is listed twice", N_("line %(line)s is listed twice")),
        (r"the application has no line (?P<line>\d+)", N_("the application has no line %(line)s")),
        (r"must be a number greater than 0", N_("must be a number greater than 0")),
        (r"a shipment needs at least one line", N_("a shipment needs at least one line")),
        (r"names no line of this licence", N_("names no line of this licence")),
        (r"names no element of this licence", N_("names no element of this licence")),
        (r"unknown licence type", N_("is not a licence type of the protocol")),
        (r"must be a date, YYYY-MM-DD|Input should be a valid date.*", N_("must be a date")),
        (r"must not be after `to`", N_("must not be after the end of the period")),
        (r"Input should be a valid integer.*", N_("must be a whole number")),
        (r"Input should be a valid number.*", N_("must be a number")),
        (r"String should have at least 1 character", N_("must not be empty")),
        (
            r"String should have at most (?P<n>[\d.,]+) characters?",
            N_("must be at most %(n)s characters"),
        ),
        (r"Input should be .+", N_("is not one of the values offered")),
    )
)


@dataclass(frozen=True)
class Words:
    """The page's language: its tag, for the protocol's labels, and its gettext."""

    lang: str
    gettext: Callable[[str], str]

    def number(self, value: object) -> str:
        """A quantity as the language writes it (Babel: `1,250.5`; `250`, not `250.0`)."""
        return Formats(self.lang).number(value)

    def flag(self, name: str) -> str:
        known = PRIORITY_FLAGS.get(name)
        return name.replace("_", " ").capitalize() if known is None else self.gettext(known)

    def param(self, name: str) -> str:
        known = PARAM_LABELS.get(name)
        if known is None:
            return name.replace("_", " ").capitalize().replace(" kg", " (kg)")
        return self.gettext(known)


ENGLISH = Words(DEFAULT_LANGUAGE, lambda message: message)


def field_message(
    text: str,
    gettext: Callable[[str], str],
    code_label: Callable[[str, str], str] | None = None,
) -> str:
    """A page's "field: message" line in the page's language (the field by its label, and
    a code the message names by `code_label(field, code)`: "when reason is other")."""
    field, _, message = text.partition(": ")
    name = re.split(r"[.\[\]]", field.rstrip("]"))[-1] if field else field
    label = gettext(PARAM_LABELS[name]) if name in PARAM_LABELS else field
    for pattern, wording in FIELD_MESSAGES:
        if found := pattern.match(message):
            values = found.groupdict()
            named = PARAM_LABELS.get(values.get("field") or "")
            if code_label is not None and values.get("value") is not None:
                values["value"] = code_label(values.get("field") or "", values["value"])
            if named is not None:
                values["field"] = gettext(named)
            return f"{label}{gettext(FIELD_SEPARATOR)}{gettext(wording) % values}"
    return f"{label}{gettext(FIELD_SEPARATOR)}{message}"


def extract_protocol(
    fileobj: IO[bytes], keywords: object, comment_tags: object, options: object
) -> Iterator[tuple[int, str | None, str, list[str]]]:
    """Babel extractor (babel.cfg) of protocol.yaml's action descriptions, which the action
    forms show; its labels are translated in the file itself."""
    section = ""
    lines = fileobj.read().decode("utf-8").splitlines()
    for lineno, line in enumerate(lines, start=1):
        if top := _SECTION.match(line):
            section = top.group(1)
        found = _DESCRIPTION.match(line)
        if section == "actions" and found and found.group("indent") == "    ":
            text = found.group("text").strip()
            if text in (">", ">-"):  # a folded block: its more indented lines, one line
                folded = itertools.takewhile(lambda x: x.startswith("      "), lines[lineno:])
                text = " ".join(part.strip() for part in folded)
            yield lineno, None, text, ["an action's description"]

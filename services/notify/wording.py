"""The applicant's words for the codes an e-mail names: an application's status, marked for
the `mail` catalogue (`make i18n`) and translated where the e-mail is written; a refusal's
reason and a licence's type by the names their event carries (review's protocol labels)."""

from __future__ import annotations

from collections.abc import Callable

from shared.i18n import N_, name_in

# The protocol's states as an applicant reads them (PROTOCOL.md, states).
STATUS_WORDS: dict[str, str] = {
    "submitted": N_("submitted"),
    "eu_screening": N_("EU screening"),
    "awaiting_applicant": N_("waiting for your answer"),
    "queued": N_("queued"),
    "cn_review": N_("MOFCOM review"),
    "joint_review": N_("joint review"),
    "approved": N_("approved"),
    "refused": N_("refused"),
    "not_admitted": N_("not admitted"),
    "withdrawn": N_("withdrawn"),
    "lapsed": N_("lapsed"),
}


def words(value: object) -> str:
    """A code as words (`end_user_missing` → `end user missing`)."""
    return str(value).replace("_", " ")


def status_words(gettext: Callable[[str], str]) -> Callable[[object], str]:
    """A status in the applicant's words, in the language of `gettext`; an unknown one as
    words."""

    def status(value: object) -> str:
        known = STATUS_WORDS.get(str(value))
        return gettext(known) if known is not None else words(value)

    return status


def named(tag: str) -> Callable[[object, object], str]:
    """A code by the names its event carried (`names|named(code)`), in the language `tag`,
    else in English; as words when the event carried none (one emitted before they were)."""

    def name(names: object, code: object) -> str:
        found = name_in(names, tag)
        return found if found is not None else words(code)

    return name

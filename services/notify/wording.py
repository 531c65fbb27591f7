"""The applicant's words for the codes an e-mail names: an application's status, marked for
the `mail` catalogue (`make i18n`) and translated where the e-mail is written; a refusal's
reason and a licence's type by the names their event carries (review's protocol labels:
shared/i18n.py `named`)."""

from __future__ import annotations

from collections.abc import Callable

from shared.i18n import N_

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

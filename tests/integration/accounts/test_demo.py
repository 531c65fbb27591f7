"""`make run`'s demo officials are people a newcomer can sign in as (e-mail, password and
the code of `reechannel totp code EMAIL`), with tokens for programs, and so is the demo
company's admin (the portal: e-mail and password); `reechannel official
token` gives an invited official a token."""

from __future__ import annotations

import json
from pathlib import Path

import pyotp

from reechannel.demo import demo_credentials
from shared.config import CommonSettings
from shared.directory import CredentialKind, Directory
from tests.integration.accounts.support import Kit, address, official
from tests.integration.accounts.test_people_cli import as_json, reechannel
from tests.support import Infra


def test_the_demo_officials_sign_in_with_the_password_and_the_printed_code(
    infra: Infra, k: Kit, tmp_path: Path
) -> None:
    own = Infra(infra.redis_url, infra.database_url, infra.prefix, tmp_path)
    settings = CommonSettings.model_validate(own.env())
    path = demo_credentials(settings)
    officials = json.loads(path.read_text())["officials"]
    assert sorted(officials) == ["cn_officer", "cn_supervisor", "eu_officer", "eu_supervisor"]
    assert path.stat().st_mode & 0o777 == 0o600
    for key, made in officials.items():
        assert k.directory.authenticate(made["token"]).kind == CredentialKind.official, key
        assert made["otpauth_uri"].startswith("otpauth://totp/")
        printed = reechannel(own, "totp", "code", made["email"])
        assert printed.returncode == 0, printed.stderr
        code = printed.stdout.strip()
        assert pyotp.TOTP(made["totp_secret"]).verify(code, valid_window=1)
        opened = k.accounts.sign_in.sign_in(
            made["email"], made["password"], code, address(), kind="official"
        )
        assert opened.person.id == made["id"] and (opened.person.side, opened.person.role) == (
            made["side"],
            made["role"],
        )
    staff = json.loads(path.read_text())["staff"]
    opened = k.accounts.sign_in.sign_in(
        staff["email"], staff["password"], "", address(), kind="staff"
    )
    assert opened.person.id == staff["id"] and opened.person.role == "admin", "the portal's"
    assert opened.person.company_id == json.loads(path.read_text())["applicant"]["company_id"]
    assert demo_credentials(settings) == path, "kept while valid"
    assert json.loads(path.read_text())["officials"] == officials
    unknown = reechannel(own, "totp", "code", "nobody@example.eu")
    assert unknown.returncode == 2 and "not a demo official" in unknown.stderr


def test_an_invited_official_gets_a_token_for_programs(
    infra: Infra, k: Kit, directory: Directory
) -> None:
    _email, person_id, _secret = official(k)
    issued = as_json(infra, "official", "token", person_id, "--expires-in", "12h")
    principal = directory.authenticate(issued["token"])
    assert (principal.subject_id, principal.side, principal.role) == (person_id, "EU", "officer")
    assert issued["expires_at"]
    refused = reechannel(infra, "official", "token", "no-such-official")
    assert refused.returncode == 2 and "no official" in refused.stderr

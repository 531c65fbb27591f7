"""Sign-in: e-mail, password and code; one answer for every wrong one; one argon2id
verification whether or not the e-mail is anyone's; a growing delay per account and per
address kept in Redis, written and read as the services' own Redis users."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from shared.accounts.audit import Action, events
from shared.accounts.errors import SignInDelayed, SignInDisabled, SignInRefused
from shared.accounts.invitations import Answer
from shared.accounts.throttle import ACCOUNT, ADDRESS, SignInThrottle
from shared.accounts.totp import current_code, new_secret
from shared.directory import Directory
from tests.integration.accounts.support import (
    PASSWORD,
    Kit,
    address,
    kit,
    next_code,
    official,
    unique_email,
    wrong_code,
)
from tests.support import Infra


def test_the_right_password_and_code_open_a_session(k: Kit) -> None:
    email, person_id, secret = official(k)
    opened = k.accounts.sign_in.sign_in(f" {email.upper()}", PASSWORD, next_code(secret), "::1")
    assert opened.person.id == person_id and opened.secret.startswith("ree_ss_")
    found = k.accounts.sessions.lookup(opened.secret)
    assert found is not None and found.person_id == person_id
    last = events(k.directory.engine)[-1]
    assert (last.action, last.person_id, last.address) == (Action.signed_in, person_id, "::1")


def test_every_wrong_sign_in_gets_the_same_answer_and_one_verification(k: Kit) -> None:
    email, person_id, secret = official(k)
    attempts = [
        (email, "wrong password here", current_code(secret)),  # wrong password
        (email, PASSWORD, wrong_code(secret)),  # wrong code
        (email, PASSWORD, ""),  # no code
        (unique_email("nobody"), PASSWORD, current_code(secret)),  # no such person
        ("not an address", PASSWORD, current_code(secret)),
    ]
    messages = set()
    for typed, password, code in attempts:
        before = k.hasher.verified
        with pytest.raises(SignInRefused) as refused:
            k.accounts.sign_in.sign_in(typed, password, code, address())
        # The unknown e-mail costs what a known one costs: exactly one argon2id verification.
        assert k.hasher.verified - before == 1, typed
        messages.add(str(refused.value))
    assert messages == {"the e-mail address, password or code is wrong"}
    failed = [e for e in events(k.directory.engine) if e.action == Action.sign_in_failed]
    assert [e.detail for e in failed if e.person_id == person_id][-3:] == [
        "wrong password",
        "wrong code",
        "wrong code",
    ]


def test_a_disabled_person_is_refused_even_with_the_right_password_and_code(k: Kit) -> None:
    email, person_id, secret = official(k)
    k.accounts.people.disable(person_id, by="operator:test")
    with pytest.raises(SignInDisabled):
        k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), address())
    with pytest.raises(SignInRefused):  # who lacks the password learns nothing more
        k.accounts.sign_in.sign_in(email, "wrong password here", current_code(secret), address())
    k.accounts.people.enable(person_id, by="operator:test")
    assert k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), address())


def test_failures_delay_the_account_more_each_time_for_every_replica(
    directory: Directory, service_redis: dict[str, redis.Redis], infra: Infra
) -> None:
    # Two services (two replicas' worth of clients, each its own Redis user) share the count.
    review = kit(directory, service_redis["review"], infra)
    intake = kit(directory, service_redis["intake"], infra)
    email, _person_id, secret = official(review)
    for attempt in range(ACCOUNT.free_failures):
        where = review if attempt % 2 else intake
        with pytest.raises(SignInRefused):
            where.accounts.sign_in.sign_in(email, "wrong password here", "", address())
    with pytest.raises(SignInRefused):  # counted: from now on each failure waits longer
        intake.accounts.sign_in.sign_in(email, "wrong password here", "", address())
    verified = review.hasher.verified
    with pytest.raises(SignInDelayed) as delayed:  # even the right password, elsewhere
        review.accounts.sign_in.sign_in(email, PASSWORD, current_code(secret), address())
    assert delayed.value.retry_after == 1 and delayed.value.status == 429
    assert review.hasher.verified == verified  # no work done while delayed
    throttle = review.accounts.throttle
    waits = []
    for _more in range(3):
        throttle.failed(email, address())
        waits.append(throttle.wait_ms(email, address()))
    first = ACCOUNT.first_delay_ms
    assert first < waits[0] <= 2 * first < waits[1] <= 4 * first < waits[2] <= 8 * first
    # The same e-mail typed unknown would be delayed alike: the key is the e-mail as typed.
    assert throttle.account_key(email) == intake.accounts.throttle.account_key(email)
    assert Action.sign_in_delayed in [
        e.action for e in events(directory.engine) if e.email == email
    ]


def test_failures_from_one_address_delay_every_account_tried_from_it(
    directory: Directory, service_redis: dict[str, redis.Redis], infra: Infra
) -> None:
    k = kit(directory, service_redis["intake"], infra)
    email, _person_id, secret = official(k)
    guesser = address()
    for _attempt in range(ADDRESS.free_failures + 1):
        with pytest.raises(SignInRefused):
            k.accounts.sign_in.sign_in(unique_email("guess"), PASSWORD, "123456", guesser)
    with pytest.raises(SignInDelayed):
        k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), guesser)
    # From another address the person signs in at once.
    assert k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), address())


def test_a_success_clears_the_accounts_count(k: Kit) -> None:
    email, _person_id, secret = official(k)
    where = address()
    for _attempt in range(ACCOUNT.free_failures):
        with pytest.raises(SignInRefused):
            k.accounts.sign_in.sign_in(email, "wrong password here", "", where)
    assert k.accounts.throttle.failures(email) == ACCOUNT.free_failures
    k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), where)
    assert k.accounts.throttle.failures(email) == 0


def test_notifys_redis_user_may_not_touch_the_sign_in_delays(
    service_redis: dict[str, redis.Redis], infra: Infra
) -> None:
    throttle = SignInThrottle(service_redis["notify"], infra.prefix)
    with pytest.raises(redis.exceptions.NoPermissionError):
        throttle.failed(unique_email(), address())
    # And intake's user may not write delays of another deployment's prefix.
    foreign = SignInThrottle(service_redis["intake"], "other_" + infra.prefix)
    with pytest.raises(redis.exceptions.NoPermissionError):
        foreign.failed(unique_email(), address())


def test_a_code_signs_in_once_and_an_older_one_never_after(k: Kit) -> None:
    email, person_id, secret = official(k)
    first = next_code(secret)
    assert k.accounts.sign_in.sign_in(email, PASSWORD, first, address())
    with pytest.raises(SignInRefused):  # the same code again, within its window
        k.accounts.sign_in.sign_in(email, PASSWORD, first, address())
    later = next_code(secret)
    assert k.accounts.sign_in.sign_in(email, PASSWORD, later, address())
    with pytest.raises(SignInRefused):  # nor one of the steps before the last taken
        k.accounts.sign_in.sign_in(email, PASSWORD, first, address())
    failed = [e for e in events(k.directory.engine) if e.person_id == person_id]
    assert [e.detail for e in failed if e.action == Action.sign_in_failed] == [
        "code used before",
        "code used before",
    ]


def test_of_two_sign_ins_with_one_code_at_once_only_one_opens_a_session(k: Kit) -> None:
    email, _person_id, secret = official(k)
    code = next_code(secret)

    def attempt() -> str:
        try:
            return k.accounts.sign_in.sign_in(email, PASSWORD, code, address()).secret
        except SignInRefused:
            return "refused"

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = sorted(pool.map(lambda _i: attempt(), range(2)))
    assert answers[-1] == "refused" and answers[0].startswith("ree_ss_"), answers


def test_the_code_that_set_up_the_factor_does_not_sign_in(k: Kit) -> None:
    email = unique_email()
    link = k.accounts.invitations.invite_official(email, "Eva", "EU", "officer")
    secret = new_secret()
    enrolled = next_code(secret)
    k.accounts.invitations.accept(link.token, Answer(PASSWORD, secret, enrolled))
    with pytest.raises(SignInRefused):
        k.accounts.sign_in.sign_in(email, PASSWORD, enrolled, address())
    assert k.accounts.sign_in.sign_in(email, PASSWORD, next_code(secret), address())


def test_an_enabled_person_can_sign_in_and_a_disabled_one_cannot(k: Kit) -> None:
    _email, person_id, _secret = official(k)
    # An invited official holds no token: being a person who is not disabled is enough.
    assert k.directory.can_sign_in(person_id)
    k.accounts.people.disable(person_id, by="operator:test")
    assert not k.directory.can_sign_in(person_id)

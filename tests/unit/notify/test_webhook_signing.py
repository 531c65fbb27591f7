"""Webhook signatures verify with the reference Standard Webhooks library, not only with ours."""

from __future__ import annotations

import base64
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notify.domain.signing import (
    InvalidWebhookSecret,
    generate_secret,
    headers,
    sign,
    signature_header,
)

BODY = b'{"type":"application.received","data":{"reference":"REC-2026-000123"}}'
MSG_ID = "msg_0123456789abcdef"


def now() -> int:
    # The reference library refuses timestamps more than 5 minutes from its clock.
    return int(time.time())


def test_generated_secret_is_whsec_and_32_random_bytes() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert generate_secret() != secret


def test_signature_matches_the_specifications_published_example() -> None:
    # Example from the Standard Webhooks / Svix documentation.
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_headers_verify_with_the_standardwebhooks_library() -> None:
    secret = generate_secret()
    sent = headers(MSG_ID, now(), BODY, [secret])
    assert Webhook(secret).verify(BODY, sent)["data"]["reference"] == "REC-2026-000123"


def test_headers_carry_id_timestamp_signature_and_json_content_type() -> None:
    timestamp = now()
    sent = headers(MSG_ID, timestamp, BODY, [generate_secret()])
    assert sent["webhook-id"] == MSG_ID
    assert sent["webhook-timestamp"] == str(timestamp)
    assert sent["webhook-signature"].startswith("v1,")
    assert sent["content-type"] == "application/json"


def test_during_rotation_both_secrets_sign_and_either_verifies() -> None:
    old, new = generate_secret(), generate_secret()
    sent = headers(MSG_ID, now(), BODY, [old, new])
    assert len(sent["webhook-signature"].split(" ")) == 2
    Webhook(old).verify(BODY, sent)
    Webhook(new).verify(BODY, sent)


def test_a_secret_not_on_the_endpoint_does_not_verify() -> None:
    sent = headers(MSG_ID, now(), BODY, [generate_secret(), generate_secret()])
    with pytest.raises(WebhookVerificationError):
        Webhook(generate_secret()).verify(BODY, sent)


def test_a_tampered_body_fails_verification() -> None:
    secret = generate_secret()
    sent = headers(MSG_ID, now(), BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace(b"000123", b"000124"), sent)


def test_a_changed_message_id_or_timestamp_fails_verification() -> None:
    secret = generate_secret()
    timestamp = now()
    sent = headers(MSG_ID, timestamp, BODY, [secret])
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**sent, "webhook-id": "msg_other"})
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**sent, "webhook-timestamp": str(timestamp + 1)})


def test_non_ascii_body_verifies() -> None:
    secret = generate_secret()
    body = '{"exporter":"包头磁材","note":"Größe"}'.encode()
    Webhook(secret).verify(body, headers(MSG_ID, now(), body, [secret]))


def test_unpadded_secret_signs_like_the_padded_one() -> None:
    padded = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcde").decode()
    assert padded.endswith("=")
    assert sign(padded.rstrip("="), MSG_ID, 1, BODY) == sign(padded, MSG_ID, 1, BODY)


@pytest.mark.parametrize(
    "secret",
    ["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_", "whsec_not*base64!", "whsec_===="],
)
def test_malformed_secret_is_refused(secret: str) -> None:
    with pytest.raises(InvalidWebhookSecret):
        sign(secret, MSG_ID, 1, BODY)


def test_signing_without_any_secret_is_refused() -> None:
    with pytest.raises(InvalidWebhookSecret):
        signature_header([], MSG_ID, 1, BODY)

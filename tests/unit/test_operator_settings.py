"""The operator tooling finds each service where the service listens (REE_HOST, *_PORT)."""

from __future__ import annotations

import pytest

from reechannel.settings import OperatorSettings
from reechannel.supervisor import service_env
from services.intake.settings import IntakeSettings


@pytest.fixture(autouse=True)
def _no_service_address_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REE_HOST", "INTAKE_PORT", "REVIEW_PORT", "NOTIFY_PORT"):
        monkeypatch.delenv(name, raising=False)


def settings(**env: str) -> OperatorSettings:
    return OperatorSettings.model_validate(env)


def test_the_defaults_are_the_services_own_ports_on_loopback() -> None:
    defaults = settings()
    assert [defaults.url_of(name) for name in ("intake", "review", "notify")] == [
        "http://127.0.0.1:8001",
        "http://127.0.0.1:8002",
        "http://127.0.0.1:8003",
    ]


def test_each_port_setting_moves_its_service_only() -> None:
    moved = settings(INTAKE_PORT="9101", NOTIFY_PORT="9103")
    assert moved.ports() == {"intake": 9101, "review": 8002, "notify": 9103}


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("0.0.0.0", "http://127.0.0.1:8002"),
        ("::", "http://127.0.0.1:8002"),
        ("10.1.2.3", "http://10.1.2.3:8002"),
        ("::1", "http://[::1]:8002"),
    ],
)
def test_a_service_bound_to_every_address_is_reached_on_loopback(host: str, url: str) -> None:
    assert settings(REE_HOST=host).url_of("review") == url


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match="REVIEW_PORT"):
        settings(REVIEW_PORT="70000")


def test_run_tells_intake_where_it_starts_notify_unless_the_operator_says() -> None:
    moved = settings(NOTIFY_PORT="9103")
    intake = service_env("intake", moved, {}, {})
    assert intake["REE_NOTIFY_URL"] == "http://127.0.0.1:9103"
    assert IntakeSettings.model_validate(intake).notify_url == "http://127.0.0.1:9103"
    given = service_env("intake", moved, {"REE_NOTIFY_URL": "http://notify:8003"}, {})
    assert given["REE_NOTIFY_URL"] == "http://notify:8003"
    assert "REE_NOTIFY_URL" not in service_env("review", moved, {}, {})

"""What `reechannel run` prints about the servers it uses never shows a password."""

from __future__ import annotations

import pytest

from reechannel.supervisor import without_password


@pytest.mark.parametrize(
    ("url", "printed"),
    [
        ("redis://:s3cret@cache.internal:6379/0", "redis://:***@cache.internal:6379/0"),
        ("postgresql://ree:p%40ss@db:5432/reechannel", "postgresql://ree:***@db:5432/reechannel"),
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
    ],
)
def test_a_server_url_is_printed_without_its_password(url: str, printed: str) -> None:
    assert without_password(url) == printed

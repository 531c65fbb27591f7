"""A local webhook receiver that verifies each Standard Webhooks signature and notes the time.

Run as `python -m bench.receiver` with BENCH_PORT. Endpoints are `/hook/<name>`; the harness
tells it each endpoint's secret with `POST /_secrets` ({name: "whsec_..."}), and reads what
arrived with `GET /_records?since=N`. A request whose signature does not verify is answered
400 and not recorded, so a recorded webhook is a verified one.
"""

from __future__ import annotations

import base64
import gc
import hashlib
import hmac
import json
import os
import time
from typing import Any

import uvicorn

Scope = dict[str, Any]

secrets: dict[str, bytes] = {}
records: list[dict[str, Any]] = []
rejected = 0


def verify(secret: bytes, headers: dict[str, str], body: bytes) -> bool:
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > 300:
        return False
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers.get("webhook-signature", "").split() if "," in s]
    return any(hmac.compare_digest(expected, sig) for sig in offered)


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Any, status: int, payload: Any = None) -> None:
    body = b"" if payload is None else json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def app(scope: Scope, receive: Any, send: Any) -> None:
    global rejected
    if scope["type"] != "http":
        return
    path: str = scope["path"]
    body = await _body(receive)
    if path.startswith("/hook/"):
        received_at = time.time()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        secret = secrets.get(path.removeprefix("/hook/"))
        if secret is None or not verify(secret, headers, body):
            rejected += 1
            await _answer(send, 400)
            return
        event = json.loads(body)
        records.append(
            {
                "at": received_at,
                "endpoint": path.removeprefix("/hook/"),
                "webhook_id": headers["webhook-id"],
                "type": event.get("type"),
                "application_id": (event.get("data") or {}).get("application_id"),
                "status": (event.get("data") or {}).get("status"),
            }
        )
        await _answer(send, 204)
    elif path == "/_secrets":
        for name, secret in json.loads(body).items():
            secrets[name] = base64.b64decode(secret.removeprefix("whsec_"))
        await _answer(send, 200, {"endpoints": len(secrets)})
    elif path == "/_records":
        query = dict(
            part.split("=", 1) for part in scope["query_string"].decode().split("&") if "=" in part
        )
        since = int(query.get("since", "0"))
        await _answer(send, 200, {"records": records[since:], "rejected": rejected})
    elif path == "/readyz":
        await _answer(send, 200, {"status": "ready"})
    else:
        await _answer(send, 404)


if __name__ == "__main__":
    # What the imports left is never collected; frozen, a full collection does not walk it
    # (tens of milliseconds, during which each webhook arriving would be timed late).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["BENCH_PORT"]),
        log_level="warning",
        access_log=False,
    )

"""Intake's client of notify's company routes, for the portal's webhook and e-mail pages.

Intake never reads notify's tables: the portal asks notify over HTTP, server-side, on behalf
of the signed-in person, forwarding their session in `X-REE-Portal-Session`
(shared/forwarded.py) so that notify applies that person's rights (a member reads, an admin
changes). Notify not answering (refused, timed out, 5xx, starting) is `NotifyUnavailable`,
which the pages show as "webhooks are unavailable right now"; a refusal (4xx) is
`NotifyRefused` with notify's problem details, its field errors by field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from shared.forwarded import HEADER


class NotifyUnavailable(Exception):
    """Notify did not answer, or answered with a server error."""


@dataclass
class NotifyRefused(Exception):
    """Notify refused the request (4xx): its problem details."""

    status: int
    detail: str
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, response: httpx.Response) -> NotifyRefused:
        try:
            problem = response.json()
        except ValueError:
            problem = {}
        if not isinstance(problem, dict):
            problem = {}
        errors: dict[str, str] = {}
        for error in problem.get("errors") or []:
            if isinstance(error, dict):
                name = str(error.get("field") or "").removeprefix("body.") or "form"
                errors.setdefault(name, str(error.get("message") or ""))
        return cls(response.status_code, str(problem.get("detail") or ""), errors)


class NotifyClient:
    """One connection pool to notify for the app's lifetime."""

    def __init__(
        self, base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(
        self,
        session: str,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        """Notify's JSON answer (None for 204), asked for with the person's session."""
        try:
            response = await self._http.request(
                method, path, json=body, params=params, headers={HEADER: session}
            )
        except httpx.HTTPError as exc:
            raise NotifyUnavailable(str(exc)) from exc
        if response.status_code >= 500:
            raise NotifyUnavailable(f"notify answered {response.status_code}")
        if response.status_code >= 400:
            raise NotifyRefused.of(response)
        return None if response.status_code == 204 else response.json()

    async def event_types(self, session: str) -> dict[str, Any]:
        """What an endpoint may subscribe to and a person may be e-mailed about."""
        return await self.call(session, "GET", "/v1/event-types")

    # --- webhook endpoints ------------------------------------------------------------------

    async def endpoints(self, session: str, cursor: str | None = None) -> dict[str, Any]:
        params = {"cursor": cursor} if cursor else None
        return await self.call(session, "GET", "/v1/webhook-endpoints", params=params)

    async def endpoint(self, session: str, endpoint_id: str) -> dict[str, Any]:
        return await self.call(session, "GET", f"/v1/webhook-endpoints/{endpoint_id}")

    async def create_endpoint(
        self, session: str, url: str, event_types: list[str], description: str | None
    ) -> dict[str, Any]:
        body = {"url": url, "event_types": event_types, "description": description}
        return await self.call(session, "POST", "/v1/webhook-endpoints", body)

    async def endpoint_action(self, session: str, endpoint_id: str, action: str) -> Any:
        """rotate-secret, enable or test."""
        return await self.call(session, "POST", f"/v1/webhook-endpoints/{endpoint_id}/{action}")

    async def recover(self, session: str, endpoint_id: str, since: str) -> dict[str, Any]:
        path = f"/v1/webhook-endpoints/{endpoint_id}/recover"
        return await self.call(session, "POST", path, {"since": since})

    async def delete_endpoint(self, session: str, endpoint_id: str) -> None:
        await self.call(session, "DELETE", f"/v1/webhook-endpoints/{endpoint_id}")

    async def deliveries(
        self, session: str, endpoint_id: str, cursor: str | None = None
    ) -> dict[str, Any]:
        params = {"cursor": cursor} if cursor else None
        path = f"/v1/webhook-endpoints/{endpoint_id}/deliveries"
        return await self.call(session, "GET", path, params=params)

    async def redeliver(self, session: str, delivery_id: str) -> dict[str, Any]:
        return await self.call(session, "POST", f"/v1/deliveries/{delivery_id}/redeliver")

    # --- a person's e-mail --------------------------------------------------------------------

    async def email_choice(self, session: str, person_id: str) -> dict[str, Any]:
        return await self.call(session, "GET", f"/v1/people/{person_id}/notifications")

    async def choose_email(
        self, session: str, person_id: str, event_types: list[str]
    ) -> dict[str, Any]:
        body = {"event_types": event_types}
        return await self.call(session, "PUT", f"/v1/people/{person_id}/notifications", body)

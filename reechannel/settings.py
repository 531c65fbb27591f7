"""What the operator tooling reads besides the common settings: where each service listens."""

from __future__ import annotations

from pydantic import Field

from shared.config import CommonSettings

# Addresses a service may bind to that a client cannot connect to: it reaches them on loopback.
ANY_ADDRESS = ("0.0.0.0", "::", "")


class OperatorSettings(CommonSettings):
    """The services' host and ports as each service reads them (the same variables, defaults).

    `reechannel run` passes each port on to its service explicitly, so what it prints is what
    the service binds; `reechannel simulate` finds the services by the same settings.
    """

    host: str = Field("127.0.0.1", alias="REE_HOST")
    intake_port: int = Field(8001, ge=1, le=65535, alias="INTAKE_PORT")
    review_port: int = Field(8002, ge=1, le=65535, alias="REVIEW_PORT")
    notify_port: int = Field(8003, ge=1, le=65535, alias="NOTIFY_PORT")

    def ports(self) -> dict[str, int]:
        return {"intake": self.intake_port, "review": self.review_port, "notify": self.notify_port}

    def port_of(self, service: str) -> int:
        return self.ports()[service]

    def url_of(self, service: str) -> str:
        """The base URL a client on this machine reaches the service at."""
        host = "127.0.0.1" if self.host in ANY_ADDRESS else self.host
        if ":" in host:  # an IPv6 literal
            host = f"[{host}]"
        return f"http://{host}:{self.port_of(service)}"

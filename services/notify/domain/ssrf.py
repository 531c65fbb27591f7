"""Which URLs may receive webhooks: HTTPS to public addresses only, unless an operator allows more.

Call `check_url` when an endpoint is registered and again before every delivery: a name
that resolved to a public address yesterday can resolve to 127.0.0.1 today (DNS
rebinding). The worker should then connect to one of `ResolvedTarget.addresses` (with
the original host for SNI and the Host header) rather than resolve the name a second
time, and must not follow redirects.

Decisions:
- A URL is refused if ANY address of its host is unsafe: the HTTP client may pick any.
- What is unsafe is two explicit tables, after the IANA special-purpose registries, not
  `ipaddress.is_global` alone (which differs between Python versions, and on 3.11 passes
  reserved ::/8 space that a NAT46/SIIT translator maps onto private IPv4); `is_global`
  stays as a backstop behind them. IPv4-mapped, NAT64 well-known-prefix and 6to4 forms
  are judged by the IPv4 address they reach.
- An operator allow-list of networks (e.g. 127.0.0.0/8 and ::1/128 for tests) exempts
  addresses inside it, on every port or only on the ports an entry names
  (`127.0.0.0/8:9000-9099`, the demo's): an allowance for one local receiver must not
  open every local service to deliveries whose log shows what answered.
- Plain `http` is refused unless the policy's `allow_http` flag is set, and even then
  only when every address is inside the allow-list: a public receiver can always use
  TLS, and signatures do not hide the applicant's data from the network.
- Non-default ports are accepted on public addresses (receivers run on 8443 and the
  like); there the address rules, not the port, keep deliveries off internal services.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

MAX_URL_LENGTH = 2048
DEFAULT_PORTS = {"https": 443, "http": 80}


class UnsafeWebhookURL(ValueError):
    """A URL that may not receive webhooks; `reason` is written for the endpoint's owner.

    `address` is the refused address, for the service's own logs only: telling an
    applicant what an internal name resolves to would help map the internal network.
    """

    def __init__(self, reason: str, address: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.address = address


class UnresolvableWebhookHost(UnsafeWebhookURL):
    """The host has no address now: refused at registration, a retryable failure at delivery."""


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for host:port, in its order, without repeats."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _net(cidr: str) -> IPNetwork:
    return ipaddress.ip_network(cidr)


# Every range that is not public unicast space, named so that a refusal says why: the IANA
# special-purpose address registries for IPv4 and IPv6, checked explicitly rather than
# through `is_global` alone, whose table differs between Python versions (3.11 misses the
# reserved space in ::/8 that a NAT46/SIIT translator maps onto private IPv4). Order
# matters where ranges nest: the first match names the reason.
_BLOCKED_IPV4: tuple[tuple[IPNetwork, str], ...] = (
    (_net("0.0.0.0/8"), "an unspecified ('this network') address"),
    (_net("10.0.0.0/8"), "a private address"),
    (_net("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_net("127.0.0.0/8"), "a loopback address"),
    (_net("169.254.0.0/16"), "a link-local address (this includes cloud metadata services)"),
    (_net("172.16.0.0/12"), "a private address"),
    (_net("192.0.0.0/24"), "an IETF protocol assignment address"),
    (_net("192.0.2.0/24"), "a documentation address"),
    (_net("192.88.99.0/24"), "a 6to4 relay anycast address"),
    (_net("192.168.0.0/16"), "a private address"),
    (_net("198.18.0.0/15"), "a benchmarking address"),
    (_net("198.51.100.0/24"), "a documentation address"),
    (_net("203.0.113.0/24"), "a documentation address"),
    (_net("224.0.0.0/4"), "a multicast address"),
    (_net("255.255.255.255/32"), "a reserved (limited broadcast) address"),
    (_net("240.0.0.0/4"), "a reserved address"),
)
_BLOCKED_IPV6: tuple[tuple[IPNetwork, str], ...] = (
    (_net("::/128"), "an unspecified address"),
    (_net("::1/128"), "a loopback address"),
    # IPv4-mapped addresses (::ffff:0:0/96) never get here: they are judged by their IPv4.
    (_net("::/96"), "an IPv4-compatible (deprecated) address"),
    (_net("::ffff:0:0:0/96"), "an IPv4-translated (SIIT) address"),
    # Inside ::/8 too, like the NAT64 well-known prefix (64:ff9b::/96, judged apart below).
    (_net("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_net("::/8"), "a reserved address (::/8, which translators map onto IPv4)"),
    (_net("100::/64"), "a discard-only address"),
    (_net("2001::/32"), "a Teredo tunnel address"),
    (_net("2001:db8::/32"), "a documentation address"),
    (_net("2001::/23"), "an IETF protocol assignment address"),
    (_net("3fff::/20"), "a documentation address"),
    (_net("fc00::/7"), "a unique-local (private) address"),
    (_net("fe80::/10"), "a link-local address"),
    (_net("fec0::/10"), "a site-local address"),
    (_net("ff00::/8"), "a multicast address"),
)
# The parts of 2001::/23 that the IANA registry marks globally reachable: anycast services
# (PCP, TURN, DNS-SD SRP), AMT, AS112 and the ORCHIDv2 and DRIP identifiers.
_GLOBAL_IN_BLOCKED: tuple[IPNetwork, ...] = (
    _net("2001:1::1/128"),
    _net("2001:1::2/128"),
    _net("2001:1::3/128"),
    _net("2001:3::/32"),
    _net("2001:4:112::/48"),
    _net("2001:20::/28"),
    _net("2001:30::/28"),
)
# The only IPv6 space allocated for global unicast; anything outside it (1::/16, 4000::/2,
# ...) is reserved by the IETF and never a real receiver.
_GLOBAL_UNICAST_V6 = _net("2000::/3")
_IPV4_MAPPED = _net("::ffff:0:0/96")
# The NAT64 well-known prefix reaches the embedded IPv4 address through the translator, and
# RFC 6052 allows it only for global IPv4: it is judged as that IPv4 address, so a public
# one passes (an IPv6-only receiver network may need it) and a private one is refused.
_NAT64 = _net("64:ff9b::/96")
_SIX_TO_FOUR = _net("2002::/16")
# A host whose last label is a number is an IPv4 address in disguise ("2130706433",
# "0x7f.1", "127.1"): resolvers read those forms differently, so only dotted quads pass.
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


@dataclass(frozen=True)
class AllowedNetwork:
    """One entry of the operator's allowance: a network, on every port or on a range of them.

    Written `CIDR` (every port, as before) or `CIDR:PORT` / `CIDR:FIRST-LAST`, the prefix
    length then required so that an IPv6 address's colons cannot be read as a port
    (`::1/128:9000-9099`). A port range keeps an allowance for a receiver on loopback from
    reaching every other local service on it (F17: the delivery log would show what answered).
    """

    network: IPNetwork
    # Inclusive; None allows every port.
    ports: tuple[int, int] | None = None

    @classmethod
    def parse(cls, entry: str) -> AllowedNetwork:
        """An entry as the setting writes it; a malformed one raises ValueError naming it."""
        text = entry.strip()
        ports: tuple[int, int] | None = None
        if "/" in text:
            address, length_and_ports = text.split("/", 1)
            length, has_ports, port_text = length_and_ports.partition(":")
            text = f"{address}/{length}"
            if has_ports:
                ports = _port_range(port_text, entry)
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise ValueError(
                f"not a network in the webhook allow-list: {entry!r} "
                "(entries are CIDR or CIDR:PORT[-PORT], e.g. 127.0.0.1/32:9000-9099)"
            ) from exc
        return cls(network, ports)

    def contains(self, address: IPAddress) -> bool:
        return address in self.network

    def admits(self, port: int) -> bool:
        return self.ports is None or self.ports[0] <= port <= self.ports[1]


def _port_range(text: str, entry: str) -> tuple[int, int]:
    first, dash, last = text.partition("-")
    if (
        first.isascii()
        and first.isdigit()
        and (not dash or (last.isascii() and last.isdigit()))
        and len(first) <= 5
        and len(last) <= 5
    ):
        low, high = int(first), int(last) if dash else int(first)
        if 1 <= low <= high <= 65535:
            return low, high
    raise ValueError(
        f"not a port or port range (1-65535, first-last) in the webhook allow-list: {entry!r}"
    )


@dataclass(frozen=True)
class WebhookURLPolicy:
    """The operator's exceptions to the default rules, and how to resolve host names."""

    allowed_networks: tuple[AllowedNetwork, ...] = ()
    allow_http: bool = False
    resolver: Resolver = field(default=resolve_host, compare=False)

    @classmethod
    def from_settings(
        cls,
        allowed_networks: Iterable[str] = (),
        allow_http: bool = False,
        resolver: Resolver = resolve_host,
    ) -> WebhookURLPolicy:
        """A policy from allowance entries (`CIDR` or `CIDR:PORT[-PORT]`); a malformed one
        raises ValueError naming it."""
        networks = tuple(AllowedNetwork.parse(entry) for entry in allowed_networks)
        return cls(allowed_networks=networks, allow_http=allow_http, resolver=resolver)

    def allows(self, address: IPAddress, port: int) -> bool:
        """Whether the operator allowed this address on this port (an IPv4-mapped address
        by its IPv4 form)."""
        return any(allowed.admits(port) for allowed in self._containing(address))

    def in_allowed_network(self, address: IPAddress) -> bool:
        """Whether the address is in an allowed network on some port (to say why a URL on
        another port is refused)."""
        return any(True for _allowed in self._containing(address))

    def _containing(self, address: IPAddress) -> Iterator[AllowedNetwork]:
        candidates = {address, _unwrap_mapped(address)}
        for allowed in self.allowed_networks:
            if any(allowed.contains(candidate) for candidate in candidates):
                yield allowed


@dataclass(frozen=True)
class ResolvedTarget:
    """A URL that passed the policy, with the addresses it was checked against."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...]


def _unwrap_mapped(address: IPAddress) -> IPAddress:
    # ::ffff:10.0.0.1 reaches 10.0.0.1 on a dual-stack socket, so judge the IPv4 address.
    if isinstance(address, ipaddress.IPv6Address) and address in _IPV4_MAPPED:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def blocked_reason(address: IPAddress) -> str | None:
    """Why an address may not receive webhooks by default, or None if it is public."""
    address = _unwrap_mapped(address)
    if isinstance(address, ipaddress.IPv4Address):
        return _listed_reason(address, _BLOCKED_IPV4) or _not_global(address)
    embedded: ipaddress.IPv4Address | None = None
    if address in _NAT64:
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    elif address in _SIX_TO_FOUR:
        embedded = address.sixtofour
    if embedded is not None:
        # These prefixes reach the embedded IPv4 address, so it alone decides.
        inner = blocked_reason(embedded)
        return None if inner is None else f"an address embedding {embedded}, which is {inner}"
    if any(address in network for network in _GLOBAL_IN_BLOCKED):
        return None
    reason = _listed_reason(address, _BLOCKED_IPV6)
    if reason is None and address not in _GLOBAL_UNICAST_V6:
        reason = "a reserved address outside the global unicast range (2000::/3)"
    return reason or _not_global(address)


def _listed_reason(address: IPAddress, table: tuple[tuple[IPNetwork, str], ...]) -> str | None:
    for network, reason in table:
        if address in network:
            return reason
    return None


def _not_global(address: IPAddress) -> str | None:
    # A backstop behind the tables: a range Python learns of first is refused as well.
    return None if address.is_global else "an address that is not globally routable"


def _parse(url: str) -> SplitResult:
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeWebhookURL(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    # urlsplit silently drops tabs and newlines, and HTTP clients treat backslashes
    # differently from it; refusing them keeps "the host we checked" the host contacted.
    if any(ch <= " " or ch == "\x7f" or ch == "\\" for ch in url):
        raise UnsafeWebhookURL("The URL contains spaces, control characters or backslashes.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- urlsplit validates the port only when it is read
    except ValueError as exc:
        raise UnsafeWebhookURL(f"The URL cannot be parsed: {exc}.") from exc
    return parts


def _normalise_host(hostname: str) -> str:
    host = hostname.lower().rstrip(".")
    if not host:
        raise UnsafeWebhookURL("The URL has no host.")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise UnsafeWebhookURL(f"The host {hostname!r} is not a valid domain name.") from exc


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _NUMERIC_LABEL.match(host.rsplit(".", 1)[-1]):
        raise UnsafeWebhookURL(
            f"The host {host!r} looks like an IP address in a non-standard form; "
            "write IPv4 addresses as four decimal numbers, or use a domain name."
        )
    return None


def _resolve(host: str, port: int, resolver: Resolver) -> list[IPAddress]:
    try:
        found = resolver(host, port)
    except OSError as exc:
        raise UnresolvableWebhookHost(f"The host {host!r} could not be resolved: {exc}.") from exc
    if not found:
        raise UnresolvableWebhookHost(f"The host {host!r} has no address.")
    addresses = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError as exc:
            raise UnresolvableWebhookHost(
                f"The host {host!r} resolved to something that is not an IP address: {text!r}."
            ) from exc
    return addresses


def check_url(url: str, policy: WebhookURLPolicy) -> ResolvedTarget:
    """The target of a webhook URL if the policy lets it receive deliveries.

    Raises UnsafeWebhookURL (or its subclass UnresolvableWebhookHost) with a message
    meant for the person who registered the URL.
    """
    parts = _parse(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise UnsafeWebhookURL("The URL must start with https://.")
    if scheme == "http" and not policy.allow_http:
        raise UnsafeWebhookURL("The URL must use https://; plain http is not allowed.")
    # Credentials in a URL end up in logs and delivery records, and "user@host" is a
    # classic trick to make a URL look like it points somewhere else.
    if "@" in parts.netloc:
        raise UnsafeWebhookURL("The URL must not contain a user name or password.")
    if parts.hostname is None:
        raise UnsafeWebhookURL("The URL has no host.")
    host = _normalise_host(parts.hostname)
    port = parts.port if parts.port is not None else DEFAULT_PORTS[scheme]
    if port == 0:
        raise UnsafeWebhookURL("The URL's port must be between 1 and 65535.")

    literal = _literal_address(host)
    addresses = [literal] if literal is not None else _resolve(host, port, policy.resolver)
    for address in addresses:
        if policy.allows(address, port):
            continue
        reason = blocked_reason(address)
        if reason is not None:
            what = "The URL points" if literal else f"The URL's host {host} resolves"
            if policy.in_allowed_network(address):
                reason += f", and the operator allows it on other ports than {port} only"
            raise UnsafeWebhookURL(
                f"{what} to {reason}. Webhooks can only be sent to public internet addresses.",
                address=str(address),
            )
    if scheme == "http" and not all(policy.allows(address, port) for address in addresses):
        raise UnsafeWebhookURL(
            "The URL must use https://; plain http is allowed only to networks the "
            "operator has allowed."
        )
    return ResolvedTarget(
        url=url,
        scheme=scheme,
        host=host,
        port=port,
        addresses=tuple(str(address) for address in addresses),
    )

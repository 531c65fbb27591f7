"""Webhook target URLs: public HTTPS only, unless the operator allows a network."""

from __future__ import annotations

import ipaddress
import itertools
import re
import socket
from collections.abc import Callable

import pytest

from reechannel.settings import OperatorSettings
from reechannel.supervisor import EMBEDDED_REDIS_PORT, NOTIFY_LOCAL_DEFAULTS
from services.notify.domain.ssrf import (
    UnresolvableWebhookHost,
    UnsafeWebhookURL,
    WebhookURLPolicy,
    check_url,
)
from services.notify.settings import NotifySettings

PUBLIC_V4 = "93.184.215.14"
PUBLIC_V6 = "2606:2800:21f:cb07:6820:80da:af6b:8b2c"


def resolver(*addresses: str) -> Callable[[str, int], list[str]]:
    """A fake DNS that answers every name with the given addresses and records the questions."""

    def resolve(host: str, port: int) -> list[str]:
        resolve.asked.append((host, port))  # type: ignore[attr-defined]
        return list(addresses)

    resolve.asked = []  # type: ignore[attr-defined]
    return resolve


def failing_resolver(host: str, port: int) -> list[str]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


def no_dns(host: str, port: int) -> list[str]:
    raise AssertionError("an IP literal must not be looked up")


DEFAULT = WebhookURLPolicy(resolver=no_dns)
TEST_AND_DEMO = WebhookURLPolicy.from_settings(
    ["127.0.0.0/8", "::1/128"], allow_http=True, resolver=no_dns
)


def test_public_https_url_is_accepted_with_its_addresses() -> None:
    dns = resolver(PUBLIC_V4, PUBLIC_V6)
    target = check_url("https://Example.COM./hooks?x=1", WebhookURLPolicy(resolver=dns))
    assert target.host == "example.com"
    assert target.port == 443
    assert target.scheme == "https"
    assert target.addresses == (PUBLIC_V4, PUBLIC_V6)
    assert target.url == "https://Example.COM./hooks?x=1"
    assert dns.asked == [("example.com", 443)]  # type: ignore[attr-defined]


def test_non_default_port_is_accepted_and_resolved_with_it() -> None:
    dns = resolver(PUBLIC_V4)
    target = check_url("https://hooks.example.com:8443/in", WebhookURLPolicy(resolver=dns))
    assert target.port == 8443
    assert dns.asked == [("hooks.example.com", 8443)]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://127.0.0.1/", "https"),
        ("https://127.0.0.1/", "loopback"),
        ("https://10.0.0.1/", "private"),
        ("https://172.16.5.4/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://[::1]/", "loopback"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://100.64.1.1/", "carrier-grade NAT"),
        ("https://[fd00::1]/", "unique-local"),
        ("https://[fe80::1]/", "link-local"),
        ("https://[fec0::1]/", "site-local"),
        ("https://[::ffff:10.0.0.1]/", "private"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://[::]/", "unspecified"),
        ("https://224.0.0.1/", "multicast"),
        ("https://[ff02::1]/", "multicast"),
        ("https://255.255.255.255/", "reserved"),
        ("https://240.0.0.1/", "reserved"),
        ("https://192.0.2.10/", "documentation"),
        ("https://[2001:db8::1]/", "documentation"),
        ("https://[2002:a00:1::1]/", "embedding 10.0.0.1"),
        ("https://[2002:7f00:1::1]/", "embedding 127.0.0.1"),
        ("https://[64:ff9b::a9fe:a9fe]/", "embedding 169.254.169.254"),
        ("https://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/", "Teredo"),
        ("https://[::10.0.0.1]/", "IPv4-compatible"),
    ],
)
def test_non_public_addresses_are_refused_by_default(url: str, says: str) -> None:
    with pytest.raises(UnsafeWebhookURL) as refused:
        check_url(url, DEFAULT)
    assert says in refused.value.reason


def test_http_to_a_public_address_is_refused_by_default() -> None:
    with pytest.raises(UnsafeWebhookURL, match="https"):
        check_url("http://10.0.0.1/", DEFAULT)
    with pytest.raises(UnsafeWebhookURL, match="https"):
        check_url("http://example.com/", WebhookURLPolicy(resolver=resolver(PUBLIC_V4)))


def test_a_name_resolving_to_a_private_address_is_refused_without_revealing_the_address() -> None:
    policy = WebhookURLPolicy(resolver=resolver("192.168.1.5"))
    with pytest.raises(UnsafeWebhookURL) as refused:
        check_url("https://intranet.example.com/hook", policy)
    assert refused.value.reason == (
        "The URL's host intranet.example.com resolves to a private address. "
        "Webhooks can only be sent to public internet addresses."
    )
    assert refused.value.address == "192.168.1.5"


def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    policy = WebhookURLPolicy(resolver=resolver(PUBLIC_V4, "10.1.2.3"))
    with pytest.raises(UnsafeWebhookURL) as refused:
        check_url("https://mixed.example.com/", policy)
    assert refused.value.address == "10.1.2.3"


def test_a_name_that_rebinds_to_loopback_is_refused_at_delivery_time() -> None:
    answers = [[PUBLIC_V4], ["127.0.0.1"]]

    def rebinding(host: str, port: int) -> list[str]:
        return answers.pop(0)

    policy = WebhookURLPolicy(resolver=rebinding)
    check_url("https://rebind.example.com/", policy)  # at registration
    with pytest.raises(UnsafeWebhookURL, match="loopback"):
        check_url("https://rebind.example.com/", policy)  # at delivery


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080/hook", "https://127.0.0.1/", "http://[::1]:9000/", "https://[::1]/"],
)
def test_loopback_is_accepted_when_the_operator_allows_it(url: str) -> None:
    assert check_url(url, TEST_AND_DEMO).addresses


@pytest.mark.parametrize(
    ("url", "network"),
    [
        ("https://10.0.0.1/", "10.0.0.0/8"),
        ("https://169.254.169.254/", "169.254.0.0/16"),
        ("https://100.64.1.1/", "100.64.0.0/10"),
        ("https://[fd00::1]/", "fd00::/8"),
        ("https://[::ffff:10.0.0.1]/", "10.0.0.0/8"),
    ],
)
def test_each_refused_network_is_accepted_when_allowed(url: str, network: str) -> None:
    with pytest.raises(UnsafeWebhookURL):
        check_url(url, DEFAULT)
    allowed = WebhookURLPolicy.from_settings([network], resolver=no_dns)
    assert check_url(url, allowed).addresses


def test_a_name_resolving_to_an_allowed_network_is_accepted() -> None:
    policy = WebhookURLPolicy.from_settings(["192.168.0.0/16"], resolver=resolver("192.168.1.5"))
    assert check_url("https://printer.lan/", policy).addresses == ("192.168.1.5",)


def test_allowing_loopback_does_not_allow_other_private_networks() -> None:
    with pytest.raises(UnsafeWebhookURL, match="private"):
        check_url("http://10.0.0.1/", TEST_AND_DEMO)


def test_allowed_network_still_needs_allow_http_for_plain_http() -> None:
    policy = WebhookURLPolicy.from_settings(["127.0.0.0/8"], resolver=no_dns)
    assert check_url("https://127.0.0.1/", policy)
    with pytest.raises(UnsafeWebhookURL, match="https"):
        check_url("http://127.0.0.1/", policy)


def test_allow_http_permits_plain_http_only_to_allowed_networks() -> None:
    policy = WebhookURLPolicy.from_settings(
        ["127.0.0.0/8"], allow_http=True, resolver=resolver(PUBLIC_V4)
    )
    with pytest.raises(UnsafeWebhookURL, match="operator has allowed"):
        check_url("http://example.com/", policy)
    assert check_url("https://example.com/", policy)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/", "https"),
        ("file:///etc/passwd", "https"),
        ("gopher://example.com/", "https"),
        ("https://user:pass@example.com/", "user name or password"),
        ("https://example.com@127.0.0.1/", "user name or password"),
        ("https:///nohost", "no host"),
        ("https://example.com:99999/", "cannot be parsed"),
        ("https://example.com:0/", "port"),
        ("https://exa mple.com/", "spaces"),
        ("https://example.com\t.evil/", "control characters"),
        ("https://example.com\\@127.0.0.1/", "backslashes"),
        ("https://2130706433/", "non-standard form"),
        ("https://0x7f.1/", "non-standard form"),
        ("https://127.1/", "non-standard form"),
        ("https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_malformed_or_deceptive_urls_are_refused(url: str, says: str) -> None:
    policy = WebhookURLPolicy(resolver=resolver(PUBLIC_V4))
    with pytest.raises(UnsafeWebhookURL) as refused:
        check_url(url, policy)
    assert says in str(refused.value)


def test_unresolvable_host_is_refused_as_such() -> None:
    with pytest.raises(UnresolvableWebhookHost, match="could not be resolved"):
        check_url("https://no-such-host.example/", WebhookURLPolicy(resolver=failing_resolver))
    with pytest.raises(UnresolvableWebhookHost, match="no address"):
        check_url("https://empty.example/", WebhookURLPolicy(resolver=resolver()))


def test_international_domain_names_are_resolved_in_their_ascii_form() -> None:
    dns = resolver(PUBLIC_V4)
    target = check_url("https://bücher.example/", WebhookURLPolicy(resolver=dns))
    assert target.host == "xn--bcher-kva.example"


def test_a_malformed_allow_list_entry_is_named() -> None:
    with pytest.raises(ValueError, match="not-a-network"):
        WebhookURLPolicy.from_settings(["127.0.0.0/8", "not-a-network"])


def test_default_resolver_uses_the_system_resolver_for_localhost() -> None:
    policy = WebhookURLPolicy.from_settings(["127.0.0.0/8", "::1/128"])
    assert check_url("https://localhost/", policy).addresses
    with pytest.raises(UnsafeWebhookURL, match="loopback"):
        check_url("https://localhost/", WebhookURLPolicy())


# F7: the IANA special-purpose ranges, each refused from its first to its last address,
# whatever `ipaddress.is_global` of this Python says about it.
REFUSED_RANGES = [
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
    ("255.255.255.255/32", "broadcast"),
    ("::/8", "reserved"),
    ("::ffff:0:0:0/96", "SIIT"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/32", "Teredo"),
    ("2001:2::/48", "IETF protocol assignment"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
]


def literal(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"https://[{address}]/" if address.version == 6 else f"https://{address}/"


@pytest.mark.parametrize(("cidr", "says"), REFUSED_RANGES)
def test_each_special_purpose_range_is_refused_from_its_first_to_its_last_address(
    cidr: str, says: str
) -> None:
    network = ipaddress.ip_network(cidr)
    first = network[0]
    if cidr == "::/8":
        # It starts with ::/96 (unspecified, loopback, IPv4-compatible), which have reasons
        # of their own; its own first address is the one after them.
        first = ipaddress.ip_address("::1:0:0")
    edges = [first, network[-1]]
    for address in edges:
        with pytest.raises(UnsafeWebhookURL) as refused:
            check_url(literal(address), DEFAULT)
        assert says in refused.value.reason, address


@pytest.mark.parametrize(
    ("url", "says"),
    [
        # The red-team's examples: reserved ::/8 space a NAT46/SIIT translator maps to IPv4.
        ("https://[::ffff:0:a9fe:a9fe]/", "SIIT"),
        ("https://[::ffff:0:7f00:1]/", "SIIT"),
        ("https://[::2:a9fe:a9fe]/", "reserved"),
        ("https://[1::1]/", "reserved"),
        ("https://[::8.8.8.8]/", "IPv4-compatible"),
        ("https://[::ffff:0.0.0.0]/", "unspecified"),
        ("https://[::ffff:255.255.255.255]/", "broadcast"),
        ("https://[::ffff:169.254.169.254]/", "link-local"),
        ("https://[64:ff9b::7f00:1]/", "embedding 127.0.0.1"),
        ("https://[64:ff9b::c0a8:1]/", "embedding 192.168.0.1"),
        ("https://[2002:c0a8:101::1]/", "embedding 192.168.1.1"),
        ("https://[2002::1]/", "embedding 0.0.0.0"),
        # Outside 2000::/3 nothing is allocated for global unicast.
        ("https://[100:0:0:1::1]/", "global unicast"),
        ("https://[4000::1]/", "global unicast"),
        ("https://[fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]/", "global unicast"),
        ("https://[fe00::1]/", "global unicast"),
        # 2001::/23 is refused except the parts IANA marks globally reachable.
        ("https://[2001:1::4]/", "IETF protocol assignment"),
        ("https://[2001:4:113::1]/", "IETF protocol assignment"),
        ("https://[2001:10::1]/", "IETF protocol assignment"),
        ("https://[2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff]/", "IETF protocol assignment"),
    ],
)
def test_reserved_and_embedding_ipv6_forms_are_refused(url: str, says: str) -> None:
    with pytest.raises(UnsafeWebhookURL) as refused:
        check_url(url, DEFAULT)
    assert says in refused.value.reason


@pytest.mark.parametrize(
    "address",
    [
        # Just outside the refused IPv4 ranges.
        "1.0.0.0",
        "9.255.255.255",
        "11.0.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "126.255.255.255",
        "128.0.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "172.15.255.255",
        "172.32.0.0",
        "192.0.1.0",
        "192.0.3.0",
        "192.88.98.255",
        "192.88.100.0",
        "192.167.255.255",
        "192.169.0.0",
        "198.17.255.255",
        "198.20.0.0",
        "198.51.99.255",
        "198.51.101.0",
        "203.0.112.255",
        "203.0.114.0",
        "223.255.255.255",
        # IPv6 global unicast next to refused ranges, and the globally reachable parts of
        # 2001::/23.
        "2000::",
        "2001:200::",
        "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:db9::",
        "2003::",
        "3fff:1000::",
        "3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        "2001:1::1",
        "2001:1::2",
        "2001:1::3",
        "2001:3::1",
        "2001:4:112::1",
        "2001:20::1",
        "2001:3f:ffff:ffff:ffff:ffff:ffff:ffff",
        # Forms that reach a public IPv4 address: judged as that address.
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_next_to_the_refused_ranges_are_accepted(address: str) -> None:
    url = literal(ipaddress.ip_address(address))
    assert check_url(url, DEFAULT).addresses == (str(ipaddress.ip_address(address)),)


def test_a_name_resolving_to_reserved_ipv6_space_is_refused() -> None:
    policy = WebhookURLPolicy(resolver=resolver(PUBLIC_V6, "::ffff:0:a9fe:a9fe"))
    with pytest.raises(UnsafeWebhookURL, match="SIIT") as refused:
        check_url("https://translated.example.com/", policy)
    assert refused.value.address == "::ffff:0:a9fe:a9fe"


@pytest.mark.parametrize(
    ("url", "network"),
    [
        ("https://[::2:a9fe:a9fe]/", "::/8"),
        ("https://[64:ff9b:1::a00:1]/", "64:ff9b:1::/48"),
        ("https://[fd12::1]/", "fc00::/7"),
    ],
)
def test_the_operator_allowance_still_exempts_reserved_ipv6_networks(
    url: str, network: str
) -> None:
    with pytest.raises(UnsafeWebhookURL):
        check_url(url, DEFAULT)
    assert check_url(url, WebhookURLPolicy.from_settings([network], resolver=no_dns)).addresses


# F17: an allowance may name ports, so a demo's receiver does not open every local service.
PORTS_ONLY = WebhookURLPolicy.from_settings(
    ["127.0.0.0/8:9000-9099", "::1/128:9000-9099", "10.1.2.3/32:8443"],
    allow_http=True,
    resolver=no_dns,
)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "http://127.0.0.1:9099/hook",
        "http://127.9.9.9:9050/",
        "http://[::1]:9050/",
        "https://[::1]:9000/",
        "http://[::ffff:127.0.0.1]:9001/",
        "https://10.1.2.3:8443/",
    ],
)
def test_an_allowance_with_ports_accepts_those_ports(url: str) -> None:
    assert check_url(url, PORTS_ONLY).addresses


@pytest.mark.parametrize(
    ("url", "port"),
    [
        ("http://127.0.0.1:8999/", 8999),
        ("http://127.0.0.1:9100/", 9100),
        ("http://127.0.0.1:8002/", 8002),
        ("https://127.0.0.1/", 443),
        ("http://127.0.0.1/", 80),
        ("http://[::1]:8003/", 8003),
        ("http://[::ffff:127.0.0.1]:6390/", 6390),
        ("https://10.1.2.3:8444/", 8444),
    ],
)
def test_an_allowance_with_ports_refuses_every_other_port(url: str, port: int) -> None:
    with pytest.raises(UnsafeWebhookURL) as refused:
        check_url(url, PORTS_ONLY)
    assert f"other ports than {port} only" in refused.value.reason


def test_a_name_is_accepted_on_an_allowed_port_only_if_each_address_is() -> None:
    both = resolver("127.0.0.1", "::1")
    policy = WebhookURLPolicy.from_settings(["127.0.0.0/8:9000", "::1/128:9000"], resolver=both)
    assert check_url("https://localhost:9000/", policy).addresses == ("127.0.0.1", "::1")
    half = WebhookURLPolicy.from_settings(["127.0.0.0/8:9000", "::1/128:9001"], resolver=both)
    with pytest.raises(UnsafeWebhookURL, match="loopback"):
        check_url("https://localhost:9000/", half)


def test_ports_of_an_allowance_do_not_restrict_public_addresses() -> None:
    policy = WebhookURLPolicy.from_settings(["127.0.0.0/8:9000"], resolver=resolver(PUBLIC_V4))
    assert check_url("https://hooks.example.com:8443/", policy).port == 8443


def test_a_plain_network_entry_still_allows_every_port() -> None:
    policy = WebhookURLPolicy.from_settings(["127.0.0.0/8"], allow_http=True, resolver=no_dns)
    for port in (1, 80, 8002, 65535):
        assert check_url(f"http://127.0.0.1:{port}/", policy).port == port


@pytest.mark.parametrize(
    "entry",
    [
        "127.0.0.0/8:0",
        "127.0.0.0/8:65536",
        "127.0.0.0/8:9100-9000",
        "127.0.0.0/8:",
        "127.0.0.0/8:-9000",
        "127.0.0.0/8:9000-",
        "127.0.0.0/8:http",
        "127.0.0.1:9000",
    ],
)
def test_a_malformed_port_in_the_allow_list_is_named(entry: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(entry))):
        WebhookURLPolicy.from_settings([entry])


def test_the_demo_allowance_reaches_the_test_receivers_ports_and_not_the_services() -> None:
    policy = NotifySettings(**NOTIFY_LOCAL_DEFAULTS).url_policy()
    for url in ["http://127.0.0.1:9000/hooks", "http://localhost:9099/hooks"]:
        assert check_url(url, policy).addresses
    services = [*OperatorSettings().ports().values(), EMBEDDED_REDIS_PORT]
    for host, port in itertools.product(["127.0.0.1", "[::1]"], services):
        with pytest.raises(UnsafeWebhookURL, match="loopback"):
            check_url(f"http://{host}:{port}/", policy)

"""Where a webhook may be sent: the URL's form, and the addresses its host may reach.

Registering a URL and delivering to it are both requests the API makes on a Party's say-so, so
they are checked here against making requests into the network the API runs in (SSRF), and a
delivery connects to the very address that was checked (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from resolvers.writes import validation as v

MAX_URL = 2000
# IANA's special-purpose ranges that are not globally reachable, whatever this Python's
# `is_global` says of them (3.11's list misses several, such as 192.0.0.8): CGNAT, IETF protocol
# assignments, documentation, benchmarking, reserved and ORCHID/ISP-internal IPv6 space.
_NOT_GLOBAL = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",
        "100.64.0.0/10",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "240.0.0.0/4",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "3fff::/20",
        "5f00::/16",
        "64:ff9b:1::/48",
        "fc00::/7",
    )
)
# NAT64 well-known prefix: the low 32 bits are an IPv4 address the gateway will connect to.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})


class UrlSettings(Protocol):
    """The part of `settings.Settings` the URL checks read (a Protocol so tests may pass a
    subset)."""

    @property
    def allow_insecure_webhooks(self) -> bool: ...
    @property
    def block_private_webhooks(self) -> bool: ...


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether an address is one the server may connect to when private ones are blocked.

    `is_global` is an allow-list, but it counts multicast as global, so the other kinds are
    refused explicitly too. IPv6 forms that embed an IPv4 address (mapped, 6to4, NAT64) are
    judged by that address, or `[::ffff:10.0.0.1]` would walk straight past the check.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return _public(address.ipv4_mapped)
        if address.sixtofour is not None and not _public(address.sixtofour):
            return False
        if address in _NAT64:
            return _public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(address in network for network in _NOT_GLOBAL if network.version == address.version):
        return False
    return address.is_global and not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    address = _ip(host)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address is not None and address.is_loopback


async def _resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Every address `host` resolves to (an IP literal is its own answer, with no lookup)."""
    literal = _ip(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found = []
    for info in infos:
        # sockaddr[0] may carry an IPv6 zone ("fe80::1%eth0"); the zone does not change the kind.
        parsed = _ip(str(info[4][0]).split("%", 1)[0])
        if parsed is not None:
            found.append(parsed)
    return found


class AddressRefused(Exception):
    """The server may not connect to a host now; `resolved` says whether its name resolved."""

    def __init__(self, host: str, *, resolved: bool) -> None:
        super().__init__(f"{host}: {'not public' if resolved else 'not resolved'}")
        self.resolved = resolved


async def public_address(
    host: str, port: int = 443
) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The address the server may connect to for `host` now; `AddressRefused` if it may not.

    Checked at registration and again before every delivery, because a name that resolved to a
    public address when registered can later be pointed at an internal one (DNS rebinding).
    Every address must be public; the first is the one to connect to (see `pinned`), so the
    connection goes where the check looked. A name that does not resolve is refused, since
    nothing can be said about it.
    """
    try:
        addresses = await _resolve(host, port)
    except (OSError, UnicodeError):
        addresses = []
    if not addresses:
        raise AddressRefused(host, resolved=False)
    if not all(_public(address) for address in addresses):
        raise AddressRefused(host, resolved=True)
    return addresses[0]


@dataclass(frozen=True)
class Pinned:
    """A request aimed at a checked address while naming the host it is for."""

    url: str
    headers: dict[str, str]
    extensions: dict[str, str]


def pinned(url: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> Pinned:
    """`url` with its host replaced by `address`, so the HTTP client cannot resolve the name
    again and be answered differently. The receiver still sees its own name: in the `Host`
    header and, over TLS, in SNI, and the certificate is verified against that name."""
    parts = urlsplit(url)
    netloc = f"[{address}]" if address.version == 6 else str(address)
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    host = parts.hostname or ""
    extensions = {"sni_hostname": host} if parts.scheme == "https" and _ip(host) is None else {}
    return Pinned(
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, "")),
        {"Host": parts.netloc},
        extensions,
    )


def _url_failure(message: str) -> v.MutationFailure:
    return v.invalid("url", message)


async def check_url(url: str, settings: UrlSettings) -> str:
    """The normalised form of a webhook URL, or a validation failure saying what is wrong.

    https only, so bodies and signatures are not readable on the way; plain http just for
    loopback when insecure webhooks are allowed (local development). No credentials in the URL,
    since it is stored and shown back. With `block_private_webhooks` (production), a URL that
    reaches a private, loopback, link-local or otherwise internal address is refused, so the
    API cannot be used to make requests into the network it runs in (SSRF).
    """
    candidate = url.strip()
    if not candidate:
        raise _url_failure("url is required.")
    if len(candidate) > MAX_URL:
        raise _url_failure(f"url must be at most {MAX_URL} characters.")
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in candidate):
        raise _url_failure("url must not contain spaces or control characters.")
    try:
        parts = urlsplit(candidate)
        port = parts.port
    except ValueError:
        raise _url_failure("url is not a valid URL.") from None
    scheme = parts.scheme.lower()
    if scheme not in {"https", "http"}:
        raise _url_failure("url must use https.")
    host = parts.hostname
    if not host:
        raise _url_failure("url must name a host.")
    if "@" in parts.netloc or parts.username is not None or parts.password is not None:
        raise _url_failure("url must not contain a user name or password.")
    if ":" in host and _ip(host) is None:
        raise _url_failure("url has an invalid IPv6 address.")
    if scheme == "http" and not (settings.allow_insecure_webhooks and _loopback(host)):
        if settings.allow_insecure_webhooks:
            raise _url_failure("url must use https (plain http is allowed only for loopback).")
        raise _url_failure("url must use https.")
    if settings.block_private_webhooks:
        try:
            await public_address(host, port or (443 if scheme == "https" else 80))
        except AddressRefused as refused:
            if not refused.resolved:
                raise _url_failure("url's host could not be resolved.") from None
            raise _url_failure(
                "url must reach a public address; private, loopback and link-local addresses "
                "are refused."
            ) from None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    # The fragment is dropped: it is never sent to a server.
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))

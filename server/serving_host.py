"""Whether a request was sent to this server by a name it answers to.

The development sign-in hands a session to anyone who asks, which is harmless on a developer's
own machine only while it is the developer's browser asking. A page on `evil.example` whose
name an attacker then points at 127.0.0.1 (DNS rebinding) is same-origin with itself, so its
`Origin` matches its `Host` and the sign-in form's origin check alone would let it in. What it
cannot change is the name: its requests carry `Host: evil.example`. So the development sign-in
answers only to `CPL_PUBLIC_URL`'s host when that is set, else to the loopback names and the
address the connection reached, with this server's port.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
DEFAULT_PORTS = {"http": 80, "https": 443}


def hosts_served(connection: HTTPConnection, public_url: str | None) -> frozenset[str]:
    """The `Host` values (lower case) this server answers to, as `host` and `host:port`."""
    if public_url:
        site = urlsplit(public_url)
        names = [site.hostname or ""]
        port = site.port or DEFAULT_PORTS.get(site.scheme)
        default = port == DEFAULT_PORTS.get(site.scheme)
    else:
        address, port = connection.scope.get("server") or ("", None)
        names = [*LOOPBACK_NAMES, f"[{address}]" if ":" in address else address]
        default = port in (None, DEFAULT_PORTS.get(connection.url.scheme))
    names = [name if ":" not in name or name.startswith("[") else f"[{name}]" for name in names]
    served = {f"{name}:{port}" for name in names if name and port is not None}
    if default:
        served.update(name for name in names if name)
    return frozenset(name.lower() for name in served)


def served_here(connection: HTTPConnection, public_url: str | None) -> bool:
    """The request's `Host` names this server. (Its `Origin` must then be this same site:
    `SignIn.same_origin` compares it with the address built from the `Host` checked here.)"""
    return connection.headers.get("host", "").lower() in hosts_served(connection, public_url)

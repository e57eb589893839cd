"""A real OpenID Connect provider for the sign-in tests: oidc-provider-mock (an authlib
authorization server) on a free loopback port, in a thread, with clients that must register."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import oidc_provider_mock
import werkzeug.serving

from tests.live import free_port


@dataclass(frozen=True)
class Provider:
    issuer: str

    def register_client(self, redirect_uri: str) -> tuple[str, str]:
        """A confidential client allowed to come back to `redirect_uri` only."""
        response = httpx.post(
            f"{self.issuer}/oauth2/clients", json={"redirect_uris": [redirect_uri]}
        )
        response.raise_for_status()
        body = response.json()
        return body["client_id"], body["client_secret"]

    def set_user(self, sub: str, **claims: object) -> None:
        """The claims the provider puts in this user's ID token."""
        httpx.put(f"{self.issuer}/users/{sub}", json=claims).raise_for_status()


@contextlib.contextmanager
def oidc_provider() -> Iterator[Provider]:
    port = free_port()
    app = oidc_provider_mock.app(require_client_registration=True, require_nonce=True)
    server = werkzeug.serving.make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield Provider(issuer=f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()

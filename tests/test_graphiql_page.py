"""GraphiQL is served whole by this server: every file from this origin, checked against what
the npm registry published, under a Content-Security-Policy that allows this origin only."""

from __future__ import annotations

import base64
import hashlib
import re

from server.graphiql import ASSETS, vendored_manifest


def sri(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


async def test_the_page_loads_only_files_of_this_origin_with_their_integrity(client):
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "http" not in policy and "unsafe" not in policy and "*" not in policy
    references = re.findall(r'(?:src|href)="([^"]+)"', response.text)
    loaded = [r for r in references if r != "data:,"]
    assert loaded and all(r.startswith("/graphiql/") for r in loaded), response.text
    for reference, integrity in re.findall(
        r'(?:src|href)="([^"]+)" integrity="([^"]+)"', response.text
    ):
        asset = await client.get(reference)
        assert asset.status_code == 200, reference
        assert sri(asset.content) == integrity
        assert asset.headers["x-content-type-options"] == "nosniff"
    assert len(re.findall(r"integrity=", response.text)) == len(loaded)


async def test_vendored_files_are_what_the_registry_published(client):
    manifest = vendored_manifest()
    assert {"graphiql.min.js", "react.production.min.js", "graphql-ws.min.js"} <= set(manifest)
    for name, entry in manifest.items():
        data = (ASSETS / "vendor" / name).read_bytes()
        assert sri(data) == entry["integrity"], name
    licences = (ASSETS / "vendor" / "THIRD-PARTY-LICENSES.txt").read_text(encoding="utf-8")
    for entry in manifest.values():
        assert f"{entry['package']}@{entry['version']}" in licences


async def test_nothing_else_is_served_from_the_asset_folder(client):
    for name in ("manifest.json", "package.json", "..%2Fgraphiql.py", "nope.js"):
        assert (await client.get(f"/graphiql/{name}")).status_code == 404


async def test_an_unchanged_asset_answers_304(client):
    first = await client.get("/graphiql/cpl-graphiql.js")
    again = await client.get(
        "/graphiql/cpl-graphiql.js", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304 and again.content == b""

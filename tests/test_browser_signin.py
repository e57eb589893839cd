"""An SSC analyst in a real browser (Debian's chromium, driven by playwright-core from npm): sign
in at a real OIDC provider, GraphiQL with no request to any other origin, the SSC-only values
for the SSC and nulls for a Supplier, a reload and a shared link keeping the query, a
subscription over graphql-transport-ws, and logout. `make browser` installs what it needs; where
it is missing the test is skipped saying so, and under CI=true it fails instead.

The screenshots it takes go to $CPL_SCREENSHOT_DIR (default: the test's temporary folder);
`make screenshots` writes them to docs/ for the README.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.app import create_app, create_services
from tests.harness import fresh_database
from tests.live import free_port, serve
from tests.oidc_provider import oidc_provider

HERE = Path(__file__).resolve().parent / "browser"
CHROMIUM = Path(os.environ.get("CPL_CHROMIUM", "/usr/bin/chromium"))
QUERY = """query SscDevices {
  devices(first: 3) {
    nodes { modelName zigbeeStackVersion zigbeeChipsetVendor }
  }
}"""
MUTATION = (
    "mutation Change($version: String) { setZigbeeInformation(input: "
    '{deviceId: "device:1", zigbeeStackVersion: $version, reason: "browser test"}) '
    "{ __typename } }"
)


def missing_parts() -> list[str]:
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (HERE / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules/playwright-core")
    if not CHROMIUM.exists():
        missing.append(str(CHROMIUM))
    return missing


@pytest.fixture(scope="module")
def browser_parts() -> None:
    missing = missing_parts()
    if not missing:
        return
    reason = f"browser test needs {', '.join(missing)}: run `make browser` to install them"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(reason)
    pytest.skip(reason)


async def run_browser(config: dict) -> dict:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(HERE / "signin.mjs"),
        cwd=HERE,
        env={**os.environ, "CPL_BROWSER_CONFIG": json.dumps(config)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), 180)
    except TimeoutError:
        process.kill()
        raise
    assert process.returncode == 0, err.decode()
    return json.loads(out)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return Path(os.environ.get("CPL_SCREENSHOT_DIR") or tmp_path / "screenshots").resolve()


@dataclass
class Exploration:
    site: str
    issuer: str | None
    report: dict
    log: list[tuple[str, str, list[str]]]  # the SSC access log: (sub, operation, fields)


async def explore(
    settings, token, template: str, tmp_path: Path, screenshots: Path, provider=None
) -> Exploration:
    """Serve a fresh copy of the demo database (signing in at `provider`, or with the
    development issuer) and send the browser through it."""
    async with fresh_database(tmp_path, template=template) as url:
        port = free_port()
        site = f"http://127.0.0.1:{port}"
        own = replace(settings, database_url=url)
        people = {"sscSub": "SSC", "supplierSub": "LARGE_SUPPLIER"}
        if provider is not None:
            client_id, secret = await asyncio.to_thread(
                provider.register_client, f"{site}/auth/callback"
            )
            await asyncio.to_thread(
                provider.set_user, "analyst", party_category="SSC", party_id="SSC-PANEL"
            )
            await asyncio.to_thread(
                provider.set_user, "buyer", party_category="LARGE_SUPPLIER", party_id="SUP-1"
            )
            own = replace(
                own,
                oidc_issuer=provider.issuer,
                oidc_client_id=client_id,
                oidc_client_secret=secret,
                public_url=site,
                session_secret="browser test secret",
            )
            people = {"sscSub": "analyst", "supplierSub": "buyer"}
        services = create_services(own)
        async with serve(create_app(own, services), port=port):
            report = await run_browser(
                {
                    "site": site,
                    "issuer": provider.issuer if provider is not None else None,
                    "executablePath": str(CHROMIUM),
                    "userDataDir": str(tmp_path / "profile"),
                    "screenshotDir": str(screenshots),
                    **people,
                    "query": QUERY,
                    "mutation": MUTATION,
                    "writerToken": token("SECAS"),
                }
            )
            async with services.engine.connect() as connection:
                logged = await connection.exec_driver_sql(
                    "SELECT actor_sub, operation_name, fields FROM ssc_access"
                )
                log = [
                    (sub, name, json.loads(fields) if isinstance(fields, str) else fields)
                    for sub, name, fields in logged.all()
                ]
        await services.engine.dispose()
    return Exploration(site, own.oidc_issuer, report, log)


@pytest.mark.parametrize("sign_in", ["identity provider", "development issuer"])
async def test_an_analyst_signs_in_and_explores_in_a_real_browser(
    browser_parts, settings, token, template, tmp_path, screenshots, sign_in
):
    if sign_in == "identity provider":
        with oidc_provider() as provider:
            seen = await explore(settings, token, template, tmp_path, screenshots, provider)
        analyst, party = "analyst", "SSC-PANEL"
    else:
        seen = await explore(settings, token, template, tmp_path, screenshots)
        analyst, party = "dev-ssc", "DEV-SSC"
    site, report, log = seen.site, seen.report, seen.log
    port = urlsplit(site).port

    assert "error" not in report, f"{report.get('error')} at {report.get('failedAt')}"
    steps = report["steps"]
    assert "Not signed in" in steps["signedOutText"]

    # Everything the GraphiQL page asked for came from this server; nothing left the machine
    # but the mock provider's own stylesheet, which the route blocked.
    # (Navigations are the sign-in's own redirects to the provider and back.)
    ours = [
        r for r in report["requests"] if (r["from"] or "").startswith(site) and not r["navigation"]
    ]
    elsewhere = [r for r in ours if not r["url"].startswith((site, "data:"))]
    assert ours and elsewhere == []
    assert [b for b in report["blocked"] if (b["from"] or "").startswith(site)] == []
    assert all(
        urlsplit(b["from"] or "").port == urlsplit(seen.issuer).port for b in report["blocked"]
    )
    # No CSP refusal and no script error on our pages (the signed-out page's 401 from
    # /auth/session is the console's only complaint, and an expected one).
    errors = [
        e
        for e in report["consoleErrors"]
        if e["at"].startswith(site) and "status of 401 (Unauthorized)" not in e["text"]
    ]
    assert errors == [], errors

    # The SSC analyst: schema loaded at once, the SSC-only values shown.
    assert steps["sscIntrospectionStatus"] == 200
    assert f"Signed in as {party}, SSC" in steps["sscWho"]
    assert "Query" in steps["docExplorer"]
    assert "sscAccessLog" in steps["completion"]
    ssc = json.loads(steps["sscResponse"])
    nodes = ssc["data"]["devices"]["nodes"]
    assert nodes and all(n["zigbeeStackVersion"] and n["zigbeeChipsetVendor"] for n in nodes)

    # The query lives in the address: a reload and a shared link open it.
    assert "query=" in steps["address"]
    assert steps["afterReload"].startswith("query Kept")
    assert steps["sharedLink"] == "query Shared { viewer { partyId } }"

    # The subscription ran over graphql-transport-ws, signed in by cookie and csrfToken.
    assert steps["mutationStatuses"] and set(steps["mutationStatuses"]) == {200}
    sent = [json.loads(f["sent"]) for f in steps["socketFrames"] if "sent" in f]
    assert sent[0]["type"] == "connection_init" and sent[0]["payload"]["csrfToken"]
    change = json.loads(steps["subscriptionResponse"])["data"]["cplChanges"]
    assert change["kind"] == "ZIGBEE_INFORMATION_CHANGED"
    assert change["device"]["zigbeeStackVersion"].startswith("R23.")

    # Nothing sensitive stays in the browser: the cookie is HttpOnly and Lax, and storage holds
    # neither the CSRF token nor an SSC-only value.
    cookie = next(c for c in steps["cookies"] if c["name"] == f"cpl-pathways-{port}-session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    csrf = sent[0]["payload"]["csrfToken"]
    for kept in (steps["localStorage"], steps["sessionStorage"]):
        assert csrf not in kept and "Bearer" not in kept
        assert not any(n["zigbeeChipsetVendor"] in kept for n in nodes)

    # Logout ended the session.
    assert steps["afterLogout"] == 401
    assert not any(c["name"] == cookie["name"] for c in steps["cookiesAfterLogout"])

    # The Supplier reads null where the SSC reads values, with a FORBIDDEN error.
    assert steps["supplierIntrospectionStatus"] == 200
    supplier = json.loads(steps["supplierResponse"])
    supplier_nodes = supplier["data"]["devices"]["nodes"]
    assert supplier_nodes and all(n["zigbeeStackVersion"] is None for n in supplier_nodes)
    assert {e["extensions"]["code"] for e in supplier["errors"]} == {"FORBIDDEN"}

    # The SSC access log holds the analyst's reads, and none of the Supplier's.
    both = ["Device.zigbeeChipsetVendor", "Device.zigbeeStackVersion"]
    assert (analyst, "SscDevices", both) in log
    assert (analyst, "Watch", ["Device.zigbeeStackVersion"]) in log
    assert {sub for sub, _, _ in log} == {analyst}
    assert (screenshots / "graphiql-ssc.png").stat().st_size > 10_000

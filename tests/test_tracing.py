"""OpenTelemetry, optional: spans per request and per operation sent to a real OTLP/HTTP
receiver on loopback when OTEL_EXPORTER_OTLP_ENDPOINT is set; nothing imported when unset."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import quote

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.harness import fresh_database
from tests.live import ROOT, cli, cli_env, cli_server, eventually, serve

SSC_QUERY = (
    'query Vendors { devices(filter: { zigbeeChipsetVendor: "Lumen Silicon" }) { nodes { id } } }'
)

WITHOUT_ENDPOINT = """
import asyncio, sys, httpx
from server import cli
from config.settings import load_settings
app = cli.worker_app()
token = cli._token(load_settings(), "SSC")
async def main():
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/graphql", json={"query": "query Q { viewer { partyId } }"},
                                   headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, answer.text
asyncio.run(main())
print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
"""


def test_without_an_endpoint_nothing_of_opentelemetry_is_imported(tmp_path):
    env = cli_env(f"sqlite+aiosqlite:///{tmp_path / 'cpl.db'}", tmp_path / "data")
    env = {k: v for k, v in env.items() if not k.startswith("OTEL_")}
    migrated = subprocess.run(
        [sys.executable, "-m", "server.cli", "migrate"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
    )
    assert migrated.returncode == 0, migrated.stderr
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_ENDPOINT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


async def test_with_an_endpoint_a_request_and_its_operation_are_two_spans(tmp_path):
    received: list[bytes] = []

    async def traces(request: Request) -> Response:
        received.append(await request.body())
        return Response(b"", media_type="application/x-protobuf")

    receiver = Starlette(routes=[Route("/v1/traces", traces, methods=["POST"])])
    async with serve(receiver) as collector, fresh_database(tmp_path) as url:
        env = cli_env(
            url,
            tmp_path / "data",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{collector}",
            OTEL_BSP_SCHEDULE_DELAY="100",
        )
        await cli(env, "seed", "--demo")
        ssc = await cli(env, "token", "SSC")
        async with (
            cli_server(env, tmp_path / "server.log") as server,
            httpx.AsyncClient(base_url=server.base) as client,
        ):
            answer = await client.get(
                f"/graphql?query={quote(SSC_QUERY)}",
                headers={"Authorization": f"Bearer {ssc}", "X-Request-ID": "traced-1"},
            )
            assert answer.status_code == 200
        # The server has stopped: its last spans were exported as it shut down.
        await eventually(lambda: received, "the spans exported")
    spans = []
    for body in received:
        export = ExportTraceServiceRequest.FromString(body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)

    def attributes(span) -> dict:
        return {a.key: a.value.string_value or a.value.int_value for a in span.attributes}

    (request,) = [s for s in spans if attributes(s).get("cpl.request_id") == "traced-1"]
    in_trace = [s for s in spans if s.trace_id == request.trace_id]
    assert sorted(s.name for s in in_trace) == ["GET /graphql", "query Vendors"]  # no field spans
    (operation,) = [s for s in in_trace if s.name == "query Vendors"]
    assert operation.parent_span_id == request.span_id
    assert attributes(request) | {"http.response.status_code": 200} == attributes(request)
    assert attributes(request)["url.path"] == "/graphql"
    assert attributes(request)["cpl.party_category"] == "SSC"
    everything = b"".join(received)
    assert b"Lumen Silicon" not in everything and ssc.encode() not in everything

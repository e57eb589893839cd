"""The compiled execution (`schema/execution.py`) answers exactly as graphql-core does: the same
response bytes as the HTTP layer sends them (data, errors and their paths, in the same order),
the same SSC reads noted, the same operation counted; so does a query answered again by its
plan (`schema/direct.py`), and where the plan gives up the answer is the ordinary one; and
graphql-core's own field machinery runs a fixed number of times a page, whatever its rows."""

from __future__ import annotations

import json
from enum import Enum
from functools import partial
from typing import Any

import pytest
import strawberry
from graphql.execution.executor import Executor
from strawberry.http import process_result
from strawberry.schema import schema_converter

import schema.completions
import schema.direct
import schema.types
import server.app
from config import metrics
from config.settings import load_settings
from permissions.principal import PartyCategory
from schema.build import build_schema
from schema.execution import CompilingExecutor
from schema.extensions import extensions
from schema.lean import lean_resolvers
from server.app import create_app
from server.graphql_view import GraphQLApp
from tests.harness import asgi_client, count_calls, noted_reads

TYPICAL = (
    "{ devices(first: 50) { totalCount nodes { id modelName zigbeeBand manufacturer { name } "
    "latestFirmware { version } firmware { version status upgradesTo { to { version } status } }"
    " zigbeeStackVersion zigbeeChipsetVendor } } }"
)
EVERYTHING = """
query Everything($firmware: Boolean!, $skipBand: Boolean = false) {
  viewer { partyId partyCategory manufacturerIdentifier }
  devices(first: 6) {
    edges { cursor node { ...Device } }
    pageInfo { hasNextPage endCursor }
    again: nodes { __typename model: modelName band: zigbeeBand @skip(if: $skipBand) }
  }
}
fragment Device on Device {
  __typename id deviceType modelIdentifier modelName hardwareVersion
  zigbeeBand zigbeeStackVersion zigbeeChipsetVendor
  manufacturer { __typename id name manufacturerIdentifier devices { id modelName } }
  latestFirmware { id version status addedToCplOn withdrawnOn imageHash }
  firmware @include(if: $firmware) {
    id version status addedToCplOn withdrawnOn imageHash device { id }
    upgradesTo { id status notes revision publishedAt publishedBy from { version } to { version } }
    upgradesFrom { id from { version device { modelName } } }
  }
}
"""
HISTORY = (
    "{ devices(first: 3) { nodes { id history { id action reason actorPartyId "
    "actorPartyCategory occurredAt changes { field before after redacted } } "
    "firmware { version history { action changes { field redacted } } } } } }"
)
CONNECTION = "{ totalCount nodes { id modelName zigbeeBand } pageInfo { hasNextPage endCursor } }"
PAGE = "query Page($first: Int!, $after: String) { devices(first: $first, after: $after) "
PAGE += CONNECTION + " }"
FILTERED = "query Filtered($filter: DeviceFilter) { devices(filter: $filter) " + CONNECTION + " }"
DOCUMENTS = {  # name: (document, variables)
    "typical": (TYPICAL, {}),
    "everything": (EVERYTHING, {"firmware": True}),
    "everything, firmware skipped": (EVERYTHING, {"firmware": False, "skipBand": True}),
    "history": (HISTORY, {}),
    "a page": (PAGE, {"first": 2, "after": None}),
    "filtered": ("{ devices(filter: {zigbeeBand: DUAL_BAND}) " + CONNECTION + " }", {}),
    "manufacturers": ("{ manufacturers { name devices { modelName zigbeeStackVersion } } }", {}),
}
PLANNED = {"typical", "a page", "filtered", "manufacturers"}  # answered again by their plan
# The plan gives up on these, and the answer is the ordinary one: a cursor that is no cursor,
# a variable of the wrong type, a restricted filter (refused but to the SSC).
GIVEN_UP = {
    "no cursor": (PAGE, {"first": 2, "after": "nonsense"}),
    "no Int": (PAGE, {"first": "two", "after": None}),
    "restricted": (FILTERED, {"filter": {"zigbeeChipsetVendor": "Silicon Labs"}}),
}
CATEGORIES = [category.value for category in PartyCategory]


Answer = tuple[int, bytes, list, dict[tuple[str, str, str], float]]  # status, body, reads, ops


def operations() -> dict[tuple[str, str, str], float]:
    """The operations counted so far, by (type, outcome, cache)."""
    return {key: child._value.get() for key, child in metrics.OPERATIONS_BY.items()}


@pytest.fixture
async def both(settings, services, token, monkeypatch):
    """POST a document to the app as it runs, twice (the first run teaches the second its plan),
    and to one executing it the plain way, on the same services, with the response cache off;
    each answer as sent (status and body), with the SSC reads it noted and the operations it
    counted (`metrics.OPERATIONS_BY`, those that grew, by how much)."""
    monkeypatch.setattr(services.responses, "max_bytes", 0)
    with monkeypatch.context() as patch:
        patch.setattr(server.app, "build_schema", partial(build_schema, compiled=False))
        plain = create_app(settings, services)
    compiled = create_app(settings, services)
    noted = noted_reads(monkeypatch)

    async def ask(category: str, document: str, variables: dict) -> list[Answer]:
        answers = []
        for app in (compiled, compiled, plain):
            noted.clear()
            before = operations()
            async with asgi_client(app) as client:
                response = await client.post(
                    "/graphql",
                    json={"query": document, "variables": variables},
                    headers={"Authorization": f"Bearer {token(category)}"},
                )
            counted = {k: n - before.get(k, 0) for k, n in operations().items()}
            grown = {k: n for k, n in counted.items() if n}
            answers.append((response.status_code, response.content, list(noted), grown))
        return answers

    return ask


@pytest.mark.parametrize("category", CATEGORIES)
@pytest.mark.parametrize("name", DOCUMENTS)
async def test_the_compiled_answer_is_graphql_cores(both, category, name, monkeypatch):
    document, variables = DOCUMENTS[name]
    planned = count_calls(monkeypatch, schema.direct, "answer")
    compiled, again, plain = await both(category, document, variables)
    assert compiled[0] == 200 and json.loads(compiled[1])["data"], compiled
    assert compiled == again == plain
    assert planned[0] == (name in PLANNED), "the second run was not by its plan"
    if category == "SSC" and "zigbeeStackVersion" in document:
        assert compiled[2] and compiled[2][0][1], "the SSC's reads were not noted"


@pytest.mark.parametrize("category", ["SMALL_SUPPLIER", "SSC"])
@pytest.mark.parametrize("name", GIVEN_UP)
async def test_where_the_plan_gives_up_the_answer_is_the_ordinary_one(both, category, name):
    """Asked first with good variables (the plan is learnt), then with these: the answer is
    graphql-core's, its SSC reads and its operation counted once, as the plain app's."""
    document, variables = GIVEN_UP[name]
    good = {"first": 2, "after": None} if "$first" in document else {}
    await both(category, document, good)
    compiled, again, plain = await both(category, document, variables)
    assert compiled == again == plain
    assert json.loads(compiled[1]).get("errors") or category == "SSC", compiled


async def test_a_failing_field_fails_as_graphql_core_fails_it(both, monkeypatch):
    """A resolver raising inside a compiled selection: the nullable `latestFirmware` of that
    device alone becomes null, and the non-null `firmware` list takes its device with it, with
    the error at the same path either way."""
    encode_id = schema.types.encode_id
    failing: list[int] = []

    def flaky(kind: str, pk: int) -> str:
        if kind == "firmware" and not failing:
            failing.append(pk)
        if kind == "firmware" and pk == failing[0]:
            raise ValueError("the id cannot be made")
        return encode_id(kind, pk)

    monkeypatch.setattr(schema.types, "encode_id", flaky)
    for selection in ("latestFirmware { id version }", "firmware { id }"):
        document = f"{{ devices(first: 50) {{ nodes {{ modelName {selection} }} }} }}"
        failing.clear()
        compiled, again, plain = await both("SMALL_SUPPLIER", document, {})
        assert failing, "no firmware id was made"
        assert compiled == again == plain
        [error] = json.loads(compiled[1])["errors"]  # masked, as every unexpected error is
        assert error["message"] == "Unexpected error." and error["path"][:2] == ["devices", "nodes"]


@pytest.mark.parametrize(
    ("name", "converted"), [("a page", 0), ("typical", 0), ("filtered", 1), ("no cursor", 0)]
)
async def test_a_plan_calls_a_resolver_itself_where_strawberry_would_convert_nothing(
    gql, services, monkeypatch, name, converted
):
    """Asked again, by its plan: a root field whose arguments are nulls and built-in scalars
    has its resolver called directly (`schema.lean` `_keyword_call`); an input object, which
    Strawberry converts, goes through Strawberry's wrapper. Same answers either way (above)."""
    monkeypatch.setattr(services.responses, "max_bytes", 0)
    document, variables = {**DOCUMENTS, **GIVEN_UP}[name]
    good = {"first": 2, "after": None} if "$first" in document else {}
    await gql("SSC", document, good)  # the plan learnt
    conversions = count_calls(monkeypatch, schema_converter, "get_arguments")
    planned = count_calls(monkeypatch, schema.direct, "answer")
    body = await gql("SSC", document, variables)
    assert planned == [1]
    assert conversions == [converted] or "errors" in body  # a bad cursor runs the ordinary way
    assert ("errors" in body) == (name == "no cursor")


async def test_a_counted_table_page_is_completed_once(gql, services, monkeypatch):
    """A table's page counts when asked (an awaitable `totalCount`): its connection is
    graphql-core's to complete, and its rows are completed once whether or not the count is
    selected, never first by a compiled completion that gives up on the count."""
    monkeypatch.setattr(services.responses, "max_bytes", 0)
    rows = "nodes { id action changes { field redacted } }"
    calls = []
    for selection in (rows, rows + " totalCount"):
        resolved = count_calls(monkeypatch, schema.completions, "resolved")
        body = await gql("SSC", f"{{ auditEvents(first: 5) {{ {selection} }} }}")
        assert len(body["data"]["auditEvents"]["nodes"]) == 5, body
        calls.append(resolved[0])
    assert 0 < calls[1] <= calls[0], calls  # with the count: no compiled attempt given up


async def test_graphql_core_executes_a_fixed_number_of_fields_a_page(gql, services, monkeypatch):
    """The rows of a page are completed by the compiled completion: graphql-core's per-field
    machinery runs for the root and the connection, not per device, firmware or pathway."""
    monkeypatch.setattr(services.responses, "max_bytes", 0)
    counts = []
    for first in (1, 12):
        document = TYPICAL.replace("first: 50", f"first: {first}")
        executed = count_calls(monkeypatch, Executor, "execute_field")
        body = await gql("SSC", document)
        assert len(body["data"]["devices"]["nodes"]) == first
        assert body["data"]["devices"]["nodes"][-1]["firmware"], "no firmware to complete"
        counts.append(executed[0])
    assert counts[0] == counts[1] <= 5, counts


@strawberry.enum
class Colour(Enum):
    RED = "red"


@strawberry.type
class Item:
    """Rows of the wrong shape, as a bug elsewhere could hand them over."""

    name: str
    tags: list[str]
    colour: Colour

    @strawberry.field
    def upper(self, root: strawberry.Parent[Item]) -> str:
        RESOLVED.append(root.name)
        if root.name == "raises":
            raise ValueError("the upper name cannot be made")
        return root.name.upper()


RESOLVED: list[str] = []
ROWS = {
    "fine": [Item(name="a", tags=["x"], colour=Colour.RED)],
    "null where non-null": [Item(name=None, tags=[], colour=Colour.RED)],  # type: ignore[arg-type]
    "a string for a list": [Item(name="b", tags="x,y", colour=Colour.RED)],  # type: ignore[arg-type]
    "no enum member": [Item(name="c", tags=[], colour="blue")],  # type: ignore[arg-type]
    "a resolver raising": [Item(name=n, tags=[], colour=Colour.RED) for n in ("d", "raises", "e")],
}


@strawberry.type
class Rows:
    @strawberry.field
    def items(self, info: strawberry.Info) -> list[Item]:
        return ROWS[info.context["rows"]]


def small_schema(compiled: bool) -> strawberry.Schema:
    schema = strawberry.Schema(
        query=Rows, execution_context_class=CompilingExecutor if compiled else None
    )
    if compiled:
        lean_resolvers(schema)
    return schema


def as_sent(result: Any) -> bytes:
    """A result as the app's view sends it: Strawberry's HTTP shape, by the view's encoder."""
    view = GraphQLApp.__new__(GraphQLApp)  # its encoder keeps no state
    encoded = view.encode_json(process_result(result))
    return encoded if isinstance(encoded, bytes) else encoded.encode()


@pytest.mark.parametrize("rows", ROWS)
async def test_values_of_the_wrong_shape_fail_as_graphql_core_fails_them(rows):
    """A null in a non-null place, a string where a list belongs, a value no enum member has, a
    resolver raising: the same response bytes; and each resolver runs as often as there."""
    document = "{ items { name tags colour upper } }"
    answers, calls = [], []
    for compiled in (True, False):
        RESOLVED.clear()
        result = await small_schema(compiled).execute(document, context_value={"rows": rows})
        answers.append(as_sent(result))
        calls.append(sorted(RESOLVED))
    assert answers[0] == answers[1]
    assert ("errors" in json.loads(answers[0])) is (rows != "fine"), answers[0]
    assert len(calls[0]) <= 2 * len(calls[1]), calls  # given up once a field at most


async def _later() -> int:
    return 1


@strawberry.type
class Later:
    @strawberry.field
    def value(self) -> int:  # sync, so lean, but its value is an awaitable: given up
        return _later()  # type: ignore[return-value]  # graphql-core awaits it


@strawberry.type
class LaterQuery:
    @strawberry.field
    def later(self) -> Later:
        return Later()


async def test_a_root_whose_completion_gave_up_leaves_no_plan():
    """A root field's compiled completion that hands its value to graphql-core (here an
    awaitable it cannot complete) answers without an error, but a plan of it would give up on
    every request and run the resolvers twice: no plan is kept."""
    later = strawberry.Schema(query=LaterQuery, execution_context_class=CompilingExecutor)
    lean_resolvers(later)
    for _ in range(2):
        result = await later.execute("{ later { value } }")
        assert result.data == {"later": {"value": 1}} and not result.errors
    assert not [plan for plan in schema.direct.PLANS.values() if plan.schema is later._schema]


def test_a_plan_mirrors_the_extensions_it_stands_in_for():
    """`schema/direct.py` `answer` does for a query, by hand and in order, what these
    extensions do (the document, limits and subscription slots are the view's before it).
    An extension added, removed or reordered must be mirrored there; then update this list."""
    names = [getattr(made, "func", made).__name__ for made in extensions(load_settings())]
    assert names == [
        "OperationRecord",
        "DocumentCache",
        "OperationLimits",
        "SubscriptionSlots",
        "PolicyEnforcement",
        "ErrorPolicy",
        "OperationScope",
    ], "schema/direct.py answer() stands in for these: mirror the change there"

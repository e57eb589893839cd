"""Direct answers: a query that has run once with every root field completed by a compiled
completion runs again by its plan, without graphql-core's executor or Strawberry's operation.

Why: with its rows' answers reused (`schema.completions`), an uncached page is mostly fixed
costs: Strawberry's view and extensions' hooks (about 20 context managers entered and left an
operation), graphql-core's executor built and its root fields executed, each root field's
arguments converted. Profiled on the demo CPL, they were half of an uncached answer, and a
hand-written endpoint on PostgreSQL (whose statements run on another core) answered faster.

What runs instead is what those hooks do for a query, in their order, with the same functions:
the caller's view of the snapshot held, the restricted arguments refused from the coerced
variables (`refuse_restricted_arguments`), the root fields' Strawberry resolvers called with
graphql-core's argument values (directly where Strawberry would pass them on unconverted:
`schema.lean`), their values completed by the completions the first run compiled (bound to
this request's context: the caller's view, its SSC reads), the denied selections nulled
(`apply_denials`), the errors shaped (`ErrorPolicy`), the operation recorded
(`schema.operation_record.record`) and, before the answer leaves, its SSC reads committed
(`Context.close`). So what a caller may read is decided where it was: by the view the
resolvers and completions read through, and by the policy's copy of the document.

Anything else gives up, and the request runs the ordinary way from the start, on a context of
its own: variables that do not coerce, a resolver's error, a completion's `GiveUp`, a refused
argument. Only the plan's reads ran, and their notes went with the discarded context.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLField,
    GraphQLResolveInfo,
    GraphQLSchema,
    OperationType,
    get_operation_ast,
)
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path, is_awaitable
from strawberry.types import ExecutionResult

from config import tracing
from permissions.denials import apply_denials
from permissions.document_policy import Decision
from permissions.strawberry_adapter import refuse_restricted_arguments
from schema.completions import Completion, Run, of_no_request
from schema.context import Context
from schema.extensions import ErrorPolicy
from schema.operation_record import record

MAX_PLANS = 4_096  # dropped all at once past it, as `schema.execution.PLANS`


class Root(NamedTuple):
    """A root field of a plan: its response key, definition and node, the resolve info of no
    request its resolver is called with (the request's context and variables put in), and its
    value's compiled completion with the run it is bound through."""

    key: str
    field: GraphQLField
    node: FieldNode
    info: GraphQLResolveInfo
    completion: Completion
    run: Run
    call: Any  # the resolver's direct call and its arguments (`schema.lean`), or None
    arguments: dict[str, tuple[str, bool]]

    def resolve(self, info: GraphQLResolveInfo, arguments: dict[str, Any]) -> Any:
        """The resolver's value: called directly where every argument is one Strawberry would
        pass on as it is (`schema.lean` marks which), else through Strawberry's wrapper, which
        converts them."""
        wrapper: Any = self.field.resolve
        if self.call is None:
            return wrapper(None, info, **arguments)
        kwargs = {}
        for name, value in arguments.items():
            python = self.arguments.get(name)
            if python is None or (value is not None and not python[1]):
                return wrapper(None, info, **arguments)
            kwargs[python[0]] = value
        return self.call(None, info, kwargs)


class Plan(NamedTuple):
    schema: GraphQLSchema  # kept, with the definitions: their ids are the plan's key (`_key`)
    definitions: tuple[Any, ...]
    roots: tuple[Root, ...]


# By the executed document's operation and fragment definitions (the policy's copy's): a copy
# that differs from its document in a fragment alone shares the operation's node with it.
PLANS: dict[tuple[int, ...], Plan] = {}


def learn(executor: Any) -> None:
    """Keep the plan of a query `executor` (a `schema.execution.CompilingExecutor`) has just
    answered without an error, when every root field of it can run directly: a field with a
    resolver (Strawberry's: it converts the arguments itself), its value completed by a
    compiled completion, no directive anywhere that depends on the variables (`@include`,
    `@skip`)."""
    operation = executor.operation
    grouped = executor.root_fields
    if operation.operation is not OperationType.QUERY or grouped is None or executor.conditional:
        return
    definitions = executor.definitions
    key = _key(executor.schema, definitions)
    if key in PLANS:
        return
    root_type = executor.schema.query_type
    roots = []
    for name, details in grouped.items():
        known = executor.roots.get(name)
        node = details[0].node
        field = root_type.fields.get(node.name.value)
        if known is None or known[0] is not details or known[1] is None or field is None:
            return
        if field.resolve is None:
            return
        nodes = [item.node for item in details]
        path = Path(None, name, root_type.name)
        info = of_no_request(executor.build_resolve_info(field, nodes, root_type, path))
        call = getattr(field.resolve, "call", None)
        arguments = getattr(field.resolve, "arguments", {})
        roots.append(Root(name, field, node, info, known[1].completion, known[2], call, arguments))
    if len(PLANS) >= MAX_PLANS:
        PLANS.clear()
    PLANS[key] = Plan(executor.schema, definitions, tuple(roots))


def _key(schema: GraphQLSchema, definitions: tuple[Any, ...]) -> tuple[int, ...]:
    """The schema (a plan holds its fields and types), the operation's node, then its
    document's fragment definitions in any order."""
    return (id(schema), id(definitions[0]), *sorted(map(id, definitions[1:])))


def plan_for(schema: GraphQLSchema, decision: Decision, operation_name: str | None) -> Plan | None:
    """The plan `schema`'s execution kept of the operation as the policy's copy of its
    document has it, if any (a schema executed the plain way keeps none)."""
    document = decision.document
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return None
    fragments = (node for node in document.definitions if isinstance(node, FragmentDefinitionNode))
    definitions = (operation, *fragments)
    return PLANS.get(_key(schema, definitions))  # a kept plan keeps what its key's ids are of


async def answer(
    plan: Plan, context: Context, decision: Decision, variables: dict[str, Any] | None
) -> ExecutionResult | None:
    """The answer by `plan`, its SSC reads committed (`AccessLogUnavailable` if they cannot
    be); None where it gives up, having committed nothing."""
    principal = context.principal
    assert principal is not None  # authenticated before anything runs
    schema, operation = plan.schema, plan.definitions[0]
    coerced = get_variable_values(schema, operation.variable_definitions or (), variables or {})
    if isinstance(coerced, list):
        return None
    context.ssc_reads.operation_name = operation.name.value if operation.name else None
    data: dict[str, Any] = {}
    try:
        refuse_restricted_arguments(
            decision, principal.party_category, schema, operation, variables
        )
        await context.loaders.snapshot()
        for root in plan.roots:
            arguments = get_argument_values(root.field, root.node, coerced)
            info = root.info._replace(context=context, variable_values=coerced)
            value = root.resolve(info, arguments)
            if is_awaitable(value):
                value = await value
            root.run.bind(context)
            try:
                data[root.key] = root.completion(value)
            finally:
                root.run.bind(None)
    except Exception:
        await context.db.close()  # nothing was logged: the ordinary run reads and logs anew
        return None
    result = ExecutionResult(data=data, errors=None)
    with tracing.span("graphql operation") as span:
        apply_denials(decision, result)
        policy = ErrorPolicy()
        policy.executing = True
        policy._process_result(result)
        try:
            await context.close()
        finally:
            name = record(operation, result.errors or [], principal)[1]
            if span is not None:
                span.update_name(f"query {name}" if name else "query")
    return result

"""The internals of graphql-core and Strawberry this code leans on, checked at the locked
versions so that an upgrade fails here, naming what changed, rather than as a wrong answer.

`schema/execution.py` overrides graphql-core 3.3's `complete_value(..., position_context)` and
unpacks `collect_subfields`' 3-tuple; it reads Strawberry's field and resolver definitions and
builds `Info(_raw_info=, _field=)` itself; the view, the error policy, the subscription executor
and the WebSocket handler override their bases' methods. pyproject.toml caps both libraries;
raise a cap only once this file passes against the new release (`make lock
LOCK_ARGS='--upgrade-package strawberry-graphql'`, then the tests). A new reach into a
library's private names, or into a module off its public face, fails the tripwires below
until it is added to the checks here."""

from __future__ import annotations

import ast
import enum
import importlib
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import graphql
import pytest
import strawberry
from graphql.execution.executor import CollectedErrors, Executor
from graphql.execution.values import get_argument_values, get_variable_values
from graphql.pyutils import Path as ResponsePath
from strawberry.annotation import StrawberryAnnotation
from strawberry.extensions import MaskErrors
from strawberry.extensions.context import ExtensionContextManagerBase, WrappedHook
from strawberry.extensions.field_extension import build_field_extension_resolvers
from strawberry.extensions.runner import SchemaExtensionsRunner
from strawberry.http.parse_content_type import parse_content_type
from strawberry.schema.name_converter import NameConverter
from strawberry.schema.schema import validate_document
from strawberry.types import Info
from strawberry.types.arguments import StrawberryArgument
from strawberry.types.base import StrawberryOptional
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import StrawberryResolver

from schema.execution import CompilingExecutor
from schema.lean import DEFINITION, lean_resolvers
from tests.live import ROOT

PACKAGES = ("config", "models", "permissions", "resolvers", "notifications", "schema", "server")
LIBRARIES = ("strawberry", "graphql", "cross_web")


def parameters(function: Callable[..., Any]) -> tuple[str, ...]:
    return tuple(inspect.signature(function).parameters)


# (what, the callable, the parameters our code passes or overrides, who relies on it)
SIGNATURES = [
    (
        "graphql-core Executor.complete_value",
        Executor.complete_value,
        ("self", "return_type", "field_details_list", "info", "path", "result", "position_context"),
        "schema/execution.py CompilingExecutor.complete_value overrides and calls it",
    ),
    (
        "graphql-core Executor.collect_subfields",
        Executor.collect_subfields,
        ("self", "return_type", "field_details_list"),
        "schema/execution.py CompilingExecutor.compile_object",
    ),
    (
        "graphql-core Executor.build_resolve_info",
        Executor.build_resolve_info,
        ("self", "field_def", "field_nodes", "parent_type", "path"),
        "schema/execution.py CompilingExecutor.compile_field",
    ),
    (
        "graphql-core Executor.build_per_event_executor",
        Executor.build_per_event_executor,
        ("self", "payload"),
        "schema/subscriptions.py EventExecutor and schema/execution.py",
    ),
    (
        "graphql-core Executor.execute_operation",
        Executor.execute_operation,
        ("self", "serially"),
        "schema/subscriptions.py EventExecutor.execute_operation, execute_for_group",
    ),
    (
        "graphql-core Executor.execute_collected_root_fields",
        Executor.execute_collected_root_fields,
        ("self", "root_type", "root_value", "grouped_field_set", "serially", "new_defer_usages"),
        "schema/execution.py keeps the root fields for schema/direct.py learn",
    ),
    (
        "graphql-core Executor.build_response",
        Executor.build_response,
        ("self", "data"),
        "schema/execution.py CompilingExecutor.build_response calls schema/direct.py learn",
    ),
    (
        "graphql-core execution.values.get_argument_values",
        get_argument_values,
        ("type_def", "node", "variable_values", "fragment_variable_values", "hide_suggestions"),
        "schema/direct.py answer: a root field's arguments, as Executor.execute_field has them",
    ),
    (
        "Strawberry NameConverter.apply_naming_config",
        NameConverter.apply_naming_config,
        ("self", "name"),
        "schema/names.py KnownNames memoises it",
    ),
    (
        "graphql-core Executor.is_awaitable",
        Executor.is_awaitable,
        ("value",),
        "schema/subscriptions.py execute_for_group",
    ),
    (
        "graphql-core pyutils.Path",
        ResponsePath,
        ("prev", "key", "typename"),
        "schema/execution.py: the field path of a lean resolver's Info",
    ),
    (
        "graphql-core execution.values.get_variable_values",
        get_variable_values,
        ("schema", "var_def_nodes", "inputs", "max_errors", "hide_suggestions"),
        "permissions/strawberry_adapter.py refuse_restricted_arguments, schema/direct.py answer",
    ),
    (
        "graphql-core executor.CollectedErrors",
        CollectedErrors,
        (),
        "schema/subscriptions.py execute_for_group",
    ),
    (
        "Strawberry Info(_raw_info=, _field=)",
        Info,
        ("_raw_info", "_field"),
        "schema/lean.py _lean and schema/planning.py build it themselves",
    ),
    (
        "Strawberry build_field_extension_resolvers",
        build_field_extension_resolvers,
        ("field",),
        "schema/lean.py _lean chains a field's extensions once",
    ),
    (
        "Strawberry schema.schema.validate_document",
        validate_document,
        ("schema", "document", "validation_rules"),
        "schema/documents.py",
    ),
    (
        "Strawberry MaskErrors._process_errors",
        MaskErrors._process_errors,
        ("self", "errors"),
        "schema/extensions.py ErrorPolicy._process_errors overrides it",
    ),
    (
        "Strawberry MaskErrors._process_result",
        MaskErrors._process_result,
        ("self", "result"),
        "schema/extensions.py ErrorPolicy._process_result overrides it",
    ),
    (
        "Strawberry WrappedHook",
        WrappedHook,
        ("extension", "hook", "is_async"),
        "schema/hooks.py _KnownHooks.get_hook makes them",
    ),
    (
        "Strawberry ExtensionContextManagerBase.from_callable",
        ExtensionContextManagerBase.from_callable,
        ("extension", "func"),
        "schema/hooks.py _KnownHooks.get_hook leaves a plain hook to it",
    ),
    (
        "Strawberry SchemaExtensionsRunner",
        SchemaExtensionsRunner,
        ("execution_context", "extensions"),
        "schema/build.py CplSchema.create_extensions_runner makes schema/hooks.py's",
    ),
    (
        "Strawberry MaskErrors.anonymise_error",
        MaskErrors.anonymise_error,
        ("self", "error"),
        "schema/extensions.py ErrorPolicy.anonymise_error",
    ),
    (
        "Strawberry http.parse_content_type",
        parse_content_type,
        ("content_type",),
        "server/graphql_view.py reads a POST's media type as Strawberry's own view does",
    ),
    (
        "Strawberry MaskErrors.__init__",
        MaskErrors.__init__,
        ("self", "should_mask_error", "error_message"),
        "schema/extensions.py ErrorPolicy passes should_mask_error",
    ),
]


@pytest.mark.parametrize(
    ("what", "function", "expected", "user"), SIGNATURES, ids=[row[0] for row in SIGNATURES]
)
def test_the_signatures_we_rely_on(what, function, expected, user):
    found = parameters(function)
    assert found == expected, (
        f"{what} changed: its parameters were {expected}, are now {found}; {user} relies on them"
    )


@strawberry.type
class Part:
    name: str
    kind: str


class Colour(enum.Enum):
    RED = "red"


@strawberry.type
class Item:
    name: str
    parts: list[Part]
    colour: Colour

    @strawberry.field
    def label(self) -> str:
        return self.name.upper()


@strawberry.type
class Query:
    @strawberry.field
    def item(self) -> Item:
        return Item(name="a", parts=[Part(name="p", kind="k")], colour=Colour.RED)


class Probe(CompilingExecutor):
    """The compiling executor, noting what graphql-core hands it and what it holds."""

    seen: list[Any] = []

    def collect_subfields(self, return_type: Any, field_details_list: Any) -> Any:
        collected = super().collect_subfields(return_type, field_details_list)
        Probe.seen.append(("collect_subfields", collected))
        return collected

    def complete_value(self, *args: Any) -> Any:
        Probe.seen.append(("executor", self))
        return super().complete_value(*args)


FIELD_ATTRIBUTES = (
    "get_result",
    "is_basic_field",
    "python_name",
    "base_resolver",
    "extensions",
    "arguments",
    "is_async",
    "is_subscription",
    "default_resolver",
)
RESOLVER_ATTRIBUTES = (
    "self_parameter",
    "parent_parameter",
    "root_parameter",
    "info_parameter",
    "signature",
    "wrapped_func",
)


def test_the_definitions_we_read_have_what_we_read():
    schema = strawberry.Schema(query=Query)
    field = schema._schema.type_map["Item"].fields["label"].extensions[DEFINITION]
    missing = [name for name in FIELD_ATTRIBUTES if not hasattr(field, name)]
    assert missing == [], f"StrawberryField lost {missing}: schema/lean.py reads them"
    resolver = field.base_resolver
    assert isinstance(resolver, StrawberryResolver)
    missing = [name for name in RESOLVER_ATTRIBUTES if not hasattr(resolver, name)]
    assert missing == [], f"StrawberryResolver lost {missing}: execution.py _direct_call reads them"
    assert resolver.self_parameter is not None and resolver.info_parameter is None
    assert inspect.isfunction(resolver.wrapped_func)
    optional = StrawberryArgument("name", None, type_annotation=StrawberryAnnotation(int | None))
    assert type(optional.type) is StrawberryOptional and optional.type.of_type is int, (
        "Strawberry's Optional changed: schema/lean.py _keyword_call reads its of_type"
    )
    for extension_attribute in ("supports_sync", "resolve"):
        assert hasattr(strawberry.extensions.FieldExtension, extension_attribute), (
            f"FieldExtension lost {extension_attribute}: execution.py _may_be_lean reads it"
        )


def test_a_small_schema_runs_compiled_on_the_internals_it_expects():
    Probe.seen = []
    schema = strawberry.Schema(query=Query, execution_context_class=Probe)
    core = schema._schema
    assert isinstance(core, graphql.GraphQLSchema), "Strawberry's Schema._schema is no more"
    field = core.type_map["Item"].fields["label"]
    definition = (field.extensions or {}).get(DEFINITION)
    assert isinstance(definition, StrawberryField), (
        f"a GraphQL field's extensions no longer hold {DEFINITION!r}: schema/lean.py "
        "lean_resolvers finds nothing to make lean"
    )
    assert schema.config.info_class is Info and schema.config.default_resolver is getattr
    assert schema.exception_handlers is not None
    leaf = core.type_map["String"]
    assert callable(getattr(leaf, "coerce_output_value", None)), (
        "graphql-core leaf types lost coerce_output_value: "
        "schema/completions.py leaf_completion calls it"
    )
    lean_resolvers(schema)
    assert getattr(field.resolve, "lean", False), "lean_resolvers left Item.label alone"
    assert core.type_map["Item"].fields["name"].resolve.attribute == "name"

    result = schema.execute_sync("{ item { name label colour parts { name kind } } }")
    assert result.errors is None, result.errors
    assert result.data == {
        "item": {"name": "a", "label": "A", "colour": "RED", "parts": [{"name": "p", "kind": "k"}]}
    }
    collected = [value for kind, value in Probe.seen if kind == "collect_subfields"]
    assert collected, "graphql-core no longer calls collect_subfields for an object's fields"
    for value in collected:
        assert isinstance(value, tuple) and len(value) == 3, (
            f"collect_subfields returns {type(value).__name__} {value!r}, not the 3-tuple "
            "(grouped fields, defer usages, new deferred work) compile_object unpacks"
        )
        grouped = value[0]
        assert all(hasattr(details[0], "node") for details in grouped.values()), (
            "collect_subfields' field details lost .node: compile_field reads it"
        )
    executor = next(value for kind, value in Probe.seen if kind == "executor")
    for name in ("middleware_manager", "context_value", "root_value", "collected_errors"):
        assert hasattr(executor, name), f"graphql-core's executor lost .{name}"


def library_bases(cls: type) -> list[type]:
    return [base for base in cls.__mro__[1:] if base.__module__.split(".")[0] in LIBRARIES]


def our_classes() -> list[type]:
    found = []
    for path in production_files():
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for value in vars(module).values():
            ours = inspect.isclass(value) and value.__module__ == module.__name__
            if ours and library_bases(value):
                found.append(value)
    return found


def production_files() -> list[Path]:
    """The packages' modules, but Alembic's migration scripts (run only by Alembic)."""
    files = (path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))
    return sorted(path for path in files if "migrations" not in path.parts)


def test_every_method_we_override_in_a_library_class_still_has_our_parameters():
    """A subclass of a library class whose method's parameters are renamed, reordered or gone
    would be silently not called, or called wrongly."""
    changed = []
    for cls in our_classes():
        for name, ours in vars(cls).items():
            if not inspect.isfunction(ours) or name.startswith("__"):
                continue
            theirs = next((vars(b)[name] for b in library_bases(cls) if name in vars(b)), None)
            if theirs is None or not callable(theirs):
                continue
            mine, base = parameters(ours), parameters(inspect.unwrap(theirs))
            if "args" in mine or "kwargs" in mine:
                continue
            if mine != base[: len(mine)] or len(base) > len(mine):
                changed.append(f"{cls.__module__}.{cls.__qualname__}.{name}: {mine} vs {base}")
    assert changed == []


def test_every_super_call_reaches_a_library_method():
    calls = []
    for cls in our_classes():
        source = ast.parse(inspect.getsource(cls).strip())
        for node in ast.walk(source):
            is_super = (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "super"
            )
            if is_super and not any(hasattr(b, node.attr) for b in library_bases(cls)):
                calls.append(f"{cls.__qualname__}: super().{node.attr} is gone")
    assert calls == []


# A library's private names our code touches, each checked above: `schema._schema` (the
# graphql-core schema behind Strawberry's), `Info(_raw_info=, _field=)`, MaskErrors'
# `_process_errors` and `_process_result`. SQLAlchemy's `Row._mapping` and namedtuples'
# `_fields`, `_replace`, `_asdict` are public API with an underscore.
KNOWN_PRIVATE = {"_schema", "_raw_info", "_field", "_process_errors", "_process_result"}
PUBLIC_UNDERSCORED = {"_mapping", "_fields", "_replace", "_asdict"}
# Modules off the libraries' public faces that we import from, each checked above or used
# only for names that are plain data (classes to subclass, constants, types).
KNOWN_DEEP_IMPORTS = {
    "graphql.execution.executor",
    "graphql.execution.values",
    "graphql.pyutils",
    "graphql.type.introspection",
    "strawberry.schema.schema",
    "strawberry.schema.config",
    "strawberry.schema.name_converter",
    "strawberry.extensions.context",
    "strawberry.extensions.field_extension",
    "strawberry.extensions.runner",
    "strawberry.types.base",
    "strawberry.types.field",
    "strawberry.types.fields.resolver",
    "strawberry.types.execution",
    "strawberry.types.graphql",
    "strawberry.types.nodes",
    "strawberry.subscriptions.protocols.graphql_transport_ws.handlers",
    "strawberry.subscriptions.protocols.graphql_transport_ws.types",
    "strawberry.http.parse_content_type",
    "cross_web",
    "cross_web.request",
}
PUBLIC_MODULES = {
    "graphql",
    "strawberry",
    "strawberry.types",
    "strawberry.extensions",
    "strawberry.schema_directive",
    "strawberry.tools",
    "strawberry.dataloader",
    "strawberry.asgi",
    "strawberry.http",
    "strawberry.exceptions",
    "strawberry.subscriptions",
}


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_tripwire_no_new_private_name_of_a_library_is_touched():
    touched: dict[str, set[str]] = {}
    for path in production_files():
        for node in ast.walk(ast.parse(path.read_text())):
            name = None
            if isinstance(node, ast.Attribute) and private(node.attr):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    name = node.attr
            elif isinstance(node, ast.keyword) and private(node.arg or ""):
                name = node.arg
            if name and name not in PUBLIC_UNDERSCORED:
                touched.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    new = {name: sorted(paths) for name, paths in touched.items() if name not in KNOWN_PRIVATE}
    assert new == {}, "private names touched: check them in tests/test_library_internals.py"


def test_tripwire_no_new_module_off_a_librarys_public_face_is_imported():
    imported = set()
    for path in production_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.split(".")[0] in LIBRARIES:
                    imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported |= {a.name for a in node.names if a.name.split(".")[0] in LIBRARIES}
    new = sorted(imported - PUBLIC_MODULES - KNOWN_DEEP_IMPORTS)
    assert new == [], "imported from a library's insides: check them here"

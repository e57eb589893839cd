"""The compiled completions of plain selections (`schema.execution` compiles them), and the
answers of a view's rows they reuse.

A completion turns a resolved value into its part of the answer, reading attributes and calling
lean resolvers directly: no `ResolveInfo`, no path and no Strawberry `Info` per object (a lean
resolver gets one `Info` a field, made when the selection is compiled). Anything out of the
ordinary raises `GiveUp`, and graphql-core completes that field's value from the start, with
its own paths and errors.

Reused answers. Where every field of an object's selection reads its row and the caller's view
of the CPL snapshot alone (attributes, and resolvers marked `schema.lean.view_only`), the
completed object is a function of (view, selection, row): it is kept with the view
(`CplSnapshot.answers`) and handed to every later request of the same view that selects the same
shape, until the data revision moves and the view is dropped. A page of devices then costs a
look-up a device, whatever its relations. A view is per set of hidden columns (capabilities
that hide the same columns share one), so an answer kept in a view is only ever seen by callers
who may read every value in it; what else a category may not read is denied by the document
pass, which changes the selection and so its shape. Values read under an observer (the SSC's
access log) are recorded with the answer and noted again each time it is reused, so the log
sees every read. Answers are plain dicts shared between responses: nothing may change a
completed answer in place (`permissions.denials.apply_denials` copies what it
changes, and keeps its copy of a kept answer, a `SharedAnswer`, by identity).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from enum import Enum
from itertools import count
from typing import Any, NamedTuple, Protocol

from graphql import GraphQLEnumType, GraphQLID, GraphQLLeafType, GraphQLString
from graphql.pyutils import Undefined, is_awaitable

from permissions.denials import SharedAnswer

Completion = Callable[[Any], Any]


class Observer(Protocol):
    """A field extension's `observe`, which only watches a value being read (the SSC's access
    log: `permissions.ssc_access.SscReadObserver`)."""

    def __call__(self, context: Any, type_name: str, field_name: str, source: Any) -> None: ...

    def summary(self, observations: Sequence[tuple[str, str, Any]]) -> Any:
        """What `observations` note, taken together."""

    def replay(self, context: Any, summary: Any) -> None:
        """Note a `summary` in `context` as if each of its observations were made now."""


Observation = tuple[Observer, str, str, Any]  # observe, type, field, source


class Seen(NamedTuple):
    """What a kept answer's completion observed: each observation (an answer completed around
    a reused one records them too), and by observer what they noted, taken together, so that
    a reuse notes them again with one call an observer, not one a value."""

    observations: tuple[Observation, ...]
    summaries: tuple[tuple[Observer, Any], ...]


NOTHING_SEEN = Seen((), ())


def seen_of(observations: tuple[Observation, ...]) -> Seen:
    if not observations:
        return NOTHING_SEEN
    grouped: dict[Observer, list[tuple[str, str, Any]]] = {}
    for observe, type_name, name, source in observations:
        grouped.setdefault(observe, []).append((type_name, name, source))
    summaries = tuple((observe, observe.summary(made)) for observe, made in grouped.items())
    return Seen(observations, summaries)


MAX_ANSWERS = 100_000  # a view's kept answers; past it they are dropped and kept anew
_SHAPE_IDS = count(1)  # a shape's id in a view's answers, never given to another shape


class GiveUp(Exception):
    """A compiled completion met something only graphql-core's completion handles."""


class Compiled(NamedTuple):
    """A selection's completion; its `shape` when the answer is a function of (view, row)
    (hashable, equal for equal selections), else None; `observed`: some value below is read
    under an observer."""

    completion: Completion
    shape: Any
    observed: bool


class Run:
    """What the completions of a compiled selection share: the request (or subscription
    event) they complete for, bound before each call (`bind`). A completion never awaits, so
    no other request runs between a `bind` and the end of the call it precedes: a selection
    compiled once serves every request of its document in turn."""

    __slots__ = ("context", "loaders", "recording")

    def __init__(self, context: Any = None) -> None:
        self.bind(context)

    def bind(self, context: Any) -> None:
        self.context = context
        self.loaders = getattr(context, "loaders", None)
        self.recording: list[Observation] | None = None  # while a reusable answer is completed

    def view(self) -> Any:
        """The caller's view of the snapshot, once the request holds it."""
        return None if self.loaders is None else self.loaders.held

    def observe(self, observe: Observer, type_name: str, name: str, source: Any) -> None:
        observe(self.context, type_name, name, source)
        if self.recording is not None:
            self.recording.append((observe, type_name, name, source))

    def replay(self, seen: Seen) -> None:
        """A reused answer's observed reads, noted as if its values were read now."""
        for observe, summary in seen.summaries:
            observe.replay(self.context, summary)
        if seen.observations and self.recording is not None:
            self.recording.extend(seen.observations)

    def recorded(self, fill: Completion, value: Any) -> tuple[Any, tuple[Observation, ...]]:
        outer, self.recording = self.recording, []
        try:
            out = fill(value)
            seen = tuple(self.recording)
        finally:
            self.recording = outer
        if outer is not None:
            outer.extend(seen)
        return out, seen


class RequestInfo:
    """A lean resolver's `GraphQLResolveInfo` in a compiled selection: the field's, made when
    it was compiled, with the context of the request the selection is bound to now."""

    __slots__ = ("_field", "_run")

    def __init__(self, field_info: Any, run: Run) -> None:
        self._field, self._run = field_info, run

    @property
    def context(self) -> Any:
        return self._run.context

    def __getattr__(self, name: str) -> Any:
        return getattr(self._field, name)


# A step of an object's completion: (response name, kind, how, completion of the value).
STRING, VALUE, RESOLVED, OBSERVED, TYPENAME = range(5)
Step = tuple[str, int, Any, Any]


def null(nullable: bool) -> None:
    """A null, where the type allows one; else graphql-core's error to raise."""
    if nullable:
        return None
    raise GiveUp


def resolved(call: Callable[[Any, Any], Any], info: Any, source: Any) -> Any:
    """A lean resolver's value; an awaitable is graphql-core's to await."""
    value = call(source, info)
    if is_awaitable(value):
        getattr(value, "close", lambda: None)()  # a coroutine: never awaited, so closed
        raise GiveUp
    return value


def object_completion(
    run: Run, steps: list[Step], nullable: bool, shape: Any, observed: bool
) -> Completion:
    """An object's completion; with a `shape` (else None or False), its answers for the
    view's rows are reused."""

    def fill(value: Any) -> dict[str, Any]:
        out = {}
        for name, kind, how, completion in steps:
            if kind is STRING:
                attribute = getattr(value, how)
                out[name] = attribute if attribute.__class__ is str else completion(attribute)
            elif kind is VALUE:
                out[name] = completion(getattr(value, how))
            elif kind is RESOLVED:
                out[name] = completion(resolved(how[0], how[1], value))
            elif kind is OBSERVED:
                read, watched = how
                for observe, type_name, field_name in watched:
                    run.observe(observe, type_name, field_name, value)
                out[name] = completion(read(value))
            else:
                out[name] = how
        return out

    # The view the shape was last looked up in (weakly: a kept selection must not keep an old
    # revision's view alive), and its id there.
    interned: list[Any] = [_dead, 0]

    def reuse(view: Any, value: Any) -> Any:
        if interned[0]() is not view:
            interned[0], interned[1] = weakref.ref(view), _shape_id(view.answers, shape)
        key = (interned[1], value.id)
        found = view.answers.get(key)
        if found is not None:
            run.replay(found[1])
            return found[0]
        out, seen = run.recorded(fill, value) if observed else (fill(value), ())
        found = (SharedAnswer(out), seen_of(seen))
        if len(view.answers) >= MAX_ANSWERS:
            view.answers.clear()
        view.answers[key] = found
        return found[0]

    def complete(value: Any) -> Any:
        if value is None:
            return null(nullable)
        if value is Undefined or isinstance(value, Exception):
            raise GiveUp
        if shape and (view := run.view()) is not None and view.holds(value):
            return reuse(view, value)
        return fill(value)

    return complete


def _dead() -> None:
    """A reference to no view, for a shape never looked up yet."""


def _shape_id(answers: dict[Any, Any], shape: Any) -> int:
    """The id a view's answers know a shape by (kept beside them: a shape starts with a type
    name, an answer's key with an int)."""
    known = answers.get(shape)
    if known is None:
        known = answers[shape] = next(_SHAPE_IDS)
    return known


def list_completion(items: Completion, nullable: bool) -> Completion:
    def complete(value: Any) -> Any:
        if value is None:
            return null(nullable)
        if not isinstance(value, list | tuple):
            raise GiveUp
        return [items(item) for item in value]

    return complete


def leaf_completion(type_: GraphQLLeafType, nullable: bool) -> Completion:
    """A scalar's or enum's completion. A string is its own String or ID output, and an enum
    member's name is looked up once a request rather than searched for each value."""
    coerce = type_.coerce_output_value
    strings = type_ is GraphQLString or type_ is GraphQLID
    names: dict[Enum, Any] | None = {} if isinstance(type_, GraphQLEnumType) else None

    def complete(value: Any) -> Any:
        if strings and value.__class__ is str:
            return value
        if value is None:
            return null(nullable)
        if value is Undefined or isinstance(value, Exception) or is_awaitable(value):
            raise GiveUp  # graphql-core awaits an awaitable; a scalar could print one
        if names is not None and isinstance(value, Enum):
            name = names.get(value)
            if name is None:
                name = names[value] = _valid(coerce(value))
            return name
        return _valid(coerce(value))

    return complete


def _valid(coerced: Any) -> Any:
    if coerced is None or coerced is Undefined:
        raise GiveUp
    return coerced


# What a resolve info holds of the request that made it: a compiled selection may outlive the
# request, for later ones (`PLANS`), and must keep none of it alive (its principal, headers,
# variables, view of the CPL); `RequestInfo` gives each request its own context.
_REQUEST_FIELDS = ("context", "root_value", "abort_signal", "async_helpers", "operation_extensions")


def of_no_request(raw: Any) -> Any:
    """A field's resolve info with nothing of the request that compiled it."""
    cleared: dict[str, Any] = {name: None for name in _REQUEST_FIELDS if name in raw._fields}
    return raw._replace(**cleared, variable_values={}, is_awaitable=is_awaitable)

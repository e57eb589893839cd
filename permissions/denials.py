"""Denied selections answered: each stand-in of the policy's copy of a document
(`permissions.document_policy`) becomes `null` under the client's own key, and each response
path where a denied selection stood gets one `FORBIDDEN` error, at its first place, as
`schema.extensions.ErrorPolicy` reports a field that fails on many rows.

Answers are shared between responses (`SharedAnswer`, `schema.completions`), so what is
derived from them for a decision is kept by their identity, and a page of the same devices asked
again costs a look-up, not a walk: its nulled copy and its stand-ins' places (`_nulled`), and the
errors that name those places (`_errors`), made once and shared by every answer that denies the
same selections in the same places (`DenialError`: never changed once made).
"""

from __future__ import annotations

import functools
from typing import Any

from graphql import GraphQLError, GraphQLFormattedError

from permissions.document_policy import Decision, Denial

FORBIDDEN = "FORBIDDEN"
CONTAINERS = (dict, list)  # what a stand-in can be below (a tuple: `dict | list` is made each time)


class SharedAnswer(dict[str, Any]):
    """A completed answer shared between responses (kept with a capability's view and handed
    to every later request of it, `schema.completions`): never changed in place, so what is
    derived from it for a decision may be kept by its identity (`_nulled`)."""

    __slots__ = ()


# Where a stand-in stood below a value: the trail to it (list indices and keys, the client's
# key last), the response keys alone (the path an error is reported once for), its denial.
Found = tuple[tuple[Any, ...], tuple[str, ...], Denial]
Mark = tuple[tuple[str, ...], str]  # a response path and a client's key: reported once
# A shared answer with its stand-ins nulled, by (decision, answer), and a list of shared
# answers (a page) by (decision, its answers): a page of the same devices is copied once, not
# once a request, and walked once. Holds what it keys (no id is reused meanwhile); cleared
# when full, so bounded however many documents and revisions pass.
MAX_NULLED = 20_000
_nulled: dict[tuple[Any, ...], tuple[Decision, Any, Any, tuple[Found, ...]]] = {}


def _stand_ins(value: Any, decision: Decision) -> tuple[Any, tuple[Found, ...]]:
    """`value` with `null` under the client's own key for every stand-in below it, descending
    only under keys that lead to one, and where each stand-in stood, the first for each
    response path and key only, in answer order. A container that changes is a new one:
    completed answers are shared between responses, never changed.

    A kept entry holds the decision and the answers its key names by id, so while it is kept
    no other object can have those ids: a key found is the same decision and the same answers,
    with nothing more to compare."""
    if isinstance(value, list):
        # Only a page of kept answers is kept: one that does not start with one is not looked up.
        shared = bool(value) and value[0].__class__ is SharedAnswer
        key = ("[]", id(decision), *map(id, value)) if shared else ()
        kept = _nulled.get(key) if shared else None
        if kept is not None:
            return kept[2], kept[3]
        items, found = _list_stand_ins(value, decision)
        if shared and all(item.__class__ is SharedAnswer for item in value):
            _keep(key, (decision, tuple(value), items, found))
        return items, found
    if value.__class__ is not SharedAnswer:
        return _null_dict(value, decision)
    key = (id(decision), id(value))
    kept = _nulled.get(key)
    if kept is not None:
        return kept[2], kept[3]
    out, places = _null_dict(value, decision)
    _keep(key, (decision, value, out, places))
    return out, places


def _keep(key: tuple[Any, ...], entry: tuple[Decision, Any, Any, tuple[Found, ...]]) -> None:
    if len(_nulled) >= MAX_NULLED:
        _nulled.clear()
    _nulled[key] = entry


def _list_stand_ins(value: list[Any], decision: Decision) -> tuple[Any, tuple[Found, ...]]:
    found: list[Found] = []
    seen: set[Mark] = set()
    items = value
    for index, item in enumerate(value):
        if not isinstance(item, CONTAINERS):
            continue
        new, below = _stand_ins(item, decision)
        for trail, keys, denial in below:
            if (keys, denial.key) not in seen:
                seen.add((keys, denial.key))
                found.append(((index, *trail), keys, denial))
        if new is not item:
            items = items if items is not value else list(value)
            items[index] = new
    return items, tuple(found)


def _null_dict(value: dict[str, Any], decision: Decision) -> tuple[Any, tuple[Found, ...]]:
    stand_ins = decision.stand_ins
    found: list[Found] = []
    seen: set[Mark] = set()
    out = value
    if not stand_ins.keys().isdisjoint(value):
        # The client's key where its stand-in stood; selected twice, where it first stood.
        out = {}
        for key, item in value.items():
            denial = stand_ins.get(key)
            if denial is None:
                out.setdefault(key, item)
                continue
            out[denial.key] = None
            if ((), denial.key) not in seen:
                seen.add(((), denial.key))
                found.append(((denial.key,), (), denial))
    for key, item in out.items():
        if key in decision.leads and isinstance(item, CONTAINERS):
            new, below = _stand_ins(item, decision)
            for trail, keys, denial in below:
                if ((key, *keys), denial.key) not in seen:
                    seen.add(((key, *keys), denial.key))
                    found.append(((key, *trail), (key, *keys), denial))
            if new is not item:
                out = out if out is not value else dict(value)
                out[key] = new
    return out, tuple(found)


class DenialError(GraphQLError):
    """A denied selection's error, shared by every answer that denies the same selections in
    the same places (`_errors`): never changed once made (the error policy and the view leave
    a coded error as it is), and formatted once, for every response that carries it."""

    @functools.cached_property
    def formatted(self) -> GraphQLFormattedError:
        return super().formatted


# The errors of the stand-ins found in an answer, by (decision, their places): an answer of the
# same shape asked again gets the same errors, built and formatted once. Cleared when full.
MAX_ERRORS = 4_096
_errors: dict[tuple[Any, ...], tuple[Decision, tuple[DenialError, ...], bool]] = {}


def _denial_errors(
    decision: Decision, found: tuple[Found, ...]
) -> tuple[tuple[DenialError, ...], bool]:
    """The errors of the places `found` (each response path's, the first path's first), and
    whether a denied non-null root field nulls the whole answer."""
    key = (id(decision), *[(place[0], id(place[2])) for place in found])
    kept = _errors.get(key)  # holds the decision, and so its denials: their ids are theirs
    if kept is not None:
        return kept[1], kept[2]
    by_path: dict[tuple[str, ...], list[Found]] = {}
    for place in found:
        by_path.setdefault(place[1], []).append(place)
    errors = []
    nulls_answer = False
    for trail, _keys, denial in (place for places in by_path.values() for place in places):
        error = DenialError(denial.message, path=list(trail), extensions={"code": FORBIDDEN})
        error.nodes, error.source, error.positions, error.locations = denial.placed
        errors.append(error)
        nulls_answer = nulls_answer or (denial.non_null and len(trail) == 1)
    if len(_errors) >= MAX_ERRORS:
        _errors.clear()
    made = tuple(errors)
    _errors[key] = (decision, made, nulls_answer)
    return made, nulls_answer


def apply_denials(decision: Decision, result: Any) -> None:
    """Null the denied selections in `result` (an execution result) and add their errors: one
    for each response path (list indices aside) where a denied selection turned up, at its
    first place."""
    data = getattr(result, "data", None)
    if not decision.stand_ins or not isinstance(data, dict):
        return
    result.data, found = _stand_ins(data, decision)
    if not found:
        return
    errors, nulls_answer = _denial_errors(decision, found)
    if nulls_answer:
        result.data = None  # a non-null root field that fails nulls the whole answer
    result.errors = [*(result.errors or ()), *errors]

"""The schema extensions' hooks, told apart once per extension class, not on every operation.

Strawberry enters an operation's hooks (operation, parse, validate, execute, each streamed
result) through context managers that look every extension's hook up again each time: an
`inspect` test of the function's kind, then `contextlib.contextmanager` over a method bound to
the extension, which copies the function's name, doc and attributes (`functools.wraps`). With
seven extensions that is 28 look-ups and eleven wrappers an operation, a tenth of an uncached
answer's instructions (2.26 M a request before, 2.05 M after, counted by callgrind in process
on the typical Supplier query). Here a hook's kind and its context-manager factory are worked
out once per (class, hook) and each operation only binds its own extension instance to them:
the hooks run, nest and unwind exactly as Strawberry's own managers make them (`CplSchema`
uses this runner; `tests/test_library_internals.py` checks the Strawberry names it relies on).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.extensions.context import (
    ExecutingContextManager,
    ExtensionContextManagerBase,
    OperationContextManager,
    ParsingContextManager,
    StreamResultContextManager,
    ValidationContextManager,
    WrappedHook,
)
from strawberry.extensions.runner import SchemaExtensionsRunner

# By (extension class, hook name): None for a hook the class leaves as SchemaExtension's,
# (factory, is_async) for a generator hook, the function itself for a plain callable (which
# Strawberry's own `from_callable` wraps, as it always has: a stream result's async hook).
_Kind = tuple[Callable[..., Any], bool] | Callable[..., Any] | None
_KINDS: dict[tuple[type, str], _Kind] = {}


def _kind(extension_class: type, hook_name: str) -> _Kind:
    function = getattr(extension_class, hook_name)
    if function is getattr(SchemaExtension, hook_name):
        return None
    if inspect.isgeneratorfunction(function):
        return contextlib.contextmanager(function), False
    if inspect.isasyncgenfunction(function):
        return contextlib.asynccontextmanager(function), True
    if callable(function):
        return function
    raise ValueError(f"Hook {hook_name} on {extension_class} must be callable: {function!r}")


class _KnownHooks(ExtensionContextManagerBase):
    """`get_hook` from the class's kinds, worked out once."""

    def get_hook(self, extension: SchemaExtension) -> WrappedHook | None:
        key = (type(extension), self.HOOK_NAME)
        try:
            kind = _KINDS[key]
        except KeyError:
            kind = _KINDS[key] = _kind(*key)
        if kind is None:
            return None
        if isinstance(kind, tuple):
            factory, is_async = kind
            hook = functools.partial(factory, extension)
            return WrappedHook(extension=extension, hook=hook, is_async=is_async)
        return self.from_callable(extension, kind)


class _Operation(_KnownHooks, OperationContextManager):
    pass


class _Validation(_KnownHooks, ValidationContextManager):
    pass


class _Parsing(_KnownHooks, ParsingContextManager):
    pass


class _Executing(_KnownHooks, ExecutingContextManager):
    pass


class _StreamResult(_KnownHooks, StreamResultContextManager):
    pass


class KnownHooksRunner(SchemaExtensionsRunner):
    """Strawberry's runner, its context managers finding hooks by `_KINDS`."""

    def operation(self) -> OperationContextManager:
        return _Operation(self.extensions)

    def validation(self) -> ValidationContextManager:
        return _Validation(self.extensions)

    def parsing(self) -> ParsingContextManager:
        return _Parsing(self.extensions)

    def executing(self) -> ExecutingContextManager:
        return _Executing(self.extensions)

    def on_stream_result(self, result: Any) -> StreamResultContextManager:
        return _StreamResult(self.extensions, result)

"""The extensions' hooks found once per class (`schema.hooks`) are Strawberry's own: the same
hooks, in the same order, of the same kind, nesting and unwinding as its managers make them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from strawberry.extensions import SchemaExtension
from strawberry.extensions.runner import SchemaExtensionsRunner

from schema.build import build_schema
from schema.hooks import KnownHooksRunner

STAGES = ("operation", "parsing", "validation", "executing")


@pytest.mark.parametrize("stage", STAGES)
def test_each_stage_has_strawberrys_hooks(stage):
    extensions = build_schema().get_extensions()
    ours = getattr(KnownHooksRunner(None, extensions), stage)().hooks
    theirs = getattr(SchemaExtensionsRunner(None, extensions), stage)().hooks
    assert [(h.extension, h.is_async) for h in ours] == [(h.extension, h.is_async) for h in theirs]
    assert ours, f"no extension hooks {stage}"


class Traced(SchemaExtension):
    """Notes where its hooks stand, as a list shared by its instances."""

    def __init__(self, trace: list[str], name: str) -> None:
        self.trace, self.name = trace, name

    def on_operation(self) -> Iterator[None]:
        self.trace.append(f"{self.name} in")
        try:
            yield
        finally:
            self.trace.append(f"{self.name} out")

    async def on_execute(self) -> AsyncIterator[None]:
        self.trace.append(f"{self.name} executes")
        yield
        self.trace.append(f"{self.name} executed")


async def test_hooks_nest_and_unwind_as_strawberrys_do():
    traces = []
    for runner in (KnownHooksRunner, SchemaExtensionsRunner):
        trace: list[str] = []
        extensions = [Traced(trace, "a"), Traced(trace, "b")]
        stages = runner(None, extensions)
        with pytest.raises(RuntimeError):
            async with stages.operation():
                async with stages.executing():
                    trace.append("body")
                raise RuntimeError("the operation fails")
        traces.append(trace)
    assert traces[0] == traces[1] == [
        "a in", "b in", "a executes", "b executes", "body", "b executed", "a executed",
        "b out", "a out",
    ]  # fmt: skip

"""The one graph search: fewest-step routes from a start, breadth first, with a fixed tie-break.

Two rules need it: the planner (the shortest upgrade route to the latest firmware) and the write
rules (would a new pathway close a cycle, and which). Both want the same answer for the same
graph whatever order its rows were read in, so the order is the caller's to fix: given each
firmware's outgoing steps in ascending order, the route kept to each firmware is, among its
fewest-step routes, the one whose sequence of steps is lexicographically smallest (firmware
leave the queue in the order of their routes, so the first route found to one is the smallest).

Pure and stdlib-only, like the planner that calls it tens of thousands of times per request: a
step is anything with the `to_id` of the firmware it leads to, read as a plain attribute.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

__all__ = ["Step", "fewest_step_routes"]


class Step(Protocol):
    """One edge of a firmware graph: a pathway, or a link of the cycle check."""

    @property
    def to_id(self) -> int: ...


S = TypeVar("S", bound=Step)


def fewest_step_routes(
    start_id: int, outgoing: Mapping[int, Sequence[S]]
) -> dict[int, tuple[S, ...]]:
    """The route (the steps taken) from `start_id` to every firmware it reaches, itself by ().

    `outgoing` holds each firmware's steps in the order to try them."""
    routes: dict[int, tuple[S, ...]] = {start_id: ()}
    queue = deque((start_id,))
    while queue:
        node_id = queue.popleft()
        route = routes[node_id]
        for step in outgoing.get(node_id, ()):
            if step.to_id not in routes:
                routes[step.to_id] = (*route, step)
                queue.append(step.to_id)
    return routes

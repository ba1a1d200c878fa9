"""The model: a sequential specification of the system under test.

A model says what a single, correct copy of the system would do. The checker searches for an
order of the history's operations, consistent with real time, in which every operation is
legal according to the model. To check your own system, subclass :class:`Model` and write
:meth:`Model.init` and :meth:`Model.step`; everything else has a sensible default::

    class Counter(Model):
        name = "counter"
        functions = frozenset({"add", "read"})

        def init(self, key=None):
            return 0 if self.initial is None else self.initial

        def step(self, state, op):
            if op.f == "add":
                return True, state + op.input
            return op.output == state, state  # a read must see the current value

        def read_only(self, op):
            return op.f == "read"

and pass it to :func:`checker.check` or as ``raftlab check --model mymodule:Counter``.

States must be hashable and immutable (ints, strings, tuples): the search keeps a cache of
(linearized operations, state) pairs, and cheap states make it fast.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any, ClassVar

from checker.operation import Operation

State = Hashable


class Model:
    """Base class of models. Subclasses set ``name`` and override :meth:`init` and :meth:`step`.

    ``initial`` is the value given by ``--initial`` (already parsed from JSON), or ``None``.
    """

    name: ClassVar[str] = "model"
    #: the operation names (``f``) the model understands; ``None`` accepts any
    functions: ClassVar[frozenset[str] | None] = None

    def __init__(self, initial: Any = None):
        self.initial = initial

    # -- the specification ------------------------------------------------------------------

    def init(self, key: Any = None) -> State:
        """The state before any operation (of partition ``key``, for partitioned models)."""
        return self.initial

    def step(self, state: State, op: Operation) -> tuple[bool, State]:
        """Apply ``op`` to ``state``: ``(legal, new_state)``. Must be pure.

        ``op.f`` names the operation, ``op.input`` is the invoke's value and ``op.output`` the
        completion's. For an ``info`` op (``op.ok`` is false) the output is unknown: the step
        must say whether the op *could* take effect in ``state`` and what it would do then.
        """
        raise NotImplementedError

    # -- optional: structure that makes the search faster -----------------------------------

    def partition(self, op: Operation) -> Any:
        """The partition ``op`` belongs to (P-compositionality).

        Operations in different partitions never affect each other, so each partition is
        checked on its own; the default ``None`` puts everything in one partition.
        """
        return None

    def read_only(self, op: Operation) -> bool:
        """True if ``op`` never changes the state whenever it is legal (e.g. a read).

        The search then takes such an op as soon as it is legal without branching on it, and
        drops an ``info`` read-only op altogether (it can have no visible effect).
        """
        return False

    def footprint(self, op: Operation) -> Hashable | None:
        """What ``op`` touches, if ops with different footprints commute (optional).

        Two ops with different (non-``None``) footprints must give the same legality and
        final state in either order from any state, e.g. operations on different keys of
        one map. The search then only branches on ops sharing the footprint of the op that
        must complete next (a partial-order reduction): it checks the same thing, faster.
        ``None`` (the default) means "may interact with anything".
        """
        return None

    def state_key(self, ops: Sequence[Operation]) -> Callable[[State], Hashable] | None:
        """Given a partition's ops, a map from a state to its key in the search's cache
        (optional; ``None`` means the state itself).

        Two states may share a key only if no sequence of these ops can tell them apart
        (same legality at every step, and equal states after the first op that differs),
        e.g. two register values that no read returns and no cas expects. Configurations
        that differ only in such states are then explored once.
        """
        return None

    def read_guard(
        self, op: Operation, between: Sequence[Operation]
    ) -> Callable[[State], bool] | None:
        """For an ok read-only ``op``: a test that is false for a state from which no
        order of (some of) the ``between`` ops can make ``op`` legal (optional).

        ``between`` are the state-changing ops that may still take effect before ``op``
        (not yet linearized, invoked before ``op`` completed). The search drops a
        configuration as soon as a waiting or upcoming read is doomed, instead of finding
        out much later. ``None`` means no such test.
        """
        return None

    def prune(self, ops: Sequence[Operation]) -> list[Operation]:
        """Drop ``info`` ops whose effect no other op can observe (optional).

        Only ops that could be left out of *every* linearization without making it illegal
        may be dropped: an ``info`` op may always "never have happened".
        """
        return list(ops)

    def unconditional(self, op: Operation) -> Operation | None:
        """``op`` taking effect whatever the state, e.g. a cas as a write of its new value
        (optional; ``None``: no such variant).

        Only used to name the culprit of a violation: when the history is linearizable with
        this variant in place of ``op``, the op to look at is ``op`` (a cas that cannot have
        succeeded, though its effect was seen)."""
        return None

    def validate(self, op: Operation) -> str | None:
        """A message saying what is wrong with ``op``'s shape, or ``None`` if it is fine."""
        if self.functions is not None and op.f not in self.functions:
            allowed = ", ".join(sorted(self.functions))
            return f"model {self.name} has no operation {op.f!r} (expected one of: {allowed})"
        return None

    # -- descriptions for the explanation and the report ------------------------------------

    def anomalies(self, ops: Sequence[Operation]) -> list[dict[str, Any]]:
        """For an invalid partition's ops: what went wrong, in the model's own terms
        (optional), e.g. ``[{"kind": "lost", "element": 7, "text": "..."}]``."""
        return []

    def describe_op(self, op: Operation) -> str:
        """A short text such as ``write(3)`` or ``read() -> 3``."""
        arg = "" if op.input is None else _text(op.input)
        out = f" -> {_text(op.output)}" if op.ok and op.output is not None else ""
        return f"{op.f}({arg}){out}"

    def describe_state(self, state: State) -> str:
        return _text(state)

    def state_json(self, state: State) -> Any:
        """The state as a JSON value (tuples become lists)."""
        return _jsonable(state)


def _jsonable(v: Any) -> Any:
    if isinstance(v, tuple | list):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, frozenset | set):
        return sorted((_jsonable(x) for x in v), key=repr)
    return v


def _text(v: Any) -> str:
    if v is None:
        return "nil"
    if isinstance(v, tuple | list):
        return "[" + " ".join(_text(x) for x in v) + "]"
    if isinstance(v, str):
        return _quoted(v)
    return str(v)


@functools.lru_cache(maxsize=4096)
def _quoted(s: str) -> str:
    """A string as JSON text, memoised: an explanation describes the same keys and values
    over and over."""
    return json.dumps(s)

"""The built-in models: register, cas-register, kv, multi-register and mutex.

``register``, ``cas-register`` and ``kv`` are one register per key (Jepsen's ``independent``):
operations with different keys never interact, so each key is its own partition. They differ
only in the operations they accept:

==============  =====================================================================
register        ``read`` (output: the value), ``write`` (input: the value)
cas-register    register + ``cas`` (input ``[old, new]``: sets ``new`` if the value is ``old``)
kv              cas-register + ``delete`` (value becomes null) and Porcupine's
                ``get``/``put``/``append`` (``append`` concatenates strings)
==============  =====================================================================

``list-append`` is a list per key: ``append`` adds one element, ``read`` returns the list.
``multi-register`` checks transactions (``txn`` of ``[read k v]`` / ``[write k v]``) over
several registers at once; ``mutex`` checks ``acquire``/``release`` of one lock.
"""

from __future__ import annotations

import importlib
from bisect import bisect_left
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import msgspec

from checker.model import Model, State, _jsonable, _text
from checker.operation import Operation, freeze

READS = frozenset({"read", "get"})
_UNOBSERVED = ("<a value no remaining operation can observe>",)
WRITES = frozenset({"write", "put"})
_MISSING: Any = object()  # not in a memo yet (None is a memoised "no guard")


def register_step(value: Any, op: Operation, joined: dict[Any, Any] | None = None
                  ) -> tuple[bool, Any]:
    """One register's step: the logic shared by register, cas-register and kv.

    ``joined`` memoises ``append`` results so that equal states are the same object: the
    search hashes states constantly, and a string made once keeps its hash.
    """
    f = op.f
    if f in READS:
        return (op.output == value) if op.status == "ok" else True, value
    if f in WRITES:
        return True, op.input
    if f == "cas":
        old, new = op.input
        return (True, new) if value == old else (False, value)
    if f == "append":
        if value is None:
            return True, op.input
        if joined is None:
            return True, value + op.input
        k = (value, op.input)
        out = joined.get(k)
        if out is None:
            out = joined[k] = value + op.input
        return True, out
    if f == "delete":
        return True, None
    return False, value


class Register(Model):
    """A read/write register per key (operations without a key share one register)."""

    name: ClassVar[str] = "register"
    functions: ClassVar[frozenset[str] | None] = frozenset({"read", "write"})

    def __init__(self, initial: Any = None):
        super().__init__(initial)
        self._joined: dict[Any, Any] = {}
        self._guards: dict[Any, Any] = {}

    def init(self, key: Any = None) -> State:
        return freeze(self.initial)

    def step(self, state: State, op: Operation) -> tuple[bool, State]:
        return register_step(state, op, self._joined)

    def partition(self, op: Operation) -> Any:
        return op.key

    def read_only(self, op: Operation) -> bool:
        return op.f in READS

    def unconditional(self, op: Operation) -> Operation | None:
        """A cas as a write of its new value."""
        if op.f != "cas":
            return None
        return msgspec.structs.replace(op, f="write", input=op.input[1])

    def validate(self, op: Operation) -> str | None:
        msg = super().validate(op)
        if msg is None and op.f == "cas":
            v = op.input
            if not (isinstance(v, tuple) and len(v) == 2):
                return f"cas needs value [old, new], got {_text(op.invoke.value)}"
        if msg is None and op.f == "append" and not isinstance(op.input, str | tuple):
            return f"append needs a string or list value, got {_text(op.invoke.value)}"
        return msg

    def value_of(self, state: State, key: Any) -> Any:
        """The register value of ``key`` in ``state`` (one register per partition here)."""
        return state

    def read_guard(
        self, op: Operation, between: Sequence[Operation]
    ) -> Callable[[State], bool] | None:
        """A read of value ``o`` is doomed when no op that may still come first produces ``o``.

        Those ops can only set a value (write, put, cas, delete) or extend it
        (append). Without appends the value must already be ``o`` unless one of them sets
        ``o``; with appends, ``o`` must start with the value (or with a value one of them
        sets).
        """
        if op.f not in READS or not op.ok:
            return None
        key, want = op.key, op.output
        bases = set()
        appends = False
        for o in between:
            if o.key != key:
                continue
            f = o.f
            if f == "append":
                appends = True
            elif f in WRITES:
                bases.add(o.input)
            elif f == "cas":
                bases.add(o.input[1])
            elif f == "delete":
                bases.add(None)
        # the guard depends only on these (without appends, only on whether some op sets
        # the value read): build each distinct one once
        memo_key = (key, want, frozenset(bases) if appends else want in bases, appends)
        guard = self._guards.get(memo_key, _MISSING)
        if guard is _MISSING:
            guard = self._guards[memo_key] = self._register_guard(key, want, bases, appends)
        return guard

    def _register_guard(self, key: Any, want: Any, bases: set[Any], appends: bool
                        ) -> Callable[[State], bool] | None:
        value_of = self.value_of
        if not appends:
            if want in bases:
                return None
            return lambda state: value_of(state, key) == want
        if not isinstance(want, str | tuple):
            return None
        empty = "" if isinstance(want, str) else ()

        def prefix(v: Any) -> bool:
            v = empty if v is None else v
            return type(v) is type(want) and want[: len(v)] == v

        if any(prefix(b) for b in bases):
            return None
        return lambda state: prefix(value_of(state, key))

    def state_key(self, ops: Sequence[Operation]) -> Callable[[State], Any] | None:
        """Values nobody can observe are all alike: a value is observable if some read
        returns it or some cas expects it (with appends: if such a value starts with it,
        since appending can only extend it). An unobservable value stays unobservable
        under appends, and a write replaces it, so no op can tell two of them apart."""
        return self._value_key(ops)

    def _value_key(self, ops: Sequence[Operation]) -> Callable[[State], Any] | None:
        seen = set()
        for o in ops:
            if o.f in READS and o.ok:
                seen.add(o.output)
            elif o.f == "cas":
                seen.add(o.input[0])
        if not any(o.f == "append" for o in ops):
            return lambda v: v if v in seen else _UNOBSERVED
        if not all(isinstance(w, str | tuple) for w in seen):
            return None
        texts = sorted(w for w in seen if isinstance(w, str))
        seqs = sorted(w for w in seen if isinstance(w, tuple))

        def key(v: Any) -> Any:
            if v is None or v in seen:
                return v
            pool = texts if isinstance(v, str) else seqs if isinstance(v, tuple) else None
            if pool is None:
                return v
            k = bisect_left(pool, v)  # the observed values starting with v sort right here
            if k < len(pool) and pool[k][: len(v)] == v:
                return v
            return _UNOBSERVED

        return key

    def prune(self, ops: Sequence[Operation]) -> list[Operation]:
        """Drop info writes and cas whose new value nothing reads and no cas expects.

        If such an op took effect, the value it left would be overwritten before anyone
        looked (no read returns it, no cas compares with it), so the same linearization
        without it is legal too. With ``append`` present the value is observable through
        later appends, so nothing is dropped.
        """
        if all(o.status != "info" for o in ops) or any(o.f == "append" for o in ops):
            return list(ops)  # nothing to drop
        kept = list(ops)
        while True:
            seen: set[tuple[Any, Any]] = set()
            for o in kept:
                if o.f in READS and o.status == "ok":
                    seen.add((o.key, o.output))
                elif o.f == "cas":
                    seen.add((o.key, o.input[0]))
            out = []
            for o in kept:
                if o.status == "info" and o.f in WRITES and (o.key, o.input) not in seen:
                    continue
                if o.status == "info" and o.f == "cas" and (o.key, o.input[1]) not in seen:
                    continue
                out.append(o)
            if len(out) == len(kept):
                return out
            kept = out

    def describe_op(self, op: Operation) -> str:
        key = "" if op.key is None else f"{_text(op.key)}: "
        if op.f in READS:
            res = _text(op.output) if op.ok else "?"
            return f"{key}{op.f}() -> {res}"
        if op.f == "cas":
            old, new = op.input
            return f"{key}cas({_text(old)}, {_text(new)})"
        if op.f == "delete":
            return f"{key}delete()"
        return f"{key}{op.f}({_text(op.input)})"


class CasRegister(Register):
    """A register per key with compare-and-set (``cas [old new]``)."""

    name: ClassVar[str] = "cas-register"
    functions: ClassVar[frozenset[str] | None] = frozenset({"read", "write", "cas"})


class KV(Register):
    """A key-value map, one partition per key.

    With ``partitioned=False`` the whole map is one state (a sorted tuple of ``(key, value)``
    pairs) and the history one partition: slower, and only useful to validate the per-key
    split (P-compositionality) itself.
    """

    name: ClassVar[str] = "kv"
    functions: ClassVar[frozenset[str] | None] = frozenset(
        {"read", "write", "cas", "delete", "get", "put", "append"}
    )

    def __init__(self, initial: Any = None, partitioned: bool = True):
        super().__init__(initial)
        self.partitioned = partitioned
        self._initial = freeze(initial)

    def init(self, key: Any = None) -> State:
        return self._initial if self.partitioned else ()

    def partition(self, op: Operation) -> Any:
        return op.key if self.partitioned else None

    def footprint(self, op: Operation) -> Any:
        # operations on different keys commute; when partitioned, every key is alone anyway
        return None if self.partitioned else ("key", op.key)

    def value_of(self, state: State, key: Any) -> Any:
        if self.partitioned:
            return state
        for k, v in state:
            if k == key:
                return v
        return self._initial

    def step(self, state: State, op: Operation) -> tuple[bool, State]:
        if self.partitioned:
            return register_step(state, op, self._joined)
        key = op.key
        for i, (k, v) in enumerate(state):
            if k == key:
                ok, v2 = register_step(v, op, self._joined)
                if not ok or v2 == v:
                    return ok, state
                return True, state[:i] + ((k, v2),) + state[i + 1:]
        ok, v2 = register_step(self._initial, op, self._joined)
        if not ok or v2 == self._initial:
            return ok, state
        return True, tuple(sorted(state + ((key, v2),), key=repr))

    def state_key(self, ops: Sequence[Operation]) -> Callable[[State], Any] | None:
        if self.partitioned:
            return self._value_key(ops)
        groups: dict[Any, list[Operation]] = {}
        for o in ops:
            groups.setdefault(o.key, []).append(o)
        keys = {k: self._value_key(g) for k, g in groups.items()}
        initial = self._initial

        def key(state: State) -> Any:
            # per key (ops see only their key's value); a key at its initial value is absent
            return tuple((k, keys[k](v) if keys.get(k) else v) for k, v in state
                         if v != initial)

        return key

    def describe_state(self, state: State) -> str:
        if self.partitioned:
            return _text(state)
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in state) + "}"

    def state_json(self, state: State) -> Any:
        if self.partitioned:
            return super().state_json(state)
        return {str(k): _jsonable(v) for k, v in state}


class ListAppend(Register):
    """A list per key: ``append`` adds its value (one element) at the end, ``read`` returns
    the whole list (null before the first append reads as the empty list).

    The history reads the way a user writes it -- ``append 7``, ``read -> [1, 3, 7]`` -- and
    the state is a tuple. Unlike a register, nothing is forgotten: an append lost under
    later appends is missing from every later read. :mod:`checker.append` names the
    element behind a violation (lost, stale, reordered, duplicated, never written).
    """

    name: ClassVar[str] = "list-append"
    functions: ClassVar[frozenset[str] | None] = frozenset({"read", "append"})

    def init(self, key: Any = None) -> State:
        return ()

    def step(self, state: State, op: Operation) -> tuple[bool, State]:
        if op.f == "append":
            return True, state + (op.input,)  # type: ignore[operator]
        if not op.ok:
            return True, state
        out = op.output
        return state == (() if out is None else out), state

    def validate(self, op: Operation) -> str | None:
        msg = Model.validate(self, op)
        if msg is None and op.f == "read" and op.ok and not (
                op.output is None or isinstance(op.output, tuple)):
            return f"a list-append read returns a list, got {_text(op.complete and op.complete.value)}"
        if msg is None and op.f == "append" and isinstance(op.input, tuple):
            return f"append adds one element, got the list {_text(op.invoke.value)}"
        return msg

    def read_guard(
        self, op: Operation, between: Sequence[Operation]
    ) -> Callable[[State], bool] | None:
        """A read of ``L`` is doomed once the list is not a prefix of ``L``: lists only grow."""
        if op.f not in READS or not op.ok:
            return None
        want = () if op.output is None else op.output
        key = (op.key, want)
        guard = self._guards.get(key, _MISSING)
        if guard is _MISSING:
            guard = self._guards[key] = lambda state: want[: len(state)] == state
        return guard

    def state_key(self, ops: Sequence[Operation]) -> Callable[[State], Any] | None:
        return None  # every list differs: appended elements are unique

    def prune(self, ops: Sequence[Operation]) -> list[Operation]:
        """Drop ``info`` appends of elements no read returned: appends are always legal, so
        such an append can take effect after every read, where nothing observes it."""
        seen: set[Any] = set()
        for o in ops:
            if o.f in READS and o.ok and isinstance(o.output, tuple):
                seen.update(o.output)
        return [o for o in ops if not (o.status == "info" and o.f == "append"
                                       and o.input not in seen)]

    def anomalies(self, ops: Sequence[Operation]) -> list[dict[str, Any]]:
        from checker.append import anomalies

        return anomalies(ops)


TXN_READS = frozenset({"read", "r"})
TXN_WRITES = frozenset({"write", "w"})


class MultiRegister(Model):
    """Several registers read and written by transactions (Knossos' multi-register).

    ``f`` is ``txn``, the value a list of micro-ops ``[read k v]`` / ``[write k v]``; a read's
    ``v`` in the completion is what it saw. ``--initial`` is an object of register values,
    e.g. ``{"x": 0, "y": 0}``; registers it does not name start as null.
    """

    name: ClassVar[str] = "multi-register"
    functions: ClassVar[frozenset[str] | None] = frozenset({"txn"})

    def init(self, key: Any = None) -> State:
        init = self.initial or {}
        if not isinstance(init, dict):
            raise ValueError("multi-register --initial must be a JSON object, e.g. {\"x\": 0}")
        return tuple(sorted(((k, freeze(v)) for k, v in init.items()), key=repr))

    def validate(self, op: Operation) -> str | None:
        msg = super().validate(op)
        if msg is not None:
            return msg
        for value in (op.input, op.output if op.ok else None):
            if value is None:
                continue
            if not isinstance(value, tuple):
                return f"txn needs a list of [read k v] / [write k v], got {_text(value)}"
            for mop in value:
                if not (isinstance(mop, tuple) and len(mop) == 3 and
                        mop[0] in TXN_READS | TXN_WRITES):
                    return f"txn micro-op must be [read k v] or [write k v], got {_text(mop)}"
        if op.ok and op.output is not None and len(op.output) != len(op.input or ()):
            return "txn completion has a different number of micro-ops than its invoke"
        return None

    def step(self, state: State, op: Operation) -> tuple[bool, State]:
        regs = dict(state)
        mops = op.output if op.ok and op.output is not None else op.input
        for f, k, v in mops:
            if f in TXN_READS:
                if op.ok and regs.get(k) != v:
                    return False, state
            else:
                regs[k] = v
        return True, tuple(sorted(regs.items(), key=repr))

    def read_only(self, op: Operation) -> bool:
        return all(m[0] in TXN_READS for m in (op.input or ()))

    def describe_op(self, op: Operation) -> str:
        mops = op.output if op.ok and op.output is not None else op.input
        return "txn(" + ", ".join(f"{m[0]} {_text(m[1])} {_text(m[2])}" for m in mops) + ")"

    def describe_state(self, state: State) -> str:
        return "{" + ", ".join(f"{_text(k)}: {_text(v)}" for k, v in state) + "}"

    def state_json(self, state: State) -> Any:
        return {str(k): _jsonable(v) for k, v in state}


class Mutex(Model):
    """One lock: ``acquire`` is legal only when free, ``release`` only when held."""

    name: ClassVar[str] = "mutex"
    functions: ClassVar[frozenset[str] | None] = frozenset({"acquire", "release"})

    def init(self, key: Any = None) -> State:
        return bool(self.initial)

    def step(self, state: State, op: Operation) -> tuple[bool, State]:
        if op.f == "acquire":
            return (not state), True
        return state, False

    def describe_op(self, op: Operation) -> str:
        return f"{op.f}()"

    def describe_state(self, state: State) -> str:
        return "held" if state else "free"


MODELS: dict[str, type[Model]] = {
    m.name: m for m in (Register, CasRegister, KV, ListAppend, MultiRegister, Mutex)
}


def load_model(spec: str, initial: Any = None, partitioned: bool = True) -> Model:
    """A model by name (``cas-register``) or import path (``mymodule:MyModel``).

    Raises ValueError naming the choices when ``spec`` is neither.
    """
    cls: Any
    if spec in MODELS:
        cls = MODELS[spec]
    elif ":" in spec:
        modname, _, attr = spec.partition(":")
        try:
            cls = getattr(importlib.import_module(modname), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"cannot load model {spec!r}: {e}") from None
        if not (isinstance(cls, type) and issubclass(cls, Model)):
            raise ValueError(f"model {spec!r} is not a subclass of checker.model.Model")
    else:
        raise ValueError(
            f"unknown model {spec!r}: expected one of {', '.join(MODELS)} or module:Class"
        )
    if cls is KV:
        return KV(initial, partitioned=partitioned)
    return cls(initial)


def infer_model(ops: Sequence[Operation]) -> str | None:
    """Guess the model from the operation names, or ``None`` if nothing fits."""
    fs = {o.f for o in ops}
    if not fs:
        return "cas-register"
    for name in ("register", "cas-register", "multi-register", "mutex"):
        allowed = MODELS[name].functions
        if allowed is not None and fs <= allowed:
            keyed = any(o.key is not None for o in ops)
            if name in ("register", "cas-register"):
                return "cas-register" if not keyed or "cas" in fs else "kv"
            return name
    if fs <= {"read", "append"} and "append" in fs and not any(
            o.f == "append" and isinstance(o.input, str | tuple) for o in ops):
        return "list-append"  # appends of elements, not Porcupine's concatenation
    kv = MODELS["kv"].functions
    if kv is not None and fs <= kv:
        return "kv"
    return None

"""The history record: the one interface between the tester and the checker.

A history is a sequence of :class:`Op` records, stored as JSON Lines (one object a line),
appended and flushed as operations happen so that a crashed run still leaves a usable
history. Semantics follow Jepsen:

* ``invoke`` -- a process began an operation;
* ``ok``     -- it took effect at some instant between its invoke and this completion;
* ``fail``   -- it definitely never took effect;
* ``info``   -- indeterminate: it may take effect at any instant after its invoke, or never.
  An invoke with no completion at all means the same as ``info``.

``process`` is an int for client workers and the string ``"nemesis"`` for fault injection;
nemesis records are kept for reports and ignored by the checker.
"""

from __future__ import annotations

import gc
import json
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import MappingProxyType
from typing import IO, Annotated, Any, Literal

import msgspec

TYPES = ("invoke", "ok", "fail", "info")
NEMESIS = "nemesis"


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a long history is read or checked.

    Reading builds millions of small objects and none of them forms a cycle, yet every few
    hundred allocations the collector walks them all again: with it paused, turning 200,000
    records into ops takes a quarter of the time. Reference counting still frees everything
    as usual; the collector resumes (if it was on) when the block ends."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


class HistoryError(ValueError):
    """Bad history input; the message names the file, the line and what was expected."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None):
        self.path, self.line, self.reason = path, line, message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class Op(msgspec.Struct, gc=False):
    """One history record.

    ``time`` is nanoseconds since the test started, on the control node's monotonic clock.
    ``key`` is set when the workload has keys (each key is checked independently).
    ``extra`` keeps any other fields of the record so that a round trip loses nothing.
    """

    index: int
    time: int
    type: str
    process: int | str
    f: str
    value: Any = None
    key: Any = None
    error: Any = None
    node: str | None = None
    extra: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def is_nemesis(self) -> bool:
        return self.process == NEMESIS

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "index": self.index,
            "time": self.time,
            "type": self.type,
            "process": self.process,
            "f": self.f,
        }
        if self.key is not None:
            d["key"] = self.key
        d["value"] = self.value
        if self.error is not None:
            d["error"] = self.error
        if self.node is not None:
            d["node"] = self.node
        d.update(self.extra)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=False)

    @classmethod
    def from_dict(cls, d: Any, path: str | None = None, line: int | None = None) -> Op:
        """Validate one decoded record; errors name the field and what was expected."""
        if not isinstance(d, dict):
            raise HistoryError(f"expected a JSON object, got {type(d).__name__}", path, line)
        for name in ("type", "process", "f"):
            if name not in d:
                raise HistoryError(f"missing field {name!r}", path, line)
        typ = d["type"]
        if typ not in TYPES:
            raise HistoryError(
                f"field 'type' must be one of {', '.join(TYPES)}, got {typ!r}", path, line
            )
        proc = d["process"]
        if not (isinstance(proc, int) and not isinstance(proc, bool)) and proc != NEMESIS:
            raise HistoryError(
                f"field 'process' must be an integer or \"nemesis\", got {proc!r}", path, line
            )
        f = d["f"]
        if not isinstance(f, str) or not f:
            raise HistoryError(f"field 'f' must be a non-empty string, got {f!r}", path, line)
        index = d.get("index", line if line is not None else 0)
        t = d.get("time", 0)
        for name, v in (("index", index), ("time", t)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise HistoryError(f"field {name!r} must be an integer, got {v!r}", path, line)
        node = d.get("node")
        if node is not None and not isinstance(node, str):
            raise HistoryError(f"field 'node' must be a string, got {node!r}", path, line)
        known = {"index", "time", "type", "process", "f", "value", "key", "error", "node"}
        extra = {k: v for k, v in d.items() if k not in known}
        return cls(
            index=index,
            time=t,
            type=typ,
            process=proc,
            f=f,
            value=d.get("value"),
            key=d.get("key"),
            error=d.get("error"),
            node=node,
            extra=extra,
        )


class _NotJson(ValueError):
    """A JSON text Python would accept but a history must not hold."""


def _constant(name: str) -> Any:
    raise _NotJson(f"{name} is not supported in a history (infinities and NaN cannot be "
                   "compared)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _NotJson(f"duplicate key {k!r} in an object")
            seen.add(k)
    return d


#: strict JSON for histories: no NaN or Infinity, no duplicate keys
_DECODER = json.JSONDecoder(parse_constant=_constant, object_pairs_hook=_object)


def loads(text: str, path: str | None = None, line: int | None = None) -> Any:
    """One JSON value of a history; what is wrong with it is a :class:`HistoryError`."""
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as e:
        raise HistoryError(f"not valid JSON ({e.msg} at column {e.colno})", path, line) from None
    except _NotJson as e:
        raise HistoryError(str(e), path, line) from None
    except RecursionError:
        raise HistoryError(NESTED_TOO_DEEPLY, path, line) from None


#: the message for values nested deeper than the reader can follow
NESTED_TOO_DEEPLY = "values nested too deeply to read (deeper than about 900 levels)"


#: the ``extra`` of every op that has none: one shared read-only mapping, not a dict per op
#: (a million-op history would spend a hundred megabytes on empty dicts)
_NO_EXTRA: Any = MappingProxyType({})
_KNOWN = frozenset({"index", "time", "type", "process", "f", "value", "key", "error", "node"})
_TYPES = frozenset(TYPES)


def ops_from_records(records: list[Any], lines: Sequence[int], path: str | None = None,
                     edn: bool = False, first: int = 0) -> list[Op]:
    """Decoded records (dicts) -> ops, fast: the loop every record of a long history takes.

    A record that is anything but plain goes to :meth:`Op.from_dict`, which builds it the
    careful way or raises the error naming its line. ``edn``: Jepsen's conventions, a
    record without ``index`` is numbered by position (JSONL: by line; ``first`` is the
    position of the first record), and a ``time`` that is nil or a float is read as 0 or
    truncated."""
    out: list[Op] = []
    append = out.append
    known = _KNOWN

    def careful(d: Any, n: int) -> Op:
        if edn and d.__class__ is dict:
            d = {"index": first + n, **d}
            t = d.get("time")
            d["time"] = 0 if t is None else int(t) if t.__class__ is float else t
        return Op.from_dict(d, path, lines[n])

    for n, d in enumerate(records):
        if d.__class__ is not dict or not d.keys() <= known:
            append(careful(d, n))
            continue
        get = d.get
        op = plain_op(get("index", first + n if edn else lines[n]), get("time", 0),
                      get("type"), get("process"), get("f"), get("value"), get("key"),
                      get("error"), get("node"))
        append(careful(d, n) if op is None else op)
    return out


def plain_op(index: Any, t: Any, typ: Any, proc: Any, f: Any, value: Any, key: Any,
             error: Any, node: Any) -> Op | None:
    """The op of a record's fields when each has the type an op needs (``None`` when one
    does not: then :meth:`Op.from_dict` converts it or names what is wrong). The check
    every record of a long history takes, whichever reader decoded it."""
    if (typ not in _TYPES or f.__class__ is not str or not f
            or (proc.__class__ is not int and proc != NEMESIS)
            or index.__class__ is not int or t.__class__ is not int
            or (node is not None and node.__class__ is not str)):
        return None
    return Op(index, t, typ, proc, f, value, key, error, node, _NO_EXTRA)


#: records decoded at once: big enough for the decoder to do the work, small enough that a
#: million-op history never holds all its records as dicts at the same time
CHUNK = 20_000


#: characters decoded at once when every line holds a record (about 20,000 records)
PIECE = 2_000_000


def text_pieces(text: str, size: int) -> Iterator[str]:
    """``text`` in pieces of whole lines, about ``size`` characters each, without the line
    end between two pieces or the one ending the text: a long history is worked on a
    piece at a time, never as millions of lines."""
    start, end_of_text = 0, len(text)
    if text.endswith("\n"):
        end_of_text -= 1
    while start < end_of_text:
        end = text.find("\n", start + size, end_of_text)
        if end < 0:
            end = end_of_text
        yield text[start:end]
        start = end + 1


def ops_from_json_lines(text: str, path: str | None = None, edn: bool = False
                        ) -> tuple[list[Op], list[int]] | None:
    """A text of one JSON object a line -> (ops, the line of each), without cutting it into
    lines (see :func:`ops_from_json_pieces`)."""
    return ops_from_json_pieces(text_pieces(text, PIECE), path, edn)


def ops_from_json_pieces(pieces: Iterable[str | None], path: str | None = None,
                         edn: bool = False) -> tuple[list[Op], list[int]] | None:
    """Pieces of a text of one JSON object a line (:func:`text_pieces`) -> (ops, the line
    of each): a piece becomes one JSON array by turning its line ends into commas.
    ``None`` when a piece is ``None`` or not a valid array of as many objects as it has
    lines (a blank line, a bad line...): then :func:`ops_from_json_rows` reads line by
    line, and names a bad line."""
    ops: list[Op] = []
    line = 1
    for piece in pieces:
        if piece is None:
            return None
        count = piece.count("\n") + 1
        array = "[" + piece.replace("\n", ",") + "]"
        part = _plain_ops(array, count)
        if part is None:
            records = _bulk(array, count)
            if records is None:
                return None
            part = ops_from_records(records, range(line, line + count), path, edn,
                                    first=line - 1)
        ops += part
        line += count
    return ops, list(range(1, len(ops) + 1))


def parse_jsonl_text(text: str, path: str | None = None) -> tuple[list[Op], list[int]]:
    """A whole JSONL text -> (ops, the line of each): at once when every line holds a
    record (:func:`ops_from_json_lines`), else a chunk of lines at a time: each chunk is
    decoded as one JSON array when it is plain, else line by line (which names the bad
    line)."""
    whole = ops_from_json_lines(text, path)
    if whole is not None:
        return whole
    rows = text.split("\n")
    lines = [n for n, raw in enumerate(rows, start=1) if raw and not raw.isspace()]
    ops: list[Op] = []
    for at in range(0, len(lines), CHUNK):
        chunk = lines[at:at + CHUNK]
        part = ops_from_json_rows([rows[n - 1] for n in chunk], chunk, path)
        if part is None:
            part = [Op.from_dict(loads(rows[n - 1], path, n), path, n) for n in chunk]
        ops += part
    return ops, lines


def ops_from_json_rows(rows: list[str], lines: list[int], path: str | None = None,
                       edn: bool = False) -> list[Op] | None:
    """Rows of one JSON object each -> ops, decoded :data:`CHUNK` rows at a time; ``None``
    when some chunk is not plain (then the caller reads the careful way)."""
    ops: list[Op] = []
    for at in range(0, len(rows), CHUNK):
        text = "[" + ",".join(rows[at:at + CHUNK]) + "]"
        count = min(CHUNK, len(rows) - at)
        part = _plain_ops(text, count)
        if part is None:
            records = _bulk(text, count)
            if records is None:
                return None
            part = ops_from_records(records, lines[at:at + CHUNK], path, edn, first=at)
        ops += part
    return ops


class _Plain(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """A record with every field it needs and nothing else: msgspec checks each type as it
    decodes, so such records become ops without a check of their own in Python."""

    index: int
    time: int
    type: Literal["invoke", "ok", "fail", "info"]
    process: int | Literal["nemesis"]
    f: Annotated[str, msgspec.Meta(min_length=1)]
    value: Any = msgspec.UNSET
    key: Any = msgspec.UNSET
    error: Any = msgspec.UNSET
    node: str | None | msgspec.UnsetType = msgspec.UNSET


_PLAIN = msgspec.json.Decoder(list[_Plain])


def _plain_ops(text: str, rows: int) -> list[Op] | None:
    """The ops of ``text``, a JSON array of ``rows`` lines, when each line is one plain
    record; ``None`` when one is not (a field missing or of another type, an unknown
    field) or some object repeats a key: then the chunk takes the slower ways.

    msgspec keeps the last of repeated keys, so repeats are found by counting: outside
    strings and nested objects every colon ends one key, so the colons of the text add up
    to the fields the records hold only when no key repeats (a colon in a string or a
    nested object sends the chunk the slower way, which tells the two apart)."""
    try:
        recs = _PLAIN.decode(text)
    except (ValueError, RecursionError):
        return None
    if len(recs) != rows:  # e.g. two objects on one line
        return None
    n, unset = len(recs), msgspec.UNSET
    fields = 5 * n
    columns = []
    for col in ([r.value for r in recs], [r.key for r in recs], [r.error for r in recs],
                [r.node for r in recs]):
        absent = col.count(unset)
        fields += n - absent
        if absent == n:
            col = [None] * n
        elif absent:
            col = [None if v is unset else v for v in col]
        columns.append(col)
    if text.count(":") != fields:
        return None
    return [Op(r.index, r.time, r.type, r.process, r.f, v, k, e, nd, _NO_EXTRA)
            for r, v, k, e, nd in zip(recs, *columns, strict=True)]


def _bulk(text: str, rows: int) -> list[Any] | None:
    """The records of ``text``, a JSON array of ``rows`` lines, decoded in one call, or
    ``None`` when they need the careful reader: NaN or Infinity, a duplicate key (the keys
    decoded fall short of the keys written), or anything but one valid JSON object a line."""
    try:  # msgspec refuses NaN and Infinity itself, and decodes twice as fast as json
        records = msgspec.json.decode(text)
    except (ValueError, RecursionError):
        return None
    if len(records) != rows:  # e.g. "1, 2" on one line
        return None
    keys = 0
    for d in records:
        if d.__class__ is not dict:
            return None
        keys += len(d)
    if keys != text.count('":'):  # a duplicate key, nested objects, or '":' in a string
        return None
    return records


def read_jsonl(path: str | os.PathLike[str]) -> list[Op]:
    p = os.fspath(path)
    try:
        with open(p, encoding="utf-8") as fh:
            return parse_jsonl_text(fh.read(), p)[0]
    except UnicodeDecodeError as e:
        raise HistoryError(f"not UTF-8 text ({e.reason} at byte {e.start})", p) from None


class HistoryWriter:
    """Appends records to a JSONL file and flushes each one, so a crash loses nothing written.

    Thread-safe use is the caller's job (the runner serialises appends through one lock).
    """

    def __init__(self, path: str | os.PathLike[str], fsync: bool = False):
        self.path = os.fspath(path)
        self._fh: IO[str] = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        self._fsync = fsync

    def append(self, op: Op) -> None:
        self._fh.write(op.to_json() + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    def __enter__(self) -> HistoryWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_jsonl(ops: Iterable[Op], path: str | os.PathLike[str]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for op in ops:
            fh.write(op.to_json() + "\n")


def natural(key: Any) -> tuple[Any, ...]:
    """A sort key that puts keys in natural order: 2 before 10, "k2" before "k10"."""
    if isinstance(key, bool) or key is None:
        return (0, str(key))
    if isinstance(key, int | float):
        return (1, key)
    if isinstance(key, str):
        return (2, tuple((0, int(t), "") if t.isdigit() else (1, 0, t)
                         for t in re.findall(r"\d+|\D+", key)))
    return (3, repr(key))

"""History importers: raftlab JSONL, Jepsen EDN, and Porcupine's etcd and kv logs.

Every importer turns a file into :class:`History`: the records (``checker.history.Op``), the
source line of each, and the format's defaults (Porcupine's kv logs start every key at
``""``, its etcd logs are a cas-register starting at null). ``detect`` picks the format from
the first meaningful line; ``--format`` overrides it.

=================  =========================================================================
``jsonl``          raftlab's own history: one JSON object a line (see README.md)
``edn``            Jepsen: a vector or list of maps, or one map a line; ``;`` comments
``porcupine-etcd`` ``INFO  jepsen.util - 2	:invoke	:write	4`` (tabs or spaces)
``porcupine-kv``   EDN maps a line with ``:key`` and ``:f`` ``:get``/``:put``/``:append``
=================  =========================================================================
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

import msgspec

from checker.edn import EdnError, Reader, fast_json_pieces, fast_json_rows, record_of
from checker.history import (
    NESTED_TOO_DEEPLY,
    TYPES,
    HistoryError,
    Op,
    ops_from_json_pieces,
    ops_from_json_rows,
    ops_from_records,
    parse_jsonl_text,
    paused_gc,
)

FORMATS = ("jsonl", "edn", "porcupine-etcd", "porcupine-kv")
EXTENSIONS = (".jsonl", ".json", ".edn", ".log", ".txt")

_ETCD_LINE = re.compile(r"^INFO\s+jepsen\.util\s+-\s+(\S+)\s+(:\S+)\s+(:\S+)\s*(.*?)\s*$")
_KV_FS = frozenset({"get", "put", "append"})


@dataclass
class History:
    """A parsed history file: records, their source lines and the format's defaults."""

    path: str | None
    format: str
    ops: list[Op]
    lines: list[int]
    default_model: str | None = None
    default_initial: Any = None
    #: what a nil read means by default: Knossos' "unknown" for Jepsen EDN, else "value"
    nil_reads: str = "value"
    extra: dict[str, Any] = field(default_factory=dict)


#: Jepsen's other files, which look like histories but are not: file name -> what to say
UNSUPPORTED = {
    "history.txt": "Jepsen's history.txt is a human-readable rendering that loses values; "
                   "raftlab reads history.edn (use history.edn from the same folder)",
    "jepsen.log": "jepsen.log is Jepsen's log, not a history (use history.edn from the same "
                  "folder)",
}
_JEPSEN_TXT = re.compile(r"^(\d+|:nemesis)\t:(invoke|ok|fail|info)\t")
_JEPSEN_LOG = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")


#: how far :func:`detect` looks for the first meaningful line before it reads them all
_DETECT_CHARS = 65_536


def _first_lines(text: str) -> Iterator[str]:
    """The lines of ``text``, the whole lines of its first :data:`_DETECT_CHARS`
    characters first: a long history is not cut into its millions of lines to find one."""
    cut = text.rfind("\n", 0, _DETECT_CHARS) if len(text) > _DETECT_CHARS else -1
    if cut >= 0:
        yield from text[:cut].splitlines()
    yield from text[cut + 1:].splitlines()


def detect(text: str) -> str | None:
    """The format of ``text`` from its first meaningful line, or ``None`` if empty.

    Jepsen's ``history.txt`` and ``jepsen.log`` are recognised and refused by name
    (:class:`HistoryError`), rather than misread."""
    for raw in _first_lines(text):
        line = raw.strip()
        if not line or line.startswith(";"):
            continue
        if _ETCD_LINE.match(line):
            return "porcupine-etcd"
        if _JEPSEN_TXT.match(raw):
            raise HistoryError(UNSUPPORTED["history.txt"])
        if _JEPSEN_LOG.match(line):
            raise HistoryError(UNSUPPORTED["jepsen.log"])
        if line.startswith("{") and '"' in line.split(":", 1)[0]:
            return "jsonl"
        if line[0] in "[({#":
            return "edn"
        return "jsonl"  # let the JSONL parser name what is wrong
    return None


def parse(text: str, path: str | None = None, fmt: str | None = None) -> History:
    """Parse a history in format ``fmt`` (detected when ``None``)."""
    if fmt is None:
        try:
            fmt = detect(text)
        except HistoryError as e:
            raise HistoryError(e.reason, path) from None
    if fmt is None:
        return History(path, "empty", [], [])
    if fmt == "jsonl":
        ops, lines = parse_jsonl_text(text, path)
        return History(path, "jsonl", ops, lines)
    if fmt == "edn" or fmt == "porcupine-kv":
        return _parse_edn(text, path, fmt)
    if fmt == "porcupine-etcd":
        return _parse_etcd(text, path)
    raise HistoryError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}", path)


def load(path: str | os.PathLike[str], fmt: str | None = None) -> History:
    """Read and parse one history file; errors are :class:`HistoryError` naming the file."""
    p = os.fspath(path)
    why = UNSUPPORTED.get(os.path.basename(p))
    if why is not None and fmt is None:
        raise HistoryError(why, p)
    try:
        with open(p, "rb") as fh:
            data = fh.read()
    except OSError as e:
        raise HistoryError(f"cannot read: {e.strerror}", p) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HistoryError(f"not UTF-8 text, a binary file? ({e.reason} at byte {e.start})",
                           p, data.count(b"\n", 0, e.start) + 1) from None
    del data  # a long history should not be held twice
    if "\0" in text:
        line = text.count("\n", 0, text.index("\0")) + 1
        raise HistoryError("a NUL byte: a binary file, not a history", p, line)
    with paused_gc():
        return parse(text, p, fmt)


def _parse_edn(text: str, path: str | None, fmt: str) -> History:
    fast = _fast_edn(text, path)
    if fast is not None:
        return _edn_history(fast[0], fast[1], path, fmt)
    ops, lines = read_edn_fully(text, path)
    return _edn_history(ops, lines, path, fmt)


def _fast_edn(text: str, path: str | None) -> tuple[list[Op], list[int]] | None:
    """A line-per-op history's ops and lines the fast way: read straight into ops when that
    reader is compiled, else rewritten to JSON; ``None`` when the full reader must read it.
    Either gives exactly the ops and lines the full reader gives."""
    from checker import edn_lines  # (here: reading JSONL loads no compiled module)

    if edn_lines.COMPILED:
        return edn_lines.ops_from_edn_lines(text, path)
    pieces = fast_json_pieces(text)
    if pieces is not None:
        whole = ops_from_json_pieces(pieces, path, edn=True)
        if whole is not None:
            return whole
    rows = fast_json_rows(text)
    if rows is not None:
        ops = ops_from_json_rows(rows[0], rows[1], path, edn=True)
        if ops is not None:
            return ops, rows[1]
    return None


def read_edn_fully(text: str, path: str | None = None) -> tuple[list[Op], list[int]]:
    """An EDN history's ops and lines by the full reader, which reads any EDN and names
    what is wrong (:class:`HistoryError`)."""
    reader = Reader(text)
    try:
        forms = list(reader.records())
    except EdnError as e:
        raise HistoryError(f"bad EDN: {e}", path, e.line) from None
    except RecursionError:
        raise HistoryError(NESTED_TOO_DEEPLY, path, reader.line) from None
    records: list[Any] = []
    lines: list[int] = []
    for line, form in forms:
        record = record_of(form)
        if record is None:
            raise HistoryError(
                f"expected an operation map {{:type ... :process ... :f ...}}, got {_kind(form)}",
                path, line,
            )
        records.append(record)
        lines.append(line)
    return ops_from_records(records, lines, path, edn=True), lines


def _edn_history(ops: list[Op], lines: list[int], path: str | None, fmt: str) -> History:
    hist = History(path, "edn", ops, lines, nil_reads="unknown")
    if fmt == "porcupine-kv" or _looks_like_porcupine_kv(ops):
        hist.format = "porcupine-kv"
        hist.default_model = "kv"
        hist.default_initial = ""
        hist.nil_reads = "value"  # Porcupine's kv model: a get of a missing key is ""
    return hist


def split_independent(hist: History) -> History:
    """Jepsen's ``independent`` workloads write ``:value [k v]``: make ``k`` the record's key.

    Then each key is checked on its own, as Jepsen's independent checker does. Nemesis records
    are kept as they are; a client record whose value is not a ``[key value]`` pair (or a
    ``#jepsen.independent.Tuple{:key k :value v}``), or that already has a key, is bad input
    naming its line."""
    ops = []
    for op, line in zip(hist.ops, hist.lines, strict=True):
        if op.is_nemesis:
            ops.append(op)
            continue
        v = _tuple(op.value)
        if op.key is not None or v is None:
            v = op.value
            if op.key is not None:
                what = f"a record that has a key already ({op.key!r})"
            else:
                what = f"a vector of {len(v)}" if isinstance(v, list) else _kind(v)
            raise HistoryError(f"--independent: expected :value [key value], got {what}",
                               hist.path, line)
        ops.append(msgspec.structs.replace(op, key=v[0], value=v[1]))
    return replace(hist, ops=ops)


def _tuple(v: Any) -> list[Any] | None:
    """``[k v]`` for an independent workload's value (a pair, or a ``Tuple`` map), or None."""
    if isinstance(v, dict) and len(v) == 2 and "key" in v and "value" in v:
        return [v["key"], v["value"]]
    if isinstance(v, list) and len(v) == 2:
        return v
    return None


def looks_independent(ops: list[Op]) -> bool:
    """True when every client record's value is a ``[k v]`` pair and none has a key: the
    shape of Jepsen's independent workloads, which ``--independent`` splits by key."""
    seen = False
    for o in ops:  # (stops at the first record that is not such a pair: long histories)
        if o.is_nemesis:
            continue
        if o.key is not None or _tuple(o.value) is None:
            return False
        seen = True
    return seen


def _looks_like_porcupine_kv(ops: list[Op]) -> bool:
    return bool(ops) and all(o.f in _KV_FS and o.key is not None for o in ops)


def _kind(v: Any) -> str:
    if isinstance(v, list):
        return "a vector"
    if v is None:
        return "nil"
    return f"{type(v).__name__} {v!r}"


def _parse_etcd(text: str, path: str | None) -> History:
    ops: list[Op] = []
    lines: list[int] = []
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        m = _ETCD_LINE.match(line)
        if not m:
            raise HistoryError(
                "expected 'INFO  jepsen.util - <process> :<type> :<f> <value>'", path, lineno
            )
        proc_s, typ, f, value_s = m.groups()
        try:
            proc: int | str = int(proc_s)
        except ValueError:
            if proc_s != ":nemesis":
                raise HistoryError(f"process must be an integer, got {proc_s!r}", path,
                                   lineno) from None
            proc = "nemesis"
        typ = typ[1:]
        if typ not in TYPES:
            raise HistoryError(f"type must be one of {', '.join(TYPES)}, got {typ!r}", path,
                               lineno)
        try:
            value = Reader(value_s).read() if value_s else None
        except EdnError as e:
            raise HistoryError(f"bad value {value_s!r}: {e}", path, lineno) from None
        except RecursionError:
            raise HistoryError(NESTED_TOO_DEEPLY, path, lineno) from None
        ops.append(Op(index=len(ops), time=0, type=typ, process=proc, f=f[1:], value=value))
        lines.append(lineno)
    return History(path, "porcupine-etcd", ops, lines, default_model="cas-register")


def history_files(path: str) -> list[str]:
    """The history files under ``path``: itself if a file; for a directory, its run's
    ``history.jsonl``/``history.edn`` if it is a run folder, else every file with a history
    extension, recursing into subdirectories (not into symlinks such as ``latest``)."""
    if not os.path.isdir(path):
        return [path]
    for name in ("history.jsonl", "history.edn"):
        if os.path.isfile(os.path.join(path, name)):
            return [os.path.join(path, name)]
    out: list[str] = []
    for name in sorted(os.listdir(path)):
        if name.startswith("."):
            continue
        full = os.path.join(path, name)
        if os.path.isdir(full):
            if not os.path.islink(full):
                out.extend(history_files(full))
        elif name.endswith(EXTENSIONS):
            out.append(full)
    return out


"""A small EDN reader, enough for Jepsen histories.

Jepsen writes histories as EDN: a vector (or list) of maps, or one map a line, with ``;``
comments. Keywords become strings (``:invoke`` -> ``"invoke"``), ``nil`` becomes ``None``,
vectors and lists become Python lists, sets become lists, maps become dicts, and tagged
literals (``#jepsen.history.Op{...}``, ``#inst "..."``) are read as their untagged form.
Errors are :class:`EdnError` with the 1-based line of the offending character.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from typing import Any

from checker.history import text_pieces


class EdnError(ValueError):
    def __init__(self, message: str, line: int):
        super().__init__(message)
        self.line = line


_WS = " \t\r\n,"
_DELIMS = set(_WS) | set("()[]{}\";")
_INT = re.compile(r"[+-]?\d+N?$")
_FLOAT = re.compile(r"[+-]?\d+(\.\d*)?([eE][+-]?\d+)?M?$")
_RATIO = re.compile(r"[+-]?\d+/\d+$")
_STRING_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "b": "\b", "f": "\f"}
_CHARS = {"newline": "\n", "space": " ", "tab": "\t", "return": "\r", "formfeed": "\f",
          "backspace": "\b"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


class Reader:
    """Reads successive EDN forms from a text, tracking the line of each form."""

    def __init__(self, text: str):
        self.text = text
        self.pos = 0
        self.line = 1

    def _skip(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            c = text[self.pos]
            if c in _WS:
                if c == "\n":
                    self.line += 1
                self.pos += 1
            elif c == ";":
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end
            elif text.startswith("#_", self.pos):
                self.pos += 2
                self.read()  # discard the next form
            else:
                return

    def at_end(self) -> bool:
        self._skip()
        return self.pos >= len(self.text)

    def forms(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(line, form)`` for each top-level form."""
        while not self.at_end():
            line = self.line
            yield line, self.read()

    def records(self) -> Iterator[tuple[int, Any]]:
        """Yield ``(line, form)`` for each record: the elements of a top-level vector or list
        holding the whole history, or else each top-level form (one map a line)."""
        self._skip()
        if self.pos < len(self.text) and self.text[self.pos] in "([":
            closer = _CLOSERS[self.text[self.pos]]
            start = self.line
            self.pos += 1
            while True:
                self._skip()
                if self.pos >= len(self.text):
                    raise EdnError(f"unclosed {closer!r} opened on line {start}", self.line)
                if self.text[self.pos] == closer:
                    self.pos += 1
                    break
                line = self.line
                yield line, self.read()
            if not self.at_end():
                raise EdnError("unexpected form after the history's closing " + repr(closer),
                               self.line)
            return
        yield from self.forms()

    def read(self) -> Any:
        self._skip()
        if self.pos >= len(self.text):
            raise EdnError("unexpected end of input, expected a value", self.line)
        c = self.text[self.pos]
        if c in "([{":
            self.pos += 1
            items = self._read_seq(_CLOSERS[c])
            if c == "{":
                return self._to_map(items)
            return items
        if c in ")]}":
            raise EdnError(f"unexpected {c!r}", self.line)
        if c == '"':
            return self._read_string()
        if c == "#":
            return self._read_dispatch()
        if c == "\\":
            return self._read_char()
        return self._read_atom()

    def _read_seq(self, closer: str) -> list[Any]:
        start = self.line
        items: list[Any] = []
        while True:
            self._skip()
            if self.pos >= len(self.text):
                raise EdnError(f"unclosed collection opened on line {start}, expected {closer!r}",
                               self.line)
            c = self.text[self.pos]
            if c == closer:
                self.pos += 1
                return items
            if c in ")]}":
                raise EdnError(f"expected {closer!r}, got {c!r}", self.line)
            items.append(self.read())

    def _to_map(self, items: list[Any]) -> dict[Any, Any]:
        if len(items) % 2:
            raise EdnError("a map needs an even number of forms (key value pairs)", self.line)
        out: dict[Any, Any] = {}
        for k, v in zip(items[::2], items[1::2], strict=True):
            k = _hashable(k)
            if k in out:
                raise EdnError(f"duplicate map key {_show(k)}", self.line)
            out[k] = v
        return out

    def _read_string(self) -> str:
        text, n = self.text, len(self.text)
        self.pos += 1
        start_line = self.line
        out: list[str] = []
        while self.pos < n:
            c = text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c == "\\":
                self.pos += 1
                if self.pos >= n:
                    break
                e = text[self.pos]
                if e == "u":
                    hexd = text[self.pos + 1:self.pos + 5]
                    try:
                        out.append(chr(int(hexd, 16)))
                    except ValueError:
                        raise EdnError(f"bad unicode escape \\u{hexd}", self.line) from None
                    self.pos += 5
                    continue
                if e not in _STRING_ESCAPES:
                    raise EdnError(f"bad string escape \\{e}", self.line)
                out.append(_STRING_ESCAPES[e])
            else:
                if c == "\n":
                    self.line += 1
                out.append(c)
            self.pos += 1
        raise EdnError("unterminated string", start_line)

    def _read_dispatch(self) -> Any:
        nxt = self.text[self.pos + 1:self.pos + 2]
        if nxt == "{":
            self.pos += 2
            items = self._read_seq("}")  # a set, read as a list
            seen = set()
            for x in items:
                h = _hashable(x)
                if h in seen:
                    raise EdnError(f"duplicate element {_show(h)} in a set", self.line)
                seen.add(h)
            return items
        if nxt == "#":  # ##Inf, ##-Inf, ##NaN: no value a history can compare
            self.pos += 2
            raise EdnError(f"##{self._read_token()} is not supported in a history (infinities "
                           "and NaN cannot be compared)", self.line)
        if nxt == "_":
            self._skip()
            return self.read()
        # a tagged literal: #tag form -> form
        self.pos += 1
        tag = self._read_token()
        if not tag:
            raise EdnError("expected a tag after '#'", self.line)
        return self.read()

    def _read_char(self) -> str:
        self.pos += 1
        tok = self._read_token()
        if len(tok) == 1:
            return tok
        if tok in _CHARS:
            return _CHARS[tok]
        if tok.startswith("u") and len(tok) == 5:
            return chr(int(tok[1:], 16))
        if not tok and self.pos < len(self.text):  # e.g. \( or \space-like delimiters
            c = self.text[self.pos]
            self.pos += 1
            return c
        raise EdnError(f"bad character literal \\{tok}", self.line)

    def _read_token(self) -> str:
        text, n, start = self.text, len(self.text), self.pos
        while self.pos < n and text[self.pos] not in _DELIMS:
            self.pos += 1
        return text[start:self.pos]

    def _read_atom(self) -> Any:
        tok = self._read_token()
        if not tok:
            raise EdnError(f"unexpected {self.text[self.pos]!r}", self.line)
        if tok[0] == ":":
            if len(tok) == 1:
                raise EdnError("empty keyword ':'", self.line)
            return tok[1:]
        if tok == "nil":
            return None
        if tok == "true":
            return True
        if tok == "false":
            return False
        if tok[0].isdigit() or (len(tok) > 1 and tok[0] in "+-" and tok[1].isdigit()):
            if _INT.match(tok):
                return int(tok.rstrip("N"))
            if _FLOAT.match(tok):
                return float(tok.rstrip("M"))
            if _RATIO.match(tok):
                a, b = tok.split("/")
                return int(a) / int(b)
            raise EdnError(f"bad number {tok!r}", self.line)
        return tok  # a symbol: keep its name


def record_of(form: Any) -> dict[str, Any] | None:
    """A top-level form as a history record (its keys as strings), or ``None`` when it is
    not a map."""
    if not isinstance(form, dict):
        return None
    return {str(k): v for k, v in form.items()}


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted(((_hashable(k), _hashable(x)) for k, x in v.items()), key=repr))
    return v


# The fast path for Jepsen's line-per-op histories, as Clojure prints them: one flat map a
# line, entries separated by ", ", keys and values by one space, vector elements by spaces.
# Such a text is rewritten to JSON by a score of whole-text string replacements (keywords
# are few: the map keys, and the values of :type and :f) and decoded in one call. Anything
# the rewrite does not cover (strings, tags, sets, comments, symbols, ratios, nested maps,
# other spacing, a keyword the first lines do not have...) leaves the JSON invalid or fails
# a check, and the full reader takes over.
_KEYWORD = r":([A-Za-z*+!_?<>=.-][\w*+!?<>=./-]*)"
# map keys: a keyword after "{" (the first) or ", " and before a space; values: elsewhere
_FIRST_KEY = re.compile(r"^\{" + _KEYWORD + " ", re.M)
_MAP_KEY = re.compile(r", " + _KEYWORD + " ")
_VALUE = re.compile(r"(?:(?<=[^,\s] )|(?<=[\[(]))" + _KEYWORD + r"(?=[\s,\])}])")
# an entry of :type or :f and its value: Jepsen's ops always hold keywords there, so each
# key and value are rewritten in one pass (', :f :read' -> ',"f":"read"')
_JOINT = re.compile(r"(^\{|, ):(type|f) ([^\s,\])}]*)(?=[,}])", re.M)
_WHOLE_KEYWORD = re.compile(_KEYWORD + r"\Z")
_SAMPLE_LINES = 200  # lines the keywords are collected from; any other sends to the reader
_OP_TYPES = frozenset({"invoke", "ok", "fail", "info"})


#: lines (or characters) rewritten at a time: a chunk small enough to stay in the
#: processor's cache makes each of the rewrite's passes faster than one pass over a long
#: history
_REWRITE_LINES = 5_000
_REWRITE_CHARS = 500_000


def fast_json_pieces(text: str) -> Iterator[str | None] | None:
    """A line-per-op history in Clojure's printed form rewritten as JSON, one object on
    each line the map was on, a piece at a time (:func:`checker.history.text_pieces`); a
    piece is ``None`` when the rewrite does not cover it, and the whole is ``None`` when
    the text holds something it never covers. Blank lines and other spacing are left as
    they were, so they fail to decode: then :func:`fast_json_rows`."""
    plan = _plan(text)
    if plan is None:
        return None
    return (_rewrite(piece, plan) for piece in text_pieces(text, _REWRITE_CHARS))


def fast_json_rows(text: str) -> tuple[list[str], list[int]] | None:
    """A line-per-op history in Clojure's printed form rewritten as JSON, one object a row,
    with the line of each, or ``None`` when the text needs the full reader (which is always
    right). The rows may still fail to decode: then the full reader too."""
    plan = _plan(text)
    if plan is None:
        return None
    rows = text.split("\n")
    lines = [n for n, raw in enumerate(rows, start=1) if raw and not raw.isspace()]
    if not lines or text.count("{") != len(lines):  # one flat map a line, nothing nested
        return None
    out: list[str] = []
    for at in range(0, len(lines), _REWRITE_LINES):
        body = "\n".join(rows[n - 1].strip() for n in lines[at:at + _REWRITE_LINES])
        json_rows = _rewrite(body, plan)
        if json_rows is None:
            return None
        out += json_rows.split("\n")
    return out, lines


#: the rewrite of a text: its replacements in order, and whether nil must be told apart
#: from keywords holding "nil"
_Plan = tuple[list[tuple[str, str]], bool]


def _plan(text: str) -> _Plan | None:
    """What the rewrite replaces, from the first and last lines, or ``None`` when ``text``
    holds something it never covers."""
    if any(c in text for c in '"\\#;\t\x00'):
        return None
    end, start = 0, len(text)
    for _ in range(_SAMPLE_LINES):  # the first lines and the last ones
        end = text.find("\n", end) + 1 or len(text)
        start = text.rfind("\n", 0, max(start - 1, 0)) + 1
    sample = text[:end] + "\n" + text[max(start, end):]
    joint: dict[tuple[str, str], set[str]] = {}
    for prefix, key, value in _JOINT.findall(sample):
        joint.setdefault((prefix, key), set()).add(value)
    for where, found in list(joint.items()):
        names = {v[1:] for v in found if _WHOLE_KEYWORD.match(v)}
        if len(names) < len(found):  # some value is not a keyword: key and value apart
            del joint[where]
        else:
            # Jepsen's op types always (an :info may first come late, from the nemesis
            # or a crash)
            joint[where] = names | _OP_TYPES if where[1] == "type" else names
    if joint:
        sample = _JOINT.sub(lambda m: "" if (m[1], m[2]) in joint else m[0], sample)
    first = set(_FIRST_KEY.findall(sample)) - {k for p, k in joint if p == "{"}
    keys = set(_MAP_KEY.findall(sample)) - {k for p, k in joint if p == ", "}
    values = set(_VALUE.findall(sample))
    if not any(k == "type" for _, k in joint):
        values |= _OP_TYPES
    plan = [("(", "["), (")", "]")] if "(" in text or ")" in text else []
    for (prefix, key), names in joint.items():  # longest first: ':read' never cuts
        for name in sorted(names, key=len, reverse=True):  # ':read-only' short
            plan.append((f"{prefix}:{key} :{name}", f'{prefix[0]}"{key}":"{name}"'))
    plan += [(f"{{:{name} ", f'{{"{name}":') for name in first]
    plan += [(f", :{name} ", f',"{name}":') for name in keys]
    plan += [(":" + name, f'"{name}"') for name in sorted(values, key=len, reverse=True)]
    every = [*first, *keys, *values, *(n for names in joint.values() for n in names)]
    return plan, any("nil" in name for name in every)


def _rewrite(body: str, plan: _Plan) -> str | None:
    """Lines of Clojure-printed maps as lines of JSON objects, or ``None`` (see
    :func:`fast_json_rows`).

    Every replacement that meets something it does not cover leaves text that is not JSON
    (a ":" where a key or a value should be, a keyword cut short, ",," ...), so the decoder
    refuses it rather than reading something else. (Few passes, each a whole-text
    replacement of a pattern with a name in it: each costs about as much as the others.)"""
    if not (body.startswith("{") and body.endswith("}")):
        return None
    replacements, careful_nil = plan
    for old, new in replacements:
        body = body.replace(old, new)
    body = body.replace(" ", ",")  # what is left: vector elements
    if careful_nil:
        body = body.replace(":nil", ":null").replace("[nil", "[null").replace(",nil", ",null")
    else:
        body = body.replace("nil", "null")
    return body


def _show(v: Any) -> str:
    """A value as EDN-ish text for messages (keywords were read as plain strings)."""
    return f":{v}" if isinstance(v, str) else repr(v)


def loads_all(text: str) -> list[tuple[int, Any]]:
    """Every top-level form of ``text`` with the line it starts on."""
    return list(Reader(text).forms())


# --------------------------------------------------------------------------- writing


class Keyword(str):
    """A string written as an EDN keyword (``Keyword("ok")`` -> ``:ok``)."""


_KEYWORD_NAME = re.compile(r"^[A-Za-z*+!_?<>=-][\w*+!?<>=.-]*(/[\w*+!?<>=.-]+)?$")


def keyword_key(name: str) -> Any:
    """A map key as Jepsen spells it: ``valid`` -> ``:valid?``, ``per_key`` -> ``:per-key``;
    a string that cannot be a keyword stays a string."""
    k = "valid?" if name == "valid" else name.replace("_", "-")
    return Keyword(k) if _KEYWORD_NAME.match(k) else name


def plain_keyword(name: str) -> Any:
    """A map key as a keyword spelled as it is (``in_flight`` -> ``:in_flight``), so that a
    history's values read back unchanged; a string that cannot be a keyword stays a string."""
    return Keyword(name) if _KEYWORD_NAME.match(name) else name


def dumps(v: Any, key: Any = keyword_key) -> str:
    """One EDN form for ``v``: dicts are maps (string keys through ``key``), lists and tuples
    vectors, sets sets, ``None`` nil; a :class:`Keyword` is written as one, other strings as
    strings. The reader above reads it back (keywords as plain strings)."""
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, Keyword):
        return ":" + v
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "nil"
    if isinstance(v, dict):
        return "{" + ", ".join(
            f"{dumps(key(k) if isinstance(k, str) and not isinstance(k, Keyword) else k, key)} "
            f"{dumps(x, key)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(dumps(x, key) for x in v) + "]"
    if isinstance(v, (set, frozenset)):
        return "#{" + " ".join(sorted(dumps(x, key) for x in v)) + "}"
    return json.dumps(str(v), ensure_ascii=False)

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
            out[_hashable(k)] = v
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
            return self._read_seq("}")  # a set, read as a list
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


def _hashable(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_hashable(x) for x in v)
    if isinstance(v, dict):
        return tuple(sorted(((_hashable(k), _hashable(x)) for k, x in v.items()), key=repr))
    return v


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

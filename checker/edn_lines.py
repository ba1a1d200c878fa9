"""Jepsen's line-per-op EDN read straight into ops: the fast way for the common shape.

Jepsen writes ``history.edn`` one flat map a line, as Clojure prints it:
``{:type :ok, :f :read, :value [3 4], :process 3, :time 123, :index 7}``. Such a line is
read here into an :class:`~checker.history.Op` in one pass over its characters, without a
dict or a text rewrite on the way. The values it reads itself are the ones ops are made of:
keywords, integers, nil, true/false, strings without escapes and vectors of those. A line
holding anything else (an escaped string, a nested map, a set, a list, a tagged literal, a
float, a comment after the map, a field an op does not know...) is read by the full reader
(:class:`checker.edn.Reader`) on its own. A text that is not one form a line (a history in
one vector, a map split across lines) or holds a line the full reader refuses gives
``None``: then the full reader reads the whole text and names what is wrong. Either way
the ops are exactly those the full reader gives.

``raftlab compile`` compiles this module with mypyc (see ``raftnode/accel.py``): then a
line takes about as long as msgspec takes for a JSON line.
"""

from __future__ import annotations

from typing import Any, Final

from checker.edn import EdnError, Reader, record_of
from checker.history import HistoryError, Op, ops_from_records, plain_op

#: whether this module runs compiled (``raftlab compile``): interpreted, a line takes five
#: times as long as the whole-text rewrite of :mod:`checker.edn`, used instead then
COMPILED: Final = not __file__.endswith(".py")
#: what a value read here is when the full reader must read its line
_OTHER: Final = object()
#: the bit of each field an op knows
_INDEX: Final = 1
_TIME: Final = 2
_TYPE: Final = 4
_PROCESS: Final = 8
_F: Final = 16
_VALUE: Final = 32
_KEY: Final = 64
_ERROR: Final = 128
_NODE: Final = 256


def ops_from_edn_lines(text: str, path: str | None = None
                       ) -> tuple[list[Op], list[int]] | None:
    """The ops of a history of one EDN map a line (blank lines and ``;`` comment lines
    allowed), with the line of each, or ``None`` when the full reader must read the whole
    text."""
    ops: list[Op] = []
    lines: list[int] = []
    names: dict[str, str] = {}  # each keyword's one string: a million ops share a few
    n = len(text)
    pos = 0
    line = 0
    while pos < n:
        line += 1
        end = text.find("\n", pos)
        if end < 0:
            end = n
        start = pos
        pos = end + 1
        if end > start and text[end - 1] == "\r":
            end -= 1
        if start == end or text[start] == ";":
            continue
        op = _line(text, start, end, len(ops), names)
        if op is None:
            if text[start] in "[(":
                return None  # a history in one vector or list: the full reader's
            got = _by_reader(text[start:end], path, line, len(ops))
            if got is _OTHER:
                return None
            if got is None:
                continue  # only whitespace, comments or discarded forms
            op = got
        ops.append(op)
        lines.append(line)
    return ops, lines


def _by_reader(text: str, path: str | None, line: int, position: int) -> Any:
    """The op of one line read by the full reader; ``None`` when it holds no form; _OTHER
    when it is not one operation map on its own (the whole text is then the full
    reader's, whose error names what is wrong)."""
    try:
        forms = list(Reader(text).forms())
    except (EdnError, RecursionError):
        return _OTHER
    if not forms:
        return None
    if len(forms) != 1:
        return _OTHER
    record = record_of(forms[0][1])
    if record is None:
        return _OTHER
    try:
        return ops_from_records([record], [line], path, edn=True, first=position)[0]
    except HistoryError:
        return _OTHER


def _line(text: str, i: int, end: int, position: int, names: dict[str, str]) -> Op | None:
    """The op of the map on ``text[i:end]``, or ``None`` when the full reader must read
    the line."""
    if text[i] != "{":
        return None
    i += 1
    seen = 0
    index: Any = position
    time: Any = 0
    typ: Any = None
    process: Any = None
    f: Any = None
    value: Any = None
    key: Any = None
    error: Any = None
    node: Any = None
    while True:
        while i < end and (text[i] == " " or text[i] == ","):
            i += 1
        if i >= end:
            return None
        if text[i] == "}":
            i += 1
            break
        if text[i] != ":":
            return None
        bit, i = _field(text, i + 1, end)
        if bit == 0 or seen & bit:
            return None  # a field an op does not know, or one written twice
        seen |= bit
        v, i = _value(text, i, end, names)
        if v is _OTHER:
            return None
        if bit == _TYPE:
            typ = v
        elif bit == _F:
            f = v
        elif bit == _VALUE:
            value = v
        elif bit == _PROCESS:
            process = v
        elif bit == _TIME:
            time = v
        elif bit == _INDEX:
            index = v
        elif bit == _KEY:
            key = v
        elif bit == _ERROR:
            error = v
        else:
            node = v
    if i != end or not (seen & _TYPE and seen & _F and seen & _PROCESS):
        return None
    return plain_op(index, time, typ, process, f, value, key, error, node)


def _field(text: str, i: int, end: int) -> tuple[int, int]:
    """The bit of the field whose name (a keyword followed by one space) starts at ``i``,
    and where its value starts; 0 for any other name. (One comparison a character, each
    compiled to a comparison of two numbers: the hottest lines of a long history.)"""
    if i + 1 >= end:
        return 0, i
    c = ord(text[i])
    if c == 116 and i + 4 < end and text[i + 4] == " ":  # t
        if text[i + 1] == "y" and text[i + 2] == "p" and text[i + 3] == "e":
            return _TYPE, i + 5
        if text[i + 1] == "i" and text[i + 2] == "m" and text[i + 3] == "e":
            return _TIME, i + 5
    elif c == 102 and text[i + 1] == " ":  # f
        return _F, i + 2
    elif c == 118 and i + 5 < end and text[i + 5] == " ":  # v
        if text[i + 1] == "a" and text[i + 2] == "l" and text[i + 3] == "u" \
                and text[i + 4] == "e":
            return _VALUE, i + 6
    elif c == 112 and i + 7 < end and text[i + 7] == " ":  # p
        if text[i + 1] == "r" and text[i + 2] == "o" and text[i + 3] == "c" \
                and text[i + 4] == "e" and text[i + 5] == "s" and text[i + 6] == "s":
            return _PROCESS, i + 8
    elif c == 105 and i + 5 < end and text[i + 5] == " ":  # i
        if text[i + 1] == "n" and text[i + 2] == "d" and text[i + 3] == "e" \
                and text[i + 4] == "x":
            return _INDEX, i + 6
    elif c == 107 and i + 3 < end and text[i + 3] == " ":  # k
        if text[i + 1] == "e" and text[i + 2] == "y":
            return _KEY, i + 4
    elif c == 101 and i + 5 < end and text[i + 5] == " ":  # e
        if text[i + 1] == "r" and text[i + 2] == "r" and text[i + 3] == "o" \
                and text[i + 4] == "r":
            return _ERROR, i + 6
    elif c == 110 and i + 4 < end and text[i + 4] == " " and text[i + 1] == "o" \
            and text[i + 2] == "d" and text[i + 3] == "e":  # n
        return _NODE, i + 5
    return 0, i


def _token_end(text: str, i: int, end: int) -> int:
    """Where the token from ``i`` ends (at a space, comma, ``]`` or ``}``, or the line's
    end); -1 when a character ends it that this module does not read after a token."""
    while i < end:
        c = ord(text[i])
        if c == 32 or c == 44 or c == 93 or c == 125:  # space , ] }
            return i
        if c == 34 or c == 40 or c == 41 or c == 59 or c == 91 or c == 123 or c < 14:
            return -1  # " ( ) ; [ { or a control character: \t \r \n...
        i += 1
    return i


def _value(text: str, i: int, end: int, names: dict[str, str]) -> tuple[Any, int]:
    """The value at ``i`` and where it ends; _OTHER when the full reader must read it."""
    if i >= end:
        return _OTHER, i
    c = ord(text[i])
    if c == 58:  # :
        j = _token_end(text, i + 1, end)
        if j <= i + 1:
            return _OTHER, i
        name = text[i + 1:j]
        return names.setdefault(name, name), j
    if 48 <= c <= 57 or ((c == 45 or c == 43) and i + 1 < end  # 0-9, or - + and 0-9
                         and 48 <= ord(text[i + 1]) <= 57):
        j = i if 48 <= c <= 57 else i + 1
        number = 0
        while j < end:
            d = ord(text[j])
            if d == 32 or d == 44 or d == 93 or d == 125:
                break
            if not 48 <= d <= 57:
                return _OTHER, i  # a float, a ratio, 5N...: the full reader's
            number = number * 10 + (d - 48)
            j += 1
        return (-number if c == 45 else number), j
    if c == 91:  # [
        items: list[Any] = []
        i += 1
        while True:
            while i < end and (text[i] == " " or text[i] == ","):
                i += 1
            if i >= end:
                return _OTHER, i
            if text[i] == "]":
                return items, i + 1
            v, i = _value(text, i, end, names)
            if v is _OTHER:
                return _OTHER, i
            items.append(v)
    if c == 34:  # "
        j = text.find('"', i + 1, end)
        if j < 0:
            return _OTHER, i
        s = text[i + 1:j]
        if "\\" in s:
            return _OTHER, i  # escapes are the full reader's
        return s, j + 1
    j = _token_end(text, i, end)
    if j <= i:
        return _OTHER, i
    word = text[i:j]
    if word == "nil":
        return None, j
    if word == "true":
        return True, j
    if word == "false":
        return False, j
    return _OTHER, i  # a symbol, or a form the full reader reads

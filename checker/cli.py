"""``raftlab check``: check one or more histories for linearizability.

Exit code: the worst verdict (0 linearizable, 1 not, 2 unknown), or 254 when an argument or
a history is bad (the message names the file, the line and what was expected).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
from typing import Any

from checker import linearizability
from checker.formats import (
    FORMATS,
    History,
    history_files,
    load,
    looks_independent,
    split_independent,
)
from checker.history import HistoryError, natural, paused_gc
from checker.linearizability import EMPTY, NIL_READS, CheckResult, check
from checker.model import Model
from checker.models import MODELS, infer_model, load_model
from checker.operation import pair
from checker.verdict import EXIT_BAD_INPUT, exit_code, worst

SHOW_ALL_PARTITIONS = 20  # list every partition's verdict up to this many


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "check",
        help="check histories for linearizability",
        description="Check histories (files, or directories of them) for linearizability. "
        "Formats: raftlab JSONL, Jepsen EDN, Porcupine's etcd and kv logs (auto-detected). "
        "Exit code: 0 linearizable, 1 not, 2 unknown, 254 bad arguments or input.",
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="history file or directory")
    p.add_argument("--model", metavar="M",
                   help=f"{', '.join(MODELS)}, module:Class for your own, or set (Jepsen's "
                   "set checker: add/read histories, no search) (default: from the format, "
                   "else guessed from the operations)")
    p.add_argument("--initial", metavar="JSON",
                   help="the model's initial value as JSON, e.g. 0 or '{\"x\": 0}' "
                   "(default: null; Porcupine kv logs: \"\")")
    p.add_argument("--format", choices=FORMATS, help="history format (default: detected)")
    p.add_argument("--timeout", type=float, metavar="S",
                   help="give up on a history after S seconds: verdict unknown")
    p.add_argument("--max-memory", type=float, metavar="GB",
                   help="give up when the checker's memory exceeds GB: verdict unknown "
                   "(default: half the available memory, at most 8)")
    p.add_argument("--independent", action="store_true",
                   help="Jepsen independent workloads: split each client value [k v] into "
                   "key k and value v, and check every key on its own")
    p.add_argument("--no-partition", action="store_true",
                   help="kv: check all keys together as one state (slow; for validation)")
    p.add_argument("--first-violation", action="store_true",
                   help="stop at the first invalid partition (others reported as skipped)")
    p.add_argument("--nil-reads", choices=NIL_READS,
                   help="what a read that returned nil means: unknown (Knossos: legal in any "
                   "state) or value (the value was nil, e.g. the key was absent) (default: "
                   "unknown for Jepsen EDN, value for raftlab JSONL and Porcupine logs)")
    p.add_argument("--allow-empty", action="store_true",
                   help="a history with no client operation is linearizable (default: "
                   "unknown, exit 2: nothing was tested)")
    p.add_argument("--json", action="store_true",
                   help="print one JSON document (docs/results.md) instead of text")
    p.add_argument("--html", metavar="FILE",
                   help="also draw each history's violations as a self-contained HTML page "
                   "(several histories: FILE-<history>.html)")
    # nothing is left to do after the output: the process may end without freeing
    # the last history (tester.cli.entry)
    p.set_defaults(func=run, quick_exit=True)
    return p


class _Stdout:
    """Printing that survives a closed pipe (``raftlab check ... | head``): the checking
    goes on and the exit code is still the verdict's."""

    closed = False

    @classmethod
    def print(cls, text: str = "") -> None:
        if cls.closed:
            return
        try:
            print(text, flush=True)
        except BrokenPipeError:
            cls.closed = True
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())  # no second error when Python exits


def _fail(message: str) -> int:
    print(f"raftlab check: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run(args: argparse.Namespace) -> int:
    initial: Any = None
    if args.initial is not None:
        try:
            initial = json.loads(args.initial)
        except json.JSONDecodeError as e:
            return _fail(f"--initial is not valid JSON ({e.msg} at column {e.colno}): "
                         f"{args.initial!r}")
    if args.timeout is not None and args.timeout <= 0:
        return _fail("--timeout must be a positive number of seconds")
    if args.max_memory is not None and args.max_memory <= 0:
        return _fail("--max-memory must be a positive number of gigabytes")
    if args.model is not None and args.model != "set":
        try:
            load_model(args.model, initial)
        except ValueError as e:
            return _fail(str(e))
    if args.html:
        problem = _html_problem(args.html)
        if problem:
            return _fail(f"--html {args.html}: {problem}")
    files: list[str] = []
    for path in args.paths:
        found = history_files(path)
        if not found:
            return _fail(f"{path}: no history files (.jsonl, .edn, .log, .txt) in this directory")
        files.extend(found)
    args.html_many = len(files) > 1

    entries: list[dict[str, Any]] = []
    for path in files:
        entry, result = _check_one(path, args, initial)
        entries.append(entry)
        if not args.json:
            _print_entry(entry, result)
    verdict = worst(e["valid"] for e in entries if e["error"] is None)
    errors = sum(1 for e in entries if e["error"] is not None)
    summary = {
        "histories": len(entries),
        "valid": sum(1 for e in entries if e["error"] is None and e["valid"] is True),
        "invalid": sum(1 for e in entries if e["error"] is None and e["valid"] is False),
        "unknown": sum(1 for e in entries if e["error"] is None and e["valid"] == "unknown"),
        "errors": errors,
    }
    if args.json:
        _Stdout.print(json.dumps({"valid": verdict, "histories": entries, "summary": summary},
                                 default=str))
    else:
        _Stdout.print(f"{summary['histories']} histories: {summary['valid']} linearizable, "
              f"{summary['invalid']} not, {summary['unknown']} unknown, {errors} unreadable"
              f" -> {_word(verdict) if not errors else 'bad input'}")
    return EXIT_BAD_INPUT if errors else exit_code(verdict)


#: the last history checked and what its check built, kept when the process ends after its
#: output (see _check_one)
_HELD: list[Any] = []


def _check_one(
    path: str, args: argparse.Namespace, initial: Any
) -> tuple[dict[str, Any], CheckResult | None]:
    entry: dict[str, Any] = {"path": path, "format": None, "error": None, "valid": "unknown"}
    # the process ends after the output (tester.cli.entry): rather than free the history
    # and the check's operations object by object, keep them out of the collector's sight
    program = getattr(args, "program", False)
    # one pause of the collector for the whole history: between reading and checking it
    # would walk every op read (tens of milliseconds per 100,000 ops)
    with paused_gc():
        if program:
            linearizability.RETAIN = []
        entry, result, hist = _check_paused(path, args, initial, entry)
        if program:
            _HELD[:] = [hist, linearizability.RETAIN]
            gc.freeze()
        return entry, result


def _check_paused(path: str, args: argparse.Namespace, initial: Any, entry: dict[str, Any]
                  ) -> tuple[dict[str, Any], CheckResult | None, History | None]:
    try:
        hist = load(path, args.format)
        if getattr(args, "independent", False):
            hist = split_independent(hist)
        entry["format"] = hist.format
        limit = int(args.max_memory * (1 << 30)) if args.max_memory else None
        if args.model == "set":  # the set checker: no search, no model
            from checker.set import check_set  # (here: other checks need not import it)

            result: Any = check_set(hist.ops)
        else:
            result = check(hist, _model_for(hist, args, initial), timeout=args.timeout,
                           max_memory=limit, first_violation=args.first_violation,
                           nil_reads=args.nil_reads, allow_empty=args.allow_empty)
    except HistoryError as e:
        entry["error"] = {"path": e.path or path, "line": e.line, "message": e.reason}
        return entry, None, None
    entry.update(result.to_dict())
    if not args.independent and looks_independent(hist.ops):
        entry["hint"] = ("every client value is a [key value] pair (Jepsen's independent "
                         "workloads): check each key on its own with --independent")
    if getattr(args, "html", None) and result.model != "set":
        from checker import visualize

        visualize.write_html(result, hist.ops,
                             visualize.html_path(args.html, path, args.html_many))
    return entry, result, hist


def _html_problem(target: str) -> str | None:
    """Why ``--html`` cannot be written, checked before any work is done (or ``None``)."""
    if os.path.isdir(target):
        return "is a directory (expected the name of an HTML file to write)"
    folder = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(folder):
        return f"folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"folder {folder} is not writable"
    return None


def _model_for(hist: History, args: argparse.Namespace, initial: Any) -> Model:
    name = args.model or hist.default_model
    if args.initial is None and hist.default_initial is not None:
        initial = hist.default_initial
    if name is None:
        name = infer_model(pair(hist.ops, hist.lines, hist.path))
        if name is None:
            fs = sorted({o.f for o in hist.ops if not o.is_nemesis})
            raise HistoryError(f"no built-in model handles operations {', '.join(fs)}; "
                               "choose one with --model", hist.path)
    try:
        return load_model(name, initial, partitioned=not args.no_partition)
    except ValueError as e:
        raise HistoryError(str(e), hist.path) from None


def _word(v: Any) -> str:
    return {True: "linearizable", False: "NOT linearizable"}.get(v, "unknown")


def _key(key: Any) -> str:
    return json.dumps(key, default=str)


def _op_text(op: dict[str, Any], key: Any, keyed: bool) -> str:
    """``process 5, key 0: read() -> 49``: who did what."""
    text = op["text"]
    if keyed:
        # models of several keys name the key in the op's text already ("k": read() -> 1)
        text = text.removeprefix(f"{_key(key)}: ")
    where = f"process {op['process']}" + (f", key {_key(key)}" if keyed else "")
    return f"{where}: {text}"


def _print_entry(entry: dict[str, Any], result: CheckResult | None) -> None:
    path = entry["path"]
    if result is None:
        err = entry["error"]
        where = f"{err['path']}:{err['line']}" if err["line"] is not None else err["path"]
        print(f"{path}: bad input: {where}: {err['message']}", file=sys.stderr)
        return
    st = result.stats
    why = f" ({_REASONS.get(result.reason, result.reason)})" if result.reason else ""
    nil_reads = getattr(result, "nil_reads", None)  # (the set checker has no such rule)
    nil = f"nil reads {nil_reads}, " if nil_reads else ""
    if nil_reads == "unknown":
        nil = f"nil reads unknown ({st['nil_reads']}), "
    _Stdout.print(f"{path}: {_word(result.valid)}{why} [{entry['format']}, model {result.model}, "
          f"{nil}{st['invokes']} ops: {st['ok']} ok, {st['fail']} fail, {st['info']} info; "
          f"{st['partitions']} partition(s); {result.time_s:.3f} s]")
    if entry.get("hint"):
        _Stdout.print(f"  hint: {entry['hint']}")
    parts = sorted(result.partitions, key=lambda p: natural(p.key))
    if len(parts) > 1:
        counts = {"linearizable": 0, "not": 0, "unknown": 0, "skipped": 0}
        for p in parts:
            counts[_part_word(p.valid, p.reason, short=True)] += 1
        _Stdout.print("  partitions: " + ", ".join(f"{n} {w}" for w, n in counts.items()
                                                    if n or w != "skipped"))
        for p in parts:  # every key when there are few, else the ones not linearizable
            if p.valid is not True or len(parts) <= SHOW_ALL_PARTITIONS:
                word = _part_word(p.valid, p.reason)
                reason = f" ({p.reason})" if p.reason and word != "skipped" else ""
                _Stdout.print(f"  key {_key(p.key)}: {word}{reason} "
                              f"[{p.ops} ops, {p.time_s:.3f} s]")
    for p in parts:
        if p.valid is False:
            _print_violation(p.key, p.violation, len(parts) > 1 or p.key is not None)


_REASONS = {EMPTY: "empty: nothing was tested, no client operation in the history"}


def _part_word(valid: Any, reason: str | None, short: bool = False) -> str:
    """A partition's verdict in words; one left unsearched by --first-violation is skipped."""
    if valid == "unknown" and reason == "skipped":
        return "skipped"
    if short:
        return {True: "linearizable", False: "not"}.get(valid, "unknown")
    return _word(valid)


def _print_violation(key: Any, v: dict[str, Any] | None, keyed: bool) -> None:
    if v is None:
        return
    ops = {o["id"]: o for o in v["operations"]}
    bad = ops.get(v["op"])
    label = f"key {_key(key)}: " if keyed else ""
    if bad is not None:
        _Stdout.print(f"  cannot linearize op {bad['id']}: {_op_text(bad, key, keyed)} "
              f"(invoked at index {bad['invoke']['index']}"
              + (f", completed at index {bad['complete']['index']})" if bad["complete"]
                 else ")"))
        if v.get("culprit"):
            _Stdout.print(f"    {v['culprit']['why']}")
        stopped = ops.get(v.get("stopped_at"))
        if stopped is not None and stopped is not bad:
            _Stdout.print(f"    (the search got no further than op {stopped['id']}: "
                          f"{_op_text(stopped, key, keyed)})")
    for a in v.get("anomalies") or []:
        _Stdout.print(f"  {label}{a['kind']} {_key(a['element'])}: {a['text']}")
    _Stdout.print(f"  longest linearizable prefix ({len(v['prefix'])} ops), from "
          f"{v['initial_state']['text']}:")
    shown = v["prefix"][-20:]
    if len(v["prefix"]) > len(shown):
        _Stdout.print(f"    ... {len(v['prefix']) - len(shown)} earlier steps")
    for st in shown:
        o = ops[st["op"]]
        _Stdout.print(f"    op {o['id']:>5} p{o['process']:<4} {o['text']:<40} "
                      f"-> {st['state']['text']}")

"""The ``raftlab`` command: one entry point, one module per subcommand.

Each subcommand module exposes ``add_parser(subparsers)`` which registers its parser and sets
``func`` (taking the parsed args, returning an exit code). Every module is imported here so
``raftlab --help`` lists every subcommand; a command line naming a subcommand imports only
that one (``raftlab check`` on a long history should not pay for the simulator's imports).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from checker.verdict import EXIT_BAD_INPUT, EXIT_INTERNAL

# subcommand -> module providing add_parser(subparsers)
SUBCOMMANDS: dict[str, str] = {
    "check": "checker.cli",
    "fleet": "tester.fleet_cli",
    "test": "tester.test_cli",
    "sim": "tester.sim.cli",
    "compile": "raftnode.accel",
    "report": "tester.report_cli",
    "campaign": "tester.campaign",
    "cluster": "tester.cluster.cli",
    "serve": "tester.serve",
    "analyze": "tester.analyze",
    "heal": "tester.heal",
}


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on bad arguments; raftlab reserves 2 for 'unknown' and uses 254."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or of subcommand ``only`` alone."""
    parser = _Parser(
        prog="raftlab",
        description="Jepsen-style linearizability testing of distributed systems.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, modname in SUBCOMMANDS.items():
        if only is None or name == only:
            importlib.import_module(modname).add_parser(sub)
    return parser


def main(argv: list[str] | None = None, *, program: bool = False) -> int:
    """Run one command line; ``program`` when this process ends with it (:func:`entry`),
    which lets a command skip freeing what it will not use again."""
    words = sys.argv[1:] if argv is None else argv
    parser = build_parser(words[0] if words and words[0] in SUBCOMMANDS else None)
    args = parser.parse_args(words)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    args.program = program
    try:
        code = int(args.func(args))
        _ending.quick = program and bool(getattr(args, "quick_exit", False))
        return code
    except KeyboardInterrupt:
        print("raftlab: interrupted", file=sys.stderr)
        return 130
    except Exception:  # an internal error: say so, keep the traceback for the bug report
        import traceback

        traceback.print_exc()
        print("raftlab: internal error (exit 255); please report the traceback above",
              file=sys.stderr)
        return EXIT_INTERNAL


class _ending:
    #: set by a command that leaves nothing to finish but its output (``raftlab check``)
    quick = False


def entry() -> None:
    """The ``raftlab`` program. A command that checked a long history still holds millions
    of objects at its end, and freeing them one by one takes a tenth as long as the check
    did (70 ms for 100,000 ops); when that command asks for it, the output is flushed and
    the process ends at once, leaving the memory to the operating system."""
    code = main(program=True)
    if _ending.quick:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    entry()

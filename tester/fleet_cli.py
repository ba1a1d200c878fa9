"""``raftlab fleet``: kept at this path for ``tester.cli``; the CLI lives in tester.fleet.cli."""

from tester.fleet.cli import add_parser

__all__ = ["add_parser"]

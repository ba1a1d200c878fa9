"""Node events: what every node logs about its Raft state (docs/node-events.md), and the
safety properties raftlab checks on them after a run: :mod:`~tester.nodeevents.events` reads
them, :mod:`~tester.nodeevents.process` checks each node's log, :mod:`~tester.nodeevents.checks`
checks across nodes and gives the verdict, :mod:`~tester.nodeevents.html` shows it in the
report."""

from tester.nodeevents.checks import (
    PROPERTIES,
    check,
    check_events,
    elections,
    iter_messages,
    read_events,
    violated,
)

__all__ = ["PROPERTIES", "check", "check_events", "elections", "iter_messages", "read_events",
           "violated"]

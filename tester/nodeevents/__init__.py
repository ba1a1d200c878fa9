"""Node events: what every node logs about its Raft state (docs/node-events.md), and the
safety properties raftlab checks on them after a run (:mod:`tester.nodeevents.checks`) and
shows in the report (:mod:`tester.nodeevents.html`)."""

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

"""Verdicts and the exit codes that release pipelines gate on (Jepsen's convention).

A test run composes several checks with :func:`worst`: linearizability of the history, Raft
safety on the node events, and liveness after the final heal. Each is a detected defect when
it fails -- a cluster that never converges after every fault is healed is ``False`` like a
non-linearizable history -- so every one of them fails a gate with ``EXIT_INVALID``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Union

Verdict = Union[bool, Literal["unknown"]]  # noqa: UP007 - readable on 3.10

UNKNOWN: Verdict = "unknown"

EXIT_VALID = 0
EXIT_INVALID = 1
EXIT_UNKNOWN = 2
EXIT_BAD_INPUT = 254
EXIT_INTERNAL = 255


def worst(verdicts: Iterable[Verdict]) -> Verdict:
    """Compose verdicts: false beats unknown beats true; no verdicts at all is true."""
    seen_unknown = False
    for v in verdicts:
        if v is False:
            return False
        if v != True:  # noqa: E712 - "unknown" and anything odd count as unknown
            seen_unknown = True
    return UNKNOWN if seen_unknown else True


def exit_code(verdict: Verdict) -> int:
    if verdict is True:
        return EXIT_VALID
    if verdict is False:
        return EXIT_INVALID
    return EXIT_UNKNOWN

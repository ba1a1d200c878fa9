"""Deterministic simulation of raftnode's real Raft core (``raftlab sim``; see docs/sim.md).

``cluster`` drives cores like the server does, ``simulator`` runs one seeded fault schedule,
``invariants`` checks Raft's safety properties, ``scan`` runs many seeds on worker processes,
``shrink`` reduces a failing schedule and ``cli`` is the command.
"""

from raftnode.accel import guard as _guard

_guard()  # the compiled simulator modules only when they match their sources

"""Deterministic simulation of raftnode's real Raft core, Ready loop and storage (``raftlab
sim``; see docs/sim.md).

``cluster`` runs nodes through the server's own Ready loop (``raftnode.host``) and storage,
``disk`` is the simulated disk that loses unsynced writes in a crash, ``simulator`` runs one
seeded fault schedule,
``invariants`` checks Raft's safety properties, ``scan`` runs many seeds on worker processes,
``shrink`` reduces a failing schedule and ``cli`` is the command.
"""

from raftnode.accel import guard as _guard

_guard()  # the compiled simulator modules only when they match their sources

"""The nemesis: named fault families, each with start, stop, a full heal and a plot colour,
and the schedules that run them.

Families (``--nemesis partition,flap,clock,kill,pause,loss,delay,member,disk`` or ``all``),
one module each: ``network`` (partition, flap, loss, delay), ``clock``, ``process`` (kill,
pause), ``member``, ``disk`` (kill -9 and lose unsynced writes, over lazyfs); ``registry``
names them, ``swarm`` draws each run's subset and parameters from its seed, ``schedule`` says when faults start and stop, ``executor`` performs the actions
and the final heal. :meth:`Nemesis.heal_all` undoes everything on every node and is what the
runner calls at the end of every test, also after Ctrl-C or a crash. Every action is recorded
in the history as process ``nemesis``.
"""

from tester.nemesis.base import TARGETS, Claims, Env, Fault, Unsupported, pick_targets
from tester.nemesis.clock import Clock, clock_offset, system_clock_command
from tester.nemesis.disk import Disk
from tester.nemesis.executor import SCHEDULES, Nemesis, plan_for
from tester.nemesis.member import Member
from tester.nemesis.network import (
    CHAINS,
    FLAP_KINDS,
    PARTITION_KINDS,
    Delay,
    Flap,
    Loss,
    Partition,
    grudge,
)
from tester.nemesis.process import Kill, Pause
from tester.nemesis.registry import ALWAYS_HEALED, COLORS, FAULTS, OPTIONS, PACKAGES, parse
from tester.nemesis.schedule import Together, thread_of
from tester.nemesis.swarm import describe

__all__ = [
    "ALWAYS_HEALED", "CHAINS", "COLORS", "FAULTS", "FLAP_KINDS", "PACKAGES", "PARTITION_KINDS",
    "SCHEDULES", "TARGETS", "Claims", "Clock", "Delay", "Disk", "Env", "Fault", "Flap", "Kill", "Loss",
    "Member", "Nemesis", "OPTIONS", "Partition", "Pause", "Together", "Unsupported", "clock_offset",
    "describe", "grudge", "parse", "pick_targets", "plan_for", "system_clock_command",
    "thread_of",
]

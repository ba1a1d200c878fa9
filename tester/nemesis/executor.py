"""The nemesis of one run: its fault families, its schedule, the actions the nemesis threads
ask for, and the final heal that undoes everything."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tester import bounds
from tester import generator as g
from tester.nemesis import schedule, swarm
from tester.nemesis.base import Env, Fault, Unsupported
from tester.nemesis.disk import clear_leftovers
from tester.nemesis.registry import ALWAYS_HEALED, FAULTS, PACKAGES

log = logging.getLogger("raftlab")

SCHEDULES = ("hunt", "interval", "together")
#: how long one family's final heal may take (every node at once, SSH commands bounded)
HEAL_TIMEOUT = 240.0


@dataclass
class Nemesis:
    """The chosen families and what is active; executes the nemesis threads' requests.

    Several threads may act at once (one per family under the ``hunt`` schedule); the final
    heal waits (bounded) for every action in flight and refuses every later one.
    """

    env: Env
    faults: dict[str, Fault] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    opts: dict[str, Any] = field(default_factory=dict)
    schedule: str = "interval"
    #: family -> swarm parameters (hunt schedule): recorded in test.json and results.json
    plan: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: family -> why it cannot run here; found once, before the test, and never picked again
    unsupported: dict[str, str] = field(default_factory=dict)
    envs: dict[str, Env] = field(default_factory=dict)
    seed: int = 0
    requested: list[str] = field(default_factory=list)
    prepared: bool = False
    cond: threading.Condition = field(default_factory=threading.Condition)
    #: the actions being performed now, by thread: what the final heal waits for
    in_flight: dict[str, str] = field(default_factory=dict)
    closed: bool = False
    #: families that acted on the database before the test (arm): undone before teardown
    armed: list[Fault] = field(default_factory=list)

    @classmethod
    def build(cls, env: Env, names: list[str], opts: dict[str, Any] | None = None,
              seed: int = 0) -> Nemesis:
        """The nemesis for ``names``. ``opts["schedule"]`` picks the schedule (``interval``
        unless said); under ``hunt``, :meth:`prepare` has the swarm draw the families and
        their parameters from ``seed``, and the options given override what it drew."""
        opts = dict(opts or {})
        sched = opts.get("schedule") or "interval"
        if sched not in SCHEDULES:
            raise ValueError(f"nemesis option schedule={sched!r}: expected one of "
                             f"{', '.join(SCHEDULES)}")
        return cls(env, {n: FAULTS[n](opts) for n in names}, opts=opts, schedule=sched,
                   seed=seed, requested=list(names))

    @property
    def threads(self) -> list[str]:
        """The nemesis threads the runner must start."""
        if self.schedule == "hunt":
            return [schedule.thread_of(n) for n in self.faults]
        return [g.NEMESIS_THREAD]

    def prepare(self, probe: bool = True) -> dict[str, str]:
        """Before the test: find the families this host or database cannot take and leave
        them out, with one log line each; then (hunt) draw the swarm from what is left, so a
        host without netem still gets as many families as any other."""
        if self.prepared:
            return dict(self.unsupported)
        self.prepared = True
        if probe:
            left = clear_leftovers(self.env)
            if left:
                log.warning("nemesis: could not clear lazyfs left by an earlier run: %s",
                            "; ".join(left))
        for name, fault in list(self.faults.items()) if probe else []:
            try:
                why = fault.probe(self.env)
            except Exception as e:
                why = f"probe failed: {type(e).__name__}: {e}"
            if why:
                self.unsupported[name] = why
                del self.faults[name]
                log.warning("nemesis: %s left out of the schedule: %s", name, why)
        if self.schedule == "hunt":
            user = {k: v for k, v in self.opts.items() if k not in ("schedule", "swarm")}
            self.plan = plan_for(self.seed, list(self.faults), self.opts, self.requested)
            self.faults = {n: FAULTS[n]({**fam["opts"], **user}) for n, fam in self.plan.items()}
            self.envs = {n: self.env.fork(f"{self.seed}/nemesis/{n}") for n in self.plan}
        return dict(self.unsupported)

    def arm(self) -> bool:
        """After the database is set up, before the test: let families that must act on it
        first do so (the disk family mounts lazyfs under it). A family that cannot is left
        out, with one line saying why. True when the database was restarted (wait until it
        is ready again)."""
        restarted = False
        for name, fault in list(self.faults.items()):
            if not callable(getattr(fault, "arm", None)):
                continue
            restarted = True
            self.armed.append(fault)
            errors = fault.arm(self._env(name))
            if errors:
                self.unsupported[name] = f"could not be set up: {'; '.join(errors)}"
                del self.faults[name]
                log.warning("nemesis: %s left out of the schedule: %s", name,
                            self.unsupported[name])
        return restarted

    def disarm(self) -> list[str]:
        """Undo what :meth:`arm` did (before the database's teardown); returns errors."""
        errors: list[str] = []
        for fault in self.armed:
            errors += fault.disarm(self._env(fault.name))
        self.armed.clear()
        return errors

    def generator(self, interval: float | None, limit: float | None = None) -> g.Generator:
        """The schedule as a generator, routed to the nemesis threads (see schedule.py),
        ending ``limit`` seconds after it began (hunting loops stop their faults first)."""
        self.prepare(probe=False)
        names = list(self.faults)
        if not names:
            return g.Seq()
        if self.schedule == "hunt":
            return schedule.hunt({n: self.plan[n] for n in names},
                                 lambda n: n not in self.unsupported, limit)
        every = 10.0 if interval is None else interval
        if self.schedule == "together":
            gen = schedule.together(names, every, float(self.opts.get("together_gap_s", 0.0)))
        else:
            gen = schedule.interval(names, every)
        return gen if limit is None else g.TimeLimit(limit, gen)

    def summary(self) -> dict[str, Any]:
        """What results.json says about the nemesis."""
        return {"schedule": self.schedule, "families": sorted(self.faults),
                "swarm": self.plan or None, "unsupported": self.unsupported or None}

    def _env(self, name: str) -> Env:
        return self.envs.get(name, self.env)

    def invoke(self, req: dict[str, Any]) -> tuple[str, Any, Any]:
        """Perform one nemesis request; returns (type, value, error) for the history."""
        time.sleep(min(float(req.get("delay_s") or 0.0), 10.0))
        action, name = req["f"].split("-", 1)
        fault = self.faults[name]
        me = threading.current_thread().name
        with self.cond:
            if self.closed:  # healed for good: no new fault after the final heal
                return "info", None, "nemesis closed"
            self.in_flight[me] = req["f"]
        try:
            return self._perform(fault, action, name)
        finally:
            with self.cond:
                self.in_flight.pop(me, None)
                self.cond.notify_all()

    def _perform(self, fault: Fault, action: str, name: str) -> tuple[str, Any, Any]:
        env = self._env(name)
        try:
            if action == "start":
                value = fault.start(env)
                self.active.add(name)
            else:
                value = fault.stop(env)
                self.active.discard(name)
            return "info", value, None
        except Unsupported as e:
            if self.schedule == "hunt" and name not in self.unsupported:
                self.unsupported[name] = str(e)
                log.warning("nemesis: %s left out of the schedule: %s", name, e)
            return "info", {"unsupported": str(e)}, "unsupported"
        except Exception as e:  # a failed fault is recorded, not fatal to the test
            log.warning("nemesis %s-%s failed: %s", action, name, e)
            return "info", None, f"{type(e).__name__}: {e}"

    def heal_all(self, wait: float = 90.0, bound: float = HEAL_TIMEOUT) -> dict[str, Any]:
        """Undo every family's fault on every node, whatever happened before. Never raises,
        never hangs: a family whose heal has not returned after ``bound`` seconds is an error.

        Waits up to ``wait`` seconds for the actions in flight and refuses every later one;
        those still running then are named in ``in_flight`` (a fault they make afterwards
        is not undone by this heal: the caller heals again once they are done)."""
        with self.cond:
            self.closed = True
            self.cond.wait_for(lambda: not self.in_flight, timeout=wait)
            running = sorted(self.in_flight.values())
        if running:
            log.error("final heal: nemesis actions still running after %g s: %s", wait,
                      ", ".join(running))
        return {**self._heal_all(bound), "in_flight": running or None}

    def _heal_all(self, bound: float) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        healers = dict(self.faults)
        for n in ALWAYS_HEALED:
            healers.setdefault(n, FAULTS[n]({}))

        def heal(n: str) -> None:
            try:
                errs = bounds.call(lambda: healers[n].heal(self.env), bound, f"heal of {n}")
            except Exception as e:
                errs = [f"{type(e).__name__}: {e}"]
            if errs:
                errors[n] = errs

        # processes, network and clocks are independent: heal them at once; membership last,
        # once every node runs and can be reached again
        first = [n for n in healers if n != "member"]
        ts = [threading.Thread(target=heal, args=(n,), daemon=True) for n in first]
        for t in ts:
            t.start()
        bounds.join_all(ts, bound + 5)  # each heal is bounded itself
        # Heals are idempotent: one that failed on a transient error (a busy or briefly
        # unreachable node) gets a second try, one family at a time, before it is reported.
        for n in sorted(errors):
            del errors[n]
            heal(n)
        if "member" in healers:
            heal("member")
        self.active.clear()
        return {"healed": sorted(healers), "errors": errors or None}


def plan_for(seed: int, names: list[str], opts: dict[str, Any],
             requested: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """The hunting schedule's swarm plan: a random subset of ``names`` (the families this
    host supports) when every family was asked for (``all``, the ``requested`` list) unless
    ``swarm=false``; else every one of ``names``."""
    asked = names if requested is None else requested
    subset = bool(opts.get("swarm", True)) and set(asked) == set(PACKAGES)
    return swarm.draw(seed, list(names), subset)

"""The nemesis: named fault packages, each with start, stop, a full heal and a plot colour.

Packages (``--nemesis partition,clock,kill,pause,loss,delay,member`` or ``all``):

* ``partition`` -- iptables DROP rules on each *destination* node (Jepsen's way): random
  halves, one node isolated, the leader isolated, a majorities ring (every node sees a
  majority, no two the same one), a bridge (two halves joined by one node);
* ``clock``     -- libfaketime offsets written to the DB's ``clock_file``: bump by
  ±2^k ms (milliseconds to minutes), strobe (flip back and forth for a while), reset;
* ``kill``      -- kill -9 and restart; ``pause`` -- SIGSTOP and SIGCONT;
* ``loss``      -- random packet loss (iptables ``statistic``);
* ``delay``     -- tc netem delay; where the kernel has no netem it is reported
  "unsupported on this host" (once) and switched off for the rest of the run;
* ``member``    -- remove a node from the cluster, later add it back.

Rules live in raftlab's own iptables chains (``raftlab-part``, ``raftlab-loss``) so one fault's
stop does not undo another's. :meth:`Nemesis.heal_all` undoes everything on every node and is
what the runner calls at the end of every test, also after Ctrl-C or a crash.
Every action is recorded in the history as process ``nemesis``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tester import generator as g

log = logging.getLogger("raftlab")

PACKAGES = ("partition", "clock", "kill", "pause", "loss", "delay", "member")
COLORS = {
    "partition": "#E9A0A0",
    "clock": "#A0C8E9",
    "kill": "#E9C3A0",
    "pause": "#C3A0E9",
    "loss": "#E9E3A0",
    "delay": "#A0E9D5",
    "member": "#A0E9A5",
}
PARTITION_KINDS = ("halves", "one", "leader", "ring", "bridge")
TARGETS = ("one", "minority", "majority", "all", "leader")
CHAINS = {"partition": "raftlab-part", "loss": "raftlab-loss"}


class Unsupported(RuntimeError):
    """The fault cannot be injected on this host (e.g. no netem qdisc)."""


@dataclass
class Env:
    """What faults act on: the DB adapter, the nodes and a command runner per node."""

    db: Any
    nodes: list[Any]
    remotes: dict[str, Any]
    rng: random.Random

    def sh(self, node: Any, cmd: str, check: bool = True) -> Any:
        return self.remotes[node.name].run(cmd, timeout=20, check=check)

    def each(self, nodes: list[Any], fn: Callable[[Any], None]) -> list[str]:
        """Run ``fn(node)`` on every node in parallel; return the errors (node: message)."""
        errors: list[str] = []

        def one(nd: Any) -> None:
            try:
                fn(nd)
            except Exception as e:  # one node's failure must not stop the others' heal
                errors.append(f"{nd.name}: {e}")

        ts = [threading.Thread(target=one, args=(nd,), daemon=True) for nd in nodes]
        for t in ts:
            t.start()
        for t in ts:
            t.join(60)
        return errors

    def leader(self) -> Any | None:
        try:
            name = self.db.leader(self.nodes)
        except Exception:
            name = None
        return next((n for n in self.nodes if n.name == name), None)


def pick_targets(env: Env, spec: str) -> list[Any]:
    """Nodes for a target spec: one, minority, majority, all, leader (falls back to one)."""
    nodes = list(env.nodes)
    n = len(nodes)
    if spec == "leader":
        ld = env.leader()
        return [ld] if ld is not None else [env.rng.choice(nodes)]
    count = {"one": 1, "minority": max(1, (n - 1) // 2), "majority": n // 2 + 1, "all": n}[spec]
    return env.rng.sample(nodes, count)


def grudge(env: Env, kind: str) -> dict[str, list[str]]:
    """Who drops whom: destination node name -> source node names it refuses."""
    nodes = [nd.name for nd in env.nodes]
    env.rng.shuffle(nodes)
    n = len(nodes)

    def split(a: list[str], b: list[str]) -> dict[str, list[str]]:
        out = {x: list(b) for x in a}
        out.update({x: list(a) for x in b})
        return out

    if kind == "halves":
        return split(nodes[: n // 2], nodes[n // 2 :])
    if kind in ("one", "leader"):
        lone = nodes[0]
        if kind == "leader":
            ld = env.leader()
            lone = ld.name if ld is not None else lone
        return split([lone], [x for x in nodes if x != lone])
    if kind == "ring":
        # each node sees a majority of ring neighbours (itself included), no two the same one
        m = n // 2 + 1
        lo = (m - 1) // 2
        sees = {x: {nodes[(i + d) % n] for d in range(-lo, m - lo)} for i, x in enumerate(nodes)}
        return {x: [y for y in nodes if y not in sees[x]] for x in nodes}
    if kind == "bridge":
        mid = n // 2
        left, bridge, right = nodes[:mid], nodes[mid], nodes[mid + 1 :]
        out = split(left, right)
        out[bridge] = []
        return out
    raise ValueError(f"unknown partition kind {kind!r}")


def _chain_setup(chain: str) -> str:
    return (
        f"iptables -w -N {chain} 2>/dev/null; "
        f"iptables -w -C INPUT -j {chain} 2>/dev/null || iptables -w -I INPUT -j {chain}"
    )


def _chain_remove(chain: str) -> str:
    return (
        f"iptables -w -F {chain} 2>/dev/null; "
        f"while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done; "
        f"iptables -w -X {chain} 2>/dev/null; true"
    )


class Fault:
    """A fault package. ``start``/``stop`` return a description of what was done to whom."""

    name = "fault"

    def __init__(self, opts: dict[str, Any]):
        self.opts = opts
        self.targets = opts.get("targets", list(TARGETS))

    @property
    def color(self) -> str:
        return COLORS[self.name]

    def start(self, env: Env) -> dict[str, Any]:
        raise NotImplementedError

    def stop(self, env: Env) -> dict[str, Any]:
        raise NotImplementedError

    def heal(self, env: Env) -> list[str]:
        """Undo this fault everywhere, whatever state it is in; returns errors."""
        self.stop(env)
        return []

    def _targets(self, env: Env) -> tuple[str, list[Any]]:
        spec = env.rng.choice(self.targets)
        return spec, pick_targets(env, spec)


class _ChainFault(Fault):
    """A network fault made of iptables rules in one raftlab chain on each node: stopping it
    flushes the chain everywhere, healing removes the chain altogether."""

    healed: str  # what the history says was healed

    def stop(self, env: Env) -> dict[str, Any]:
        chain = CHAINS[self.name]
        errors = env.each(env.nodes,
                          lambda nd: env.sh(nd, f"iptables -w -F {chain} 2>/dev/null; true"))
        return {"healed": self.healed, "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        return env.each(env.nodes, lambda nd: env.sh(nd, _chain_remove(CHAINS[self.name])))


class Partition(_ChainFault):
    name = "partition"
    healed = "network"

    def start(self, env: Env) -> dict[str, Any]:
        kind = env.rng.choice(self.opts.get("partitions", list(PARTITION_KINDS)))
        drops = grudge(env, kind)
        host = {nd.name: nd.host for nd in env.nodes}
        chain = CHAINS["partition"]
        by_name = {nd.name: nd for nd in env.nodes}

        def cut(dest: Any) -> None:
            srcs = drops.get(dest.name, [])
            cmds = [_chain_setup(chain)] + [
                f"iptables -w -A {chain} -s {host[s]} -j DROP" for s in srcs
            ]
            env.sh(dest, "; ".join(cmds))

        errors = env.each([by_name[d] for d in drops if drops[d]], cut)
        return {"kind": kind, "drops": {k: sorted(v) for k, v in drops.items() if v},
                "errors": errors or None}



class Loss(_ChainFault):
    name = "loss"
    healed = "loss"

    def start(self, env: Env) -> dict[str, Any]:
        spec, nodes = self._targets(env)
        p = float(self.opts.get("loss", 0.2))
        chain = CHAINS["loss"]

        def cmd(nd: Any) -> str:
            # The control node's SSH channel is the test harness, not the system under test:
            # losing its packets would only keep the final heal from reaching the node.
            return (f"{_chain_setup(chain)}; "
                    f"iptables -w -A {chain} -p tcp --dport {nd.port} -j RETURN; "
                    f"iptables -w -A {chain} -m statistic --mode random "
                    f"--probability {p} -j DROP")

        errors = env.each(nodes, lambda nd: env.sh(nd, cmd(nd)))
        return {"target": spec, "nodes": [n.name for n in nodes], "probability": p,
                "errors": errors or None}



class Delay(Fault):
    """tc netem delay; detects a kernel without netem and says so instead of failing."""

    name = "delay"

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.unsupported: str | None = None
        self.active: set[str] = set()

    @staticmethod
    def _dev(env: Env, node: Any) -> str:
        other = next((n.host for n in env.nodes if n.name != node.name), "127.0.0.1")
        out = env.sh(node, f"ip -o route get {other}", check=False).stdout
        words = out.split()
        return words[words.index("dev") + 1] if "dev" in words else "eth0"

    def start(self, env: Env) -> dict[str, Any]:
        if self.unsupported:
            raise Unsupported(self.unsupported)
        spec, nodes = self._targets(env)
        ms = int(self.opts.get("delay_ms", 50))
        for nd in nodes:
            dev = self._dev(env, nd)
            res = env.sh(nd, f"tc qdisc replace dev {dev} root netem delay {ms}ms {ms // 5}ms",
                         check=False)
            if res.exit_code != 0:
                if "unknown" in (res.stderr or "").lower() or "netem" in (res.stderr or ""):
                    self.unsupported = f"netem delay unsupported on this host: {res.stderr.strip()}"
                    raise Unsupported(self.unsupported)
                raise RuntimeError(f"{nd.name}: tc netem failed: {res.stderr.strip()}")
            self.active.add(nd.name)
        return {"target": spec, "nodes": [n.name for n in nodes], "delay_ms": ms}

    def stop(self, env: Env) -> dict[str, Any]:
        nodes = [n for n in env.nodes if n.name in self.active]

        def undo(nd: Any) -> None:
            env.sh(nd, f"tc qdisc del dev {self._dev(env, nd)} root 2>/dev/null; true")
            self.active.discard(nd.name)

        errors = env.each(nodes, undo)
        return {"healed": "delay", "nodes": [n.name for n in nodes], "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        return self.stop(env)["errors"] or []


def clock_offset(rng: random.Random, max_ms: float) -> float:
    """A bump of ±2^k ms, k uniform, between 1 ms and ``max_ms``: ms to minutes (Jepsen-like)."""
    top = max(0.0, _log2(max_ms))
    ms = 2 ** rng.uniform(0, top)
    return ms if rng.random() < 0.5 else -ms


def _log2(x: float) -> float:
    import math

    return math.log2(x) if x > 1 else 0.0


def _offset_text(ms: float) -> str:
    return f"{'+' if ms >= 0 else '-'}{abs(ms) / 1000:.3f}"


NTP_SERVICES = ("chrony", "chronyd", "ntp", "ntpd", "ntpsec", "systemd-timesyncd")


def system_clock_command(ms: float) -> str:
    """Shell for a real VM: stop NTP, then set the system clock to the control node's time
    plus ``ms``; ``ms == 0`` resets it and starts NTP again. Never for a local fleet: its
    nodes share one kernel clock with the control node."""
    target = time.time() + ms / 1000.0
    ntp = " ".join(NTP_SERVICES)
    if ms == 0:
        return (f"date -u -s @{target:.3f} >/dev/null && "
                f"for s in {ntp}; do systemctl start $s 2>/dev/null; done; true")
    return (f"for s in {ntp}; do systemctl stop $s 2>/dev/null; done; "
            f"date -u -s @{target:.3f} >/dev/null")


class Clock(Fault):
    name = "clock"

    def _write(self, env: Env, nd: Any, ms: float) -> None:
        if self.opts.get("system_clock"):
            env.sh(nd, system_clock_command(ms))
            return
        self._write_text(env, nd, _offset_text(ms))

    def _write_text(self, env: Env, nd: Any, text: str) -> None:
        if self.opts.get("system_clock"):
            raise Unsupported(f"{nd.name}: a clock rate needs libfaketime, not the system clock")
        path = env.db.clock_file(nd)
        if not path:
            raise Unsupported(f"{nd.name}: the database has no clock file (libfaketime)")
        env.sh(nd, f"printf '%s\\n' '{text}' > {path}")

    def start(self, env: Env) -> dict[str, Any]:
        spec, nodes = self._targets(env)
        kind = env.rng.choice(self.opts.get("clock_kinds", ["bump", "bump", "strobe"]))
        max_ms = float(self.opts.get("clock_max_ms", 300_000))  # up to 5 minutes
        if kind == "bump":
            choices = self.opts.get("clock_offsets_ms")  # e.g. [-5000, -2000]: fixed bumps
            offsets = {nd.name: round(env.rng.choice(choices) if choices
                                      else clock_offset(env.rng, max_ms), 3) for nd in nodes}
            errors = env.each(nodes, lambda nd: self._write(env, nd, offsets[nd.name]))
            return {"kind": "bump", "target": spec, "offsets_ms": offsets, "errors": errors or None}
        if kind == "rate":
            # a clock that runs slow or fast: leases and timeouts stretch or shrink in real time
            rates = {nd.name: env.rng.choice(self.opts.get("clock_rates", [0.25, 0.5, 2.0]))
                     for nd in nodes}
            errors = env.each(nodes, lambda nd: self._write_text(env, nd, f"+0 x{rates[nd.name]}"))
            return {"kind": "rate", "target": spec, "rates": rates, "errors": errors or None}
        # strobe: flip each target's clock between +delta and 0 for a bounded while
        delta = round(abs(clock_offset(env.rng, max_ms)), 3)
        period, duration = 0.05, float(self.opts.get("strobe_s", 1.0))

        def strobe(nd: Any) -> None:
            end = time.monotonic() + duration
            flips = 0
            while time.monotonic() < end and flips < 1000:
                self._write(env, nd, delta if flips % 2 == 0 else 0.0)
                flips += 1
                time.sleep(period)
            self._write(env, nd, delta)

        errors = env.each(nodes, strobe)
        return {"kind": "strobe", "target": spec, "nodes": [n.name for n in nodes],
                "delta_ms": delta, "duration_s": duration, "errors": errors or None}

    def stop(self, env: Env) -> dict[str, Any]:
        errors = env.each(env.nodes, lambda nd: self._write(env, nd, 0.0))
        return {"kind": "reset", "nodes": [n.name for n in env.nodes], "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        return [e for e in (self.stop(env)["errors"] or []) if "no clock file" not in e]


class _ProcessFault(Fault):
    """A fault done to the database process on target nodes and undone on the same nodes.

    Subclasses name the DB adapter's methods for the fault and its undoing (``kill``/``start``,
    ``pause``/``resume``) and the words the history uses for them.
    """

    do: str  # DB method that applies the fault
    undo: str  # DB method that undoes it
    done_word: str  # history field listing the nodes hit
    undone_word: str  # history field listing the nodes restored

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.affected: set[str] = set()

    def start(self, env: Env) -> dict[str, Any]:
        spec, nodes = self._targets(env)

        def apply(nd: Any) -> None:
            self.affected.add(nd.name)
            getattr(env.db, self.do)(env.remotes[nd.name], nd)

        errors = env.each(nodes, apply)
        return {"target": spec, self.done_word: [n.name for n in nodes], "errors": errors or None}

    def stop(self, env: Env) -> dict[str, Any]:
        nodes = [n for n in env.nodes if n.name in self.affected]

        def restore(nd: Any) -> None:
            getattr(env.db, self.undo)(env.remotes[nd.name], nd)
            self.affected.discard(nd.name)

        errors = env.each(nodes, restore)
        return {self.undone_word: [n.name for n in nodes], "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        return self.stop(env)["errors"] or []


class Kill(_ProcessFault):
    name = "kill"
    do, undo, done_word, undone_word = "kill", "start", "killed", "restarted"


class Pause(_ProcessFault):
    name = "pause"
    do, undo, done_word, undone_word = "pause", "resume", "paused", "resumed"

    def heal(self, env: Env) -> list[str]:
        # SIGCONT everyone: harmless where nothing is paused, and catches a pause we lost track of
        return env.each(env.nodes, lambda nd: env.db.resume(env.remotes[nd.name], nd))


class Member(Fault):
    """Remove one node (never a majority) from the cluster; add it back on stop."""

    name = "member"

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.removed: list[Any] = []

    def start(self, env: Env) -> dict[str, Any]:
        if len(self.removed) >= (len(env.nodes) - 1) // 2:
            return {"skipped": "enough members removed already"}
        candidates = [n for n in env.nodes if n not in self.removed]
        nd = env.rng.choice(candidates)
        env.db.remove_member(env.remotes, env.nodes, nd)
        self.removed.append(nd)
        return {"removed": nd.name}

    def stop(self, env: Env) -> dict[str, Any]:
        added, errors = [], []
        for nd in list(self.removed):
            try:
                env.db.add_member(env.remotes, env.nodes, nd)
                self.removed.remove(nd)
                added.append(nd.name)
            except Exception as e:
                errors.append(f"{nd.name}: {e}")
        return {"added": added, "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        return self.stop(env)["errors"] or []


FAULTS: dict[str, type[Fault]] = {
    c.name: c for c in (Partition, Clock, Kill, Pause, Loss, Delay, Member)
}


def parse(spec: str) -> list[str]:
    """``partition,clock`` / ``all`` / ``none`` -> package names; ValueError names a bad one."""
    spec = (spec or "none").strip()
    if spec in ("none", ""):
        return []
    if spec == "all":
        return list(PACKAGES)
    names = [s.strip() for s in spec.split(",") if s.strip()]
    bad = [s for s in names if s not in FAULTS]
    if bad:
        raise ValueError(
            f"--nemesis: unknown fault {bad[0]!r}; expected all, none or a list of "
            f"{', '.join(PACKAGES)}"
        )
    return list(dict.fromkeys(names))


@dataclass
class Nemesis:
    """The chosen packages and what is active; executes the nemesis thread's requests."""

    env: Env
    faults: dict[str, Fault] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    opts: dict[str, Any] = field(default_factory=dict)
    #: one action at a time: the final heal waits for an action in flight (e.g. after Ctrl-C)
    lock: threading.Lock = field(default_factory=threading.Lock)
    closed: bool = False

    @classmethod
    def build(cls, env: Env, names: list[str], opts: dict[str, Any] | None = None) -> Nemesis:
        opts = opts or {}
        return cls(env, {n: FAULTS[n](opts) for n in names}, opts=opts)

    def generator(self, interval: float) -> g.Generator:
        """Every ``interval`` seconds one action: each package alternates start and stop.

        With the option ``schedule: together`` every package starts at once (in the order
        given, ``together_gap_s`` apart), and ``interval`` later they all stop: compound
        faults such as "slow the leader's clock, then cut it off".
        """
        if not self.faults:
            return g.Seq()
        if self.opts.get("schedule") == "together":
            gap = float(self.opts.get("together_gap_s", 0.0))
            starts = [{"f": f"start-{n}", "value": None, "delay_s": gap if i else 0.0}
                      for i, n in enumerate(self.faults)]
            stops = [{"f": f"stop-{n}", "value": None} for n in reversed(self.faults)]
            return Together(interval, starts, stops)
        flips = [
            g.FlipFlop(_req("start", n), _req("stop", n))
            for n in self.faults
        ]
        return g.Delay(interval, g.Mix(flips))

    def invoke(self, req: dict[str, Any]) -> tuple[str, Any, Any]:
        """Perform one nemesis request; returns (type, value, error) for the history."""
        time.sleep(min(float(req.get("delay_s") or 0.0), 10.0))
        action, name = req["f"].split("-", 1)
        fault = self.faults[name]
        with self.lock:
            if self.closed:  # healed for good: no new fault after the final heal
                return "info", None, "nemesis closed"
            return self._perform(fault, action, name)

    def _perform(self, fault: Fault, action: str, name: str) -> tuple[str, Any, Any]:
        try:
            if action == "start":
                value = fault.start(self.env)
                self.active.add(name)
            else:
                value = fault.stop(self.env)
                self.active.discard(name)
            return "info", value, None
        except Unsupported as e:
            return "info", {"unsupported": str(e)}, "unsupported"
        except Exception as e:  # a failed fault is recorded, not fatal to the test
            log.warning("nemesis %s-%s failed: %s", action, name, e)
            return "info", None, f"{type(e).__name__}: {e}"

    def heal_all(self) -> dict[str, Any]:
        """Undo every package's fault on every node, whatever happened before. Never raises.

        Waits (bounded) for an action in flight, and refuses every later one."""
        locked = self.lock.acquire(timeout=90)
        try:
            self.closed = True
            return self._heal_all()
        finally:
            if locked:
                self.lock.release()

    def _heal_all(self) -> dict[str, Any]:
        errors: dict[str, list[str]] = {}
        healers = dict(self.faults)
        for n in ("partition", "loss", "clock", "pause", "kill"):
            healers.setdefault(n, FAULTS[n]({}))  # heal these even if not chosen: cheap, safe

        def heal(n: str) -> None:
            try:
                errs = healers[n].heal(self.env)
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
        for t in ts:
            t.join(120)
        # Heals are idempotent: one that failed on a transient error (a busy or briefly
        # unreachable node) gets a second try, one package at a time, before it is reported.
        for n in sorted(errors):
            del errors[n]
            heal(n)
        if "member" in healers:
            heal("member")
        self.active.clear()
        return {"healed": sorted(healers), "errors": errors or None}


def _req(action: str, name: str) -> g.Fn:
    return g.Fn(lambda ctx: {"f": f"{action}-{name}", "value": None})


class Together(g.Generator):
    """Every ``interval``: all the start requests back to back, then (next time) all stops."""

    def __init__(self, interval: float, starts: list[dict[str, Any]],
                 stops: list[dict[str, Any]]):
        self.interval, self.batches = interval, [starts, stops]
        self.turn, self.queue = 0, []
        self.next_time: float | None = None

    def next(self, ctx: g.Context) -> g.Result:
        if self.queue:
            return dict(self.queue.pop(0))
        if self.next_time is None:
            self.next_time = ctx.time + self.interval
        if ctx.time < self.next_time:
            return g.Pending(self.next_time)
        self.next_time += self.interval
        self.queue = list(self.batches[self.turn])
        self.turn ^= 1
        return dict(self.queue.pop(0))

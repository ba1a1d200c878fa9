"""Clock faults: libfaketime offsets written to the DB's clock file (bumps of ±2^k ms, strobes,
slow or fast clocks), or on real VMs the system clock itself."""

from __future__ import annotations

import math
import random
import time
from typing import Any

from tester.nemesis.base import Env, Fault, Unsupported

NTP_SERVICES = ("chrony", "chronyd", "ntp", "ntpd", "ntpsec", "systemd-timesyncd")


def clock_offset(rng: random.Random, max_ms: float, min_ms: float = 1.0) -> float:
    """A bump of ±2^k ms, k uniform, between ``min_ms`` and ``max_ms``: ms to minutes
    (Jepsen-like)."""
    lo, top = _log2(min_ms), max(_log2(min_ms), _log2(max_ms))
    ms = 2 ** rng.uniform(lo, top)
    return ms if rng.random() < 0.5 else -ms


def _log2(x: float) -> float:
    return math.log2(x) if x > 1 else 0.0


def _offset_text(ms: float) -> str:
    return f"{'+' if ms >= 0 else '-'}{abs(ms) / 1000:.3f}"


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

    def probe(self, env: Env) -> str | None:
        if self.opts.get("system_clock") or env.db.clock_file(env.nodes[0]):
            return None
        return "the database has no clock file (libfaketime has no effect on it)"

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

    def _offset(self, env: Env) -> float:
        choices = self.opts.get("clock_offsets_ms")  # e.g. [-5000, -2000]: fixed bumps
        if choices:
            return float(env.rng.choice(choices))
        return clock_offset(env.rng, float(self.opts.get("clock_max_ms", 300_000)),
                            float(self.opts.get("clock_min_ms", 1)))

    def start(self, env: Env) -> dict[str, Any]:
        spec, nodes = self._targets(env)
        kind = env.rng.choice(self.opts.get("clock_kinds", ["bump", "bump", "strobe"]))
        if kind == "bump":
            offsets = {nd.name: round(self._offset(env), 3) for nd in nodes}
            errors = env.each(nodes, lambda nd: self._write(env, nd, offsets[nd.name]))
            return {"kind": "bump", "target": spec, "offsets_ms": offsets, "errors": errors or None}
        if kind == "rate":
            # a clock that runs slow or fast: leases and timeouts stretch or shrink in real time
            rates = {nd.name: env.rng.choice(self.opts.get("clock_rates", [0.25, 0.5, 2.0]))
                     for nd in nodes}
            errors = env.each(nodes, lambda nd: self._write_text(env, nd, f"+0 x{rates[nd.name]}"))
            return {"kind": "rate", "target": spec, "rates": rates, "errors": errors or None}
        # strobe: flip each target's clock between +delta and 0 for a bounded while
        delta = round(abs(self._offset(env)), 3)
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

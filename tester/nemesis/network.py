"""Network faults: partitions (held, or flapping faster than an election timeout), packet loss
and netem delay.

Rules live in raftlab's own iptables chains, one per family (``raftlab-part``, ``raftlab-flap``,
``raftlab-loss``), so one family's stop never undoes another's rules while their faults overlap.
"""

from __future__ import annotations

from typing import Any

from tester.nemesis.base import Env, Fault, Unsupported, minority

PARTITION_KINDS = ("halves", "one", "leader", "leader-minority", "ring", "bridge")
#: the shapes a flapping partition toggles: each moves or keeps the leadership at every flip
FLAP_KINDS = ("leader", "leader-minority", "halves")
CHAINS = {"partition": "raftlab-part", "flap": "raftlab-flap", "loss": "raftlab-loss"}


def grudge(env: Env, kind: str) -> dict[str, list[str]]:
    """Who drops whom: destination node name -> source node names it refuses.

    ``leader-minority`` cuts the leader off together with as many followers as still leave it a
    minority (one of five): an old leader that keeps a follower, and clients, to talk to.
    """
    nodes = [nd.name for nd in env.nodes]
    env.rng.shuffle(nodes)
    n = len(nodes)

    def split(a: list[str], b: list[str]) -> dict[str, list[str]]:
        out = {x: list(b) for x in a}
        out.update({x: list(a) for x in b})
        return out

    if kind == "halves":
        return split(nodes[: n // 2], nodes[n // 2 :])
    if kind in ("one", "leader", "leader-minority"):
        lone = nodes[0]
        if kind != "one":
            ld = env.leader()
            lone = ld.name if ld is not None else lone
        rest = [x for x in nodes if x != lone]
        side = [lone] + (rest[: max(0, (n - 1) // 2 - 1)] if kind == "leader-minority" else [])
        return split(side, [x for x in nodes if x not in side])
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


def chain_setup(chain: str) -> str:
    return (
        f"iptables -w -N {chain} 2>/dev/null; "
        f"iptables -w -C INPUT -j {chain} 2>/dev/null || iptables -w -I INPUT -j {chain}"
    )


def chain_remove(chain: str) -> str:
    return (
        f"iptables -w -F {chain} 2>/dev/null; "
        f"while iptables -w -D INPUT -j {chain} 2>/dev/null; do :; done; "
        f"iptables -w -X {chain} 2>/dev/null; true"
    )


class ChainFault(Fault):
    """A network fault made of iptables rules in one raftlab chain on each node: stopping it
    flushes the chain everywhere, healing removes the chain altogether."""

    healed: str  # what the history says was healed

    @property
    def chain(self) -> str:
        return CHAINS[self.name]

    def stop(self, env: Env) -> dict[str, Any]:
        env.isolation.clear(self.name)
        errors = env.each(env.nodes,
                          lambda nd: env.sh(nd, f"iptables -w -F {self.chain} 2>/dev/null; true"))
        return {"healed": self.healed, "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        env.isolation.clear(self.name)
        return env.each(env.nodes, lambda nd: env.sh(nd, chain_remove(self.chain)))


class Partition(ChainFault):
    """A partition held until the family's stop: halves, one, the leader alone, the leader with
    a follower, a majorities ring or a bridge."""

    name = "partition"
    healed = "network"
    kinds_opt, default_kinds = "partitions", PARTITION_KINDS

    def _cut(self, env: Env, kind: str, drops: dict[str, list[str]]) -> dict[str, Any]:
        host = {nd.name: nd.host for nd in env.nodes}
        by_name = {nd.name: nd for nd in env.nodes}

        def cut(dest: Any) -> None:
            cmds = [chain_setup(self.chain)] + [
                f"iptables -w -A {self.chain} -s {host[s]} -j DROP" for s in drops[dest.name]
            ]
            env.sh(dest, "; ".join(cmds))

        errors = env.each([by_name[d] for d in drops if drops[d]], cut)
        env.isolation.set(self.name, minority(list(host), drops))
        return {"kind": kind, "drops": {k: sorted(v) for k, v in drops.items() if v},
                "errors": errors or None}

    def start(self, env: Env) -> dict[str, Any]:
        kind = env.rng.choice(self.opts.get(self.kinds_opt, list(self.default_kinds)))
        return self._cut(env, kind, grudge(env, kind))


class Flap(Partition):
    """A partition switched on and off faster than an election timeout (sub-second).

    The same cut comes back at most flips (a shape is redrawn one flip in four), so a leader
    elected on one side is cut off again before it has settled, and the old one comes back.
    """

    name = "flap"
    healed = "flap"
    kinds_opt, default_kinds = "flap_partitions", FLAP_KINDS

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.shape: tuple[str, dict[str, list[str]]] | None = None

    def start(self, env: Env) -> dict[str, Any]:
        if self.shape is None or env.rng.random() < 0.25:
            kind = env.rng.choice(self.opts.get(self.kinds_opt, list(self.default_kinds)))
            self.shape = (kind, grudge(env, kind))
        return self._cut(env, *self.shape)


class Loss(ChainFault):
    name = "loss"
    healed = "loss"

    def start(self, env: Env) -> dict[str, Any]:
        spec, nodes = self._targets(env)
        p = float(self.opts.get("loss", 0.2))

        def cmd(nd: Any) -> str:
            # The control node's SSH channel is the test harness, not the system under test:
            # losing its packets would only keep the final heal from reaching the node.
            return (f"{chain_setup(self.chain)}; "
                    f"iptables -w -A {self.chain} -p tcp --dport {nd.port} -j RETURN; "
                    f"iptables -w -A {self.chain} -m statistic --mode random "
                    f"--probability {p} -j DROP")

        errors = env.each(nodes, lambda nd: env.sh(nd, cmd(nd)))
        return {"target": spec, "nodes": [n.name for n in nodes], "probability": p,
                "errors": errors or None}


class Delay(Fault):
    """tc netem delay; a kernel without netem is found by :meth:`probe` before the test (or,
    without a probe, at the first start) and said once, instead of failing every time."""

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

    def _netem(self, env: Env, nd: Any, ms: int) -> None:
        dev = self._dev(env, nd)
        res = env.sh(nd, f"tc qdisc replace dev {dev} root netem delay {ms}ms {ms // 5}ms",
                     check=False)
        if res.exit_code != 0:
            if "unknown" in (res.stderr or "").lower() or "netem" in (res.stderr or ""):
                self.unsupported = f"netem delay unsupported on this host: {res.stderr.strip()}"
                raise Unsupported(self.unsupported)
            raise RuntimeError(f"{nd.name}: tc netem failed: {res.stderr.strip()}")
        self.active.add(nd.name)

    def probe(self, env: Env) -> str | None:
        nd = env.nodes[0]
        try:
            self._netem(env, nd, 1)
        except Unsupported as e:
            return str(e)
        except Exception as e:
            return f"netem delay cannot be set on {nd.name}: {e}"
        finally:
            self.stop(env)
        return None

    def start(self, env: Env) -> dict[str, Any]:
        if self.unsupported:
            raise Unsupported(self.unsupported)
        spec, nodes = self._targets(env)
        ms = int(self.opts.get("delay_ms", 50))
        for nd in nodes:
            self._netem(env, nd, ms)
        return {"target": spec, "nodes": [n.name for n in nodes], "delay_ms": ms}

    def stop(self, env: Env) -> dict[str, Any]:
        nodes = [n for n in env.nodes if n.name in self.active]

        def undo(nd: Any) -> None:
            env.sh(nd, f"tc qdisc del dev {self._dev(env, nd)} root 2>/dev/null; true")
            self.active.discard(nd.name)

        errors = env.each(nodes, undo)
        return {"healed": "delay", "nodes": [n.name for n in nodes], "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        # every node: also the qdisc of a run killed before it could heal (raftlab heal)
        self.active.update(n.name for n in env.nodes)
        return self.stop(env)["errors"] or []

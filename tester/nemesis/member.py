"""Membership changes: remove a node (the leader, or any) from the cluster, add it back later;
never so many that the remaining voters are fewer than a majority of the fleet."""

from __future__ import annotations

import time
from contextlib import suppress
from typing import Any

from tester.nemesis.base import Env, Fault


class Member(Fault):
    name = "member"

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.removed: list[Any] = []
        #: nodes whose removal failed without an answer (a timeout): it may have committed
        self.uncertain: list[Any] = []
        #: nodes added back during the run: an "ok" may have come from a member whose view of
        #: the configuration was stale (it still listed the node), so the heal checks them
        self.readded: list[Any] = []

    def probe(self, env: Env) -> str | None:
        if callable(getattr(env.db, "remove_member", None)) and callable(
                getattr(env.db, "add_member", None)):
            return None
        return "the database adapter has no remove_member/add_member"

    def start(self, env: Env) -> dict[str, Any]:
        if len(self.removed) >= (len(env.nodes) - 1) // 2:
            return {"skipped": "enough members removed already"}
        held = env.claims.held()
        candidates = [n for n in env.nodes if n not in self.removed and n.name not in held]
        if not candidates:
            return {"skipped": "every node is held by another fault"}
        spec = env.rng.choice(self.opts.get("member_targets", ["one"]))
        ld = env.leader() if spec == "leader" else None
        nd = ld if ld in candidates else env.rng.choice(candidates)
        if not env.claims.take(self.name, [nd]):
            return {"target": spec, "skipped": f"{nd.name} is held by another fault"}
        try:
            env.db.remove_member(env.remotes, env.nodes, nd)
        except Exception:
            # Not added back blindly at the stop: adding wipes the node, and a voter that was
            # never removed must keep its log. The heal asks the cluster (``_settle_uncertain``).
            env.claims.release(self.name, [nd.name])
            self.uncertain.append(nd)
            raise
        self.removed.append(nd)
        return {"target": spec, "removed": nd.name}

    def stop(self, env: Env) -> dict[str, Any]:
        added, errors = [], []
        for nd in list(self.removed):
            try:
                env.db.add_member(env.remotes, env.nodes, nd)
                self.removed.remove(nd)
                env.claims.release(self.name, [nd.name])
                added.append(nd.name)
                if nd not in self.readded:
                    self.readded.append(nd)
            except Exception as e:
                errors.append(f"{nd.name}: {e}")
        return {"added": added, "errors": errors or None}

    def _settle_uncertain(self, env: Env) -> None:
        """A removal that timed out may still have committed, and an addition answered ok may
        not have happened: ask a leader whether each such node is in its configuration; one
        that is not is removed after all and gets added back."""
        status = getattr(env.db, "node_status", None)
        pending = self.uncertain + [n for n in self.readded if n not in self.uncertain]
        self.uncertain, self.readded = [], []
        if not pending or not callable(status):
            return
        members: set[str] | None = None
        for _ in range(20):  # the heal has just reconnected everything: a leader comes soon
            for other in env.nodes:
                with suppress(Exception):
                    st = status(other, 1.0)
                    if st and st.get("role") == "leader" and st.get("members") is not None:
                        members = {str(m) for m in st["members"]}
                        break
            if members is not None:
                break
            time.sleep(0.5)
        for nd in pending:
            if members is not None and nd.name not in members and nd not in self.removed:
                self.removed.append(nd)

    def heal(self, env: Env) -> list[str]:
        self._settle_uncertain(env)
        if self.removed:
            # The heal has just restarted and reconnected every node: let the members agree
            # on a leader first, so the node added back learns its peers from a settled
            # member (a member still electing may name too few; the added node then refuses
            # the leader as an unknown peer and the addition never completes).
            members = [n for n in env.nodes if n not in self.removed]
            with suppress(Exception):  # best effort: the addition says what went wrong
                env.db.wait_ready(env.remotes, members, 20)
        return self.stop(env)["errors"] or []

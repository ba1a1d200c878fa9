"""Membership changes: remove a node (the leader, or any) from the cluster, add it back later;
never so many that the remaining voters are fewer than a majority of the fleet."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from tester.nemesis.base import Env, Fault


class Member(Fault):
    name = "member"

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.removed: list[Any] = []

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
            # Not added back at the stop: adding wipes the node, and a voter that was never
            # removed must keep its log.
            env.claims.release(self.name, [nd.name])
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
            except Exception as e:
                errors.append(f"{nd.name}: {e}")
        return {"added": added, "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        if self.removed:
            # The heal has just restarted and reconnected every node: let the members agree
            # on a leader first, so the node added back learns its peers from a settled
            # member (a member still electing may name too few; the added node then refuses
            # the leader as an unknown peer and the addition never completes).
            members = [n for n in env.nodes if n not in self.removed]
            with suppress(Exception):  # best effort: the addition says what went wrong
                env.db.wait_ready(env.remotes, members, 20)
        return self.stop(env)["errors"] or []

"""Process faults: kill -9 and restart, SIGSTOP and SIGCONT, aimed at target nodes."""

from __future__ import annotations

from typing import Any

from tester.nemesis.base import Env, Fault

#: process faults that may hit one node together (see Claims)
PROCESS_FAULTS = ("kill", "pause")


class ProcessFault(Fault):
    """A fault done to the database process on target nodes and undone on the same nodes.

    Subclasses name the DB adapter's methods for the fault and its undoing (``kill``/``start``,
    ``pause``/``resume``) and the words the history uses for them. A node held by another
    process fault (see :class:`~tester.nemesis.base.Claims`) is left alone.
    """

    do: str  # DB method that applies the fault
    share: tuple[str, ...] = PROCESS_FAULTS  # faults that may hold a node together with this
    undo: str  # DB method that undoes it
    done_word: str  # history field listing the nodes hit
    undone_word: str  # history field listing the nodes restored

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.affected: set[str] = set()

    def probe(self, env: Env) -> str | None:
        if callable(getattr(env.db, self.do, None)) and callable(getattr(env.db, self.undo, None)):
            return None
        return f"the database adapter has no {self.do}/{self.undo}"

    def start(self, env: Env) -> dict[str, Any]:
        spec, wanted = self._targets(env)
        nodes = env.claims.take(self.name, wanted, share=self.share)
        if not nodes:
            return {"target": spec, "skipped": "every target is held by another fault"}

        def apply(nd: Any) -> None:
            self.affected.add(nd.name)
            self.apply(env, nd)

        errors = env.each(nodes, apply)
        return {"target": spec, self.done_word: [n.name for n in nodes], "errors": errors or None}

    def apply(self, env: Env, nd: Any) -> None:
        """The fault on one node."""
        getattr(env.db, self.do)(env.remotes[nd.name], nd)

    def stop(self, env: Env) -> dict[str, Any]:
        nodes = [n for n in env.nodes if n.name in self.affected]

        def restore(nd: Any) -> None:
            getattr(env.db, self.undo)(env.remotes[nd.name], nd)
            self.affected.discard(nd.name)

        errors = env.each(nodes, restore)
        env.claims.release(self.name, [n.name for n in nodes if n.name not in self.affected])
        return {self.undone_word: [n.name for n in nodes], "errors": errors or None}

    def heal(self, env: Env) -> list[str]:
        return self.stop(env)["errors"] or []


class Kill(ProcessFault):
    name = "kill"
    do, undo, done_word, undone_word = "kill", "start", "killed", "restarted"


class Pause(ProcessFault):
    name = "pause"
    do, undo, done_word, undone_word = "pause", "resume", "paused", "resumed"

    def heal(self, env: Env) -> list[str]:
        # SIGCONT everyone: harmless where nothing is paused, and catches a pause we lost track of
        errors = env.each(env.nodes, lambda nd: env.db.resume(env.remotes[nd.name], nd))
        if not errors:
            env.claims.release(self.name, sorted(self.affected))
            self.affected.clear()
        return errors

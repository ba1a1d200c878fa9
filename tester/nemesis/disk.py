"""The disk fault: a node's database process is killed (-9), its filesystem loses what was not
yet durable, as a crashed machine's disk would, and it is restarted.

``kill -9`` alone keeps the kernel's page cache, so on a real fleet nothing unsynced is ever
lost and a missing fsync passes unseen. This family mounts lazyfs (``tester/lazyfs``) over the
database's data directory on every node right after the database is set up (the cluster is
restarted once for it), and each fault then crashes that filesystem between the kill and the
restart: per file, none, all or a torn prefix of the writes since its last fsync survive, and
directory entries not followed by a directory fsync are undone (``disk_modes``: ``random``,
the simulator's mix; ``lose``: everything unsynced; ``torn``: a prefix cut at any byte).

A database adapter opts in by naming its data directory (``data_dir(node)``, see
tester/db.py). Without one, with ``--no-deploy``, or on a node that cannot mount FUSE (no
``/dev/fuse``, no libfuse 3), the family is left out of the run with one line saying why,
recorded in results.json. lazyfs is unmounted before the database's teardown.
"""

from __future__ import annotations

import threading
from typing import Any

from tester.lazyfs import deploy as lazyfs
from tester.lazyfs.durable import MODES
from tester.nemesis.base import Env
from tester.nemesis.process import ProcessFault


class Disk(ProcessFault):
    name = "disk"
    do, undo, done_word, undone_word = "kill", "start", "crashed", "restarted"
    share = ("disk",)  # a crash must not race another fault's restart of the same process

    def __init__(self, opts: dict[str, Any]):
        super().__init__(opts)
        self.modes = list(opts.get("disk_modes") or ["random"])
        bad = [m for m in self.modes if m not in MODES]
        if bad:
            raise ValueError(f"nemesis option disk_modes: unknown mode {bad[0]!r} "
                             f"(expected {', '.join(MODES)})")
        self.mounted: set[str] = set()
        self.lost: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._seed = 0

    @staticmethod
    def _dir(env: Env, nd: Any) -> str:
        return str(env.db.data_dir(nd))

    def probe(self, env: Env) -> str | None:
        why = super().probe(env)
        if why:
            return why
        if not callable(getattr(env.db, "data_dir", None)) or any(
                env.db.data_dir(n) is None for n in env.nodes):
            return f"the database adapter ({env.db.name}) names no data directory (data_dir)"
        if getattr(env.db, "deploy", True) is False:
            return "lazyfs is mounted when the run deploys the database (drop --no-deploy)"
        try:
            lazyfs.zipapp()
        except ValueError as e:
            return str(e)
        reasons: dict[str, str] = {}

        def check(nd: Any) -> None:
            why = lazyfs.install(env.remotes[nd.name])
            if why:
                reasons[nd.name] = why

        errors = env.each(env.nodes, check)
        if errors:
            return f"cannot install lazyfs: {errors[0]}"
        if reasons:
            name = sorted(reasons)[0]
            return f"lazyfs cannot mount on {name}: {reasons[name]}"
        return None

    def arm(self, env: Env) -> list[str]:
        """Put lazyfs under the running database on every node (stop, mount, start)."""

        def one(nd: Any) -> None:
            remote = env.remotes[nd.name]
            env.db.kill(remote, nd)
            try:
                lazyfs.mount(remote, self._dir(env, nd))
                with self._lock:
                    self.mounted.add(nd.name)
            finally:
                env.db.start(remote, nd)

        return env.each(env.nodes, one)

    def disarm(self, env: Env) -> list[str]:
        """Stop the database and unmount lazyfs (before the database's teardown)."""

        def one(nd: Any) -> None:
            remote = env.remotes[nd.name]
            env.db.kill(remote, nd)
            lazyfs.unmount(remote, self._dir(env, nd))
            with self._lock:
                self.mounted.discard(nd.name)

        return env.each([n for n in env.nodes if n.name in self.mounted], one)

    def start(self, env: Env) -> dict[str, Any]:
        self._seed = env.rng.randrange(2**32)
        self.mode = env.rng.choice(self.modes)
        self.lost = {}
        out = super().start(env)
        return {**out, "mode": self.mode, "lost": dict(self.lost) or None}

    def apply(self, env: Env, nd: Any) -> None:
        remote = env.remotes[nd.name]
        env.db.kill(remote, nd)
        lost = lazyfs.crash(remote, self._dir(env, nd), f"{self._seed}:{nd.name}", self.mode)
        with self._lock:
            self.lost[nd.name] = lost


def clear_leftovers(env: Env) -> list[str]:
    """Before setup: take away a lazyfs that a killed run left mounted under the database's data
    directory (setup could not wipe a mount point); returns errors. Cheap where there is none,
    and done whether or not this run uses the disk family."""
    if not callable(getattr(env.db, "data_dir", None)) or getattr(env.db, "deploy", True) is False:
        return []

    def one(nd: Any) -> None:
        where = env.db.data_dir(nd)
        if where:
            lazyfs.unmount(env.remotes[nd.name], str(where))

    return env.each(env.nodes, one)

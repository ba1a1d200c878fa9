"""Real runs of the tester's runner on the in-process fake database, for report tests.

``run_one`` has the campaign's ``RunOne`` shape: a configuration dict in, a run folder out.
The ``db`` names pick the fake store's behaviour: ``memdb`` (correct) or ``memdb-stale-reads``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tester import nemesis as nem
from tester.memdb import FakeFleet, MemDB
from tester.runner import RunConfig, Runner

FAST = dict(nemesis_interval=0.2, time_limit=1.0, concurrency=5, rate=1000, keys=3,
            ops_per_key=60, quiet=0.05, op_timeout=0.05, final_time=1.0)


def run_one(config: dict[str, Any]) -> Path:
    mode = config["db"].partition("-")[2] or "correct"
    fields = set(RunConfig.__dataclass_fields__)
    cfg = RunConfig(**{**FAST, **{k: v for k, v in config.items() if k in fields},
                       "nemesis": nem.parse(config.get("nemesis", "none"))})
    fleet = FakeFleet(3)
    db = MemDB(fleet, mode=mode, seed=cfg.seed)
    return Runner(cfg, db, fleet.nodes, fleet.remotes).run().run_dir

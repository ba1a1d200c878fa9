"""``raftlab campaign FILE.yml``: a matrix of test runs that a release pipeline can gate on.

A campaign file names the databases, workloads, nemeses and seeds to combine, plus settings
shared by every run (any ``raftlab test`` option, spelled with underscores)::

    name: release-gate
    store: reports              # optional (default: reports)
    dbs: [raftnode]
    workloads: [registers]
    nemeses: [partition, "kill,pause", none]
    seeds: 3                    # or a list: [1, 7, 42]
    settings:
      fleet: raftlab
      time_limit: 30
      concurrency: 2n
      db_opt: {faketime_cache: 0}   # a mapping gives one --db-opt KEY=JSON per key

An optional ``sim`` section runs the deterministic simulator first (``raftlab sim``, docs/sim.md):
it explores thousands of fault schedules a minute against raftnode's Raft core, so a gate finds
most bugs there before the real runs start::

    sim:
      seeds: 20000              # per simulation
      nodes: [3, 5]             # cluster sizes (default [3]); one simulation per size and
                                # per workload of the campaign the simulator speaks

With ``raftlab campaign FILE --cluster ADDRESS`` (a Dask scheduler, as ``raftlab cluster up``
prints, or ``local:N``) the runs go in parallel, each a task on a worker: it stands on a local
namespace fleet of the worker's own (``fleet_nodes`` nodes, default 5, on a subnet of its own
from 10.213.100.0/24 upward, kept for the worker's next run and taken down when the campaign
ends), or holds one of the campaign's inventories::

    inventories: [rack1.yml, rack2.yml]   # one run at a time on each

and its run folder comes back into the campaign's store. A run whose worker dies is run once
more on another worker, then reported unknown with the reason.

Every cell of dbs × workloads × nemeses × seeds is one run. The campaign prints its progress,
then writes ``index.html`` (every run coloured by its verdict, linked to its report) and
``junit.xml`` (one test case per run) into ``<store>/campaigns/<name>/<timestamp>/`` and
exits with the worst verdict: 0 valid, 1 invalid, 2 unknown (a run that could not be run
counts as unknown); 254 when the campaign file is bad, with the field named.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from checker.verdict import EXIT_BAD_INPUT, exit_code, worst
from tester.cluster import ClusterError, parse_address
from tester.cluster.runs import Provision
from tester.report import VERDICT_TEXT, RunSummary, render_index, summarize

#: runs one configuration (a dict of ``raftlab test`` settings) and returns its run folder
RunOne = Callable[[dict[str, Any]], Path]

_KNOWN = {"name", "store", "dbs", "workloads", "nemeses", "seeds", "settings", "junit", "out",
          "sim", "inventories", "fleet_nodes"}
_SIM_KNOWN = {"seeds", "nodes"}
_KEY_JSON = {"db_opt", "nemesis_opt"}  # settings that may be a mapping of option -> value
SIM_DB = "raftnode (simulated)"
_MATRIX = ("db", "workload", "nemesis", "seed")
_WHERE = {"fleet", "inventory", "nodes"}  # the settings that say where real runs go


class CampaignError(ValueError):
    """A bad campaign file; the message names the file and the field."""


class RunFailed(RuntimeError):
    """One run could not be carried out (it has no verdict); the campaign goes on."""

    def __init__(self, message: str, run_dir: Path | None = None):
        super().__init__(message)
        self.run_dir = run_dir


@dataclass
class Campaign:
    name: str
    dbs: list[str]
    workloads: list[str]
    nemeses: list[str]
    seeds: list[int]
    settings: dict[str, Any] = field(default_factory=dict)
    store: str = "reports"
    junit: str | None = None
    out: str | None = None
    sim_seeds: int = 0  # 0: no simulation
    sim_nodes: list[int] = field(default_factory=lambda: [3])
    inventories: list[str] = field(default_factory=list)  # --cluster: a run holds one
    fleet_nodes: int = 5  # --cluster without inventories: each run's own local fleet

    def provision(self) -> Provision:
        """Where a run stands when it runs on a cluster's worker."""
        inventories = self.inventories or (
            [self.settings["inventory"]] if isinstance(self.settings.get("inventory"), str)
            else [])
        return Provision(tuple(inventories), self.fleet_nodes)

    def sim_cells(self) -> list[dict[str, Any]]:
        """One ``raftlab sim`` run per cluster size; they go first (minutes, most bugs)."""
        if not self.sim_seeds:
            return []
        from tester.sim.cli import SIM_WORKLOADS

        unsafe = self.settings.get("unsafe") or []  # the real runs' build, simulated too
        # the campaign's workloads that the simulator's clients speak (registers at least)
        workloads = [w for w in self.workloads if w in SIM_WORKLOADS] or ["registers"]
        return [{"sim": True, "db": SIM_DB, "workload": w, "nemesis": "swarm",
                 "seed": f"0..{self.sim_seeds - 1}", "seeds": self.sim_seeds, "nodes": n,
                 "unsafe": [unsafe] if isinstance(unsafe, str) else list(unsafe),
                 "store": self.store, "name": _slug(f"{self.name}-sim-{n}-nodes-{w}")}
                for n in self.sim_nodes for w in workloads]

    def cells(self) -> list[dict[str, Any]]:
        """Everything the campaign runs, in order: the simulations, then the matrix."""
        return self.sim_cells() + self.matrix()

    def matrix(self) -> list[dict[str, Any]]:
        """One configuration per run, in a stable order (seed varies fastest)."""
        cells = itertools.product(self.dbs, self.workloads, self.nemeses, self.seeds)
        return [
            {**self.settings, "store": self.store, "db": db, "workload": w, "nemesis": n,
             "seed": s, "name": _slug(f"{self.name}-{db.split(':')[-1]}-{w}-{n}")}
            for db, w, n, s in cells
        ]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_").lower()


def _names(path: str, data: dict[str, Any], field_: str) -> list[str]:
    v = data.get(field_)
    if v is None:
        raise CampaignError(f"{path}: field {field_!r} is missing (a list of names)")
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not v or not all(isinstance(x, str) and x.strip() for x in v):
        raise CampaignError(f"{path}: field {field_!r} must be a non-empty list of names, got {v!r}")
    return [x.strip() for x in v]


def parse(data: Any, path: str = "campaign") -> Campaign:
    """Validate a decoded campaign document; errors name the field."""
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: expected a mapping of fields, got {type(data).__name__}")
    _reject_unknown(path, data, _KNOWN)
    name = data.get("name", Path(path).stem)
    if not isinstance(name, str) or not _slug(name):
        raise CampaignError(f"{path}: field 'name' must be a non-empty string, got {name!r}")
    seeds = data.get("seeds", 1)
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1:
        seeds = list(range(1, seeds + 1))
    elif not (isinstance(seeds, list) and seeds
              and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        raise CampaignError(f"{path}: field 'seeds' must be a positive count or a list of "
                            f"integers, got {seeds!r}")
    settings = data.get("settings") or {}
    if not isinstance(settings, dict):
        raise CampaignError(f"{path}: field 'settings' must be a mapping, got {settings!r}")
    clash = sorted(set(settings) & set(_MATRIX) | ({"name"} & set(settings)))
    if clash:
        raise CampaignError(f"{path}: field 'settings.{clash[0]}' is set by the matrix; use "
                            f"'{clash[0]}s' (or the campaign name) instead")
    for k, v in settings.items():
        if not isinstance(k, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", k):
            raise CampaignError(f"{path}: field 'settings.{k}': expected an option name such "
                                f"as time_limit")
        if isinstance(v, dict) and k in _KEY_JSON and all(isinstance(x, str) for x in v):
            continue  # db_opt: {faketime_cache: 0} -> --db-opt faketime_cache=0
        if not isinstance(v, (str, int, float, bool, list)) or (
            isinstance(v, list) and not all(isinstance(x, (str, int, float)) for x in v)
        ):
            raise CampaignError(f"{path}: field 'settings.{k}' must be a value or a list of "
                                f"values, got {v!r}")
    for k in ("store", "junit", "out"):
        if data.get(k) is not None and not isinstance(data[k], str):
            raise CampaignError(f"{path}: field {k!r} must be a path, got {data[k]!r}")
    camp = Campaign(name, _names(path, data, "dbs"), _names(path, data, "workloads"),
                    _names(path, data, "nemeses"), seeds, settings,
                    data.get("store") or "reports", data.get("junit"), data.get("out"))
    if data.get("sim") is not None:
        camp.sim_seeds, camp.sim_nodes = _parse_sim(path, data["sim"])
    if data.get("inventories") is not None:
        camp.inventories = _names(path, data, "inventories")
    nodes = data.get("fleet_nodes", 5)
    if not (isinstance(nodes, int) and not isinstance(nodes, bool) and 1 <= nodes <= 200):
        raise CampaignError(f"{path}: field 'fleet_nodes' must be a node count (1-200), "
                            f"got {nodes!r}")
    camp.fleet_nodes = nodes
    _check_names(path, camp)
    _check_values(path, camp)
    return camp


def _reject_unknown(path: str, fields: dict[Any, Any], known: set[str], prefix: str = "") -> None:
    """A misspelt field is an error naming it, not a setting silently ignored."""
    unknown = sorted(set(map(str, fields)) - known)
    if unknown:
        names = ", ".join(f"'{prefix}{u}'" for u in unknown)
        raise CampaignError(f"{path}: unknown field{'s' if len(unknown) > 1 else ''} {names}; "
                            f"expected {', '.join(sorted(known))}")


def _parse_sim(path: str, sim: Any) -> tuple[int, list[int]]:
    if not isinstance(sim, dict):
        raise CampaignError(f"{path}: field 'sim' must be a mapping (seeds, nodes), got {sim!r}")
    _reject_unknown(path, sim, _SIM_KNOWN, "sim.")
    seeds = sim.get("seeds", 1000)
    if not (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1):
        raise CampaignError(f"{path}: field 'sim.seeds' must be a positive count, got {seeds!r}")
    nodes = sim.get("nodes", [3])
    nodes = [nodes] if isinstance(nodes, int) and not isinstance(nodes, bool) else nodes
    if not (isinstance(nodes, list) and nodes and all(
            isinstance(n, int) and not isinstance(n, bool) and 3 <= n <= 7 for n in nodes)):
        raise CampaignError(f"{path}: field 'sim.nodes' must be cluster sizes between 3 and "
                            f"7, got {nodes!r}")
    return seeds, nodes


def _check_names(path: str, camp: Campaign) -> None:
    """Catch a misspelt nemesis or workload now, not after an hour of runs."""
    try:
        from tester import nemesis as nem
        from tester import workloads as wl
    except ImportError:  # pragma: no cover - the tester is part of raftlab
        return
    for i, n in enumerate(camp.nemeses):
        try:
            nem.parse(n)
        except ValueError as e:
            raise CampaignError(f"{path}: field 'nemeses[{i}]': {e}") from None
    options = test_options()
    bad = sorted(k for k in camp.settings if options and "--" + k.replace("_", "-") not in options)
    if bad:  # every one at once, sorted: one fix-and-retry round, not one per typo
        raise CampaignError(
            f"{path}: field{'s' if len(bad) > 1 else ''} "
            + ", ".join(f"'settings.{k}'" for k in bad)
            + f": raftlab test has no option{'s' if len(bad) > 1 else ''} "
            + ", ".join("--" + k.replace("_", "-") for k in bad))
    for i, w in enumerate(camp.workloads):
        if w not in wl.WORKLOADS:
            raise CampaignError(f"{path}: field 'workloads[{i}]': unknown workload {w!r}; "
                                f"expected one of {', '.join(wl.WORKLOADS)}")


@functools.cache
def _test_parser() -> Any:
    """``raftlab test``'s argument parser (None if it is not available); built once, with only
    that subcommand imported."""
    import argparse

    from tester.cli import build_parser

    for action in build_parser("test")._actions:
        if isinstance(action, argparse._SubParsersAction) and "test" in action.choices:
            return action.choices["test"]
    return None


def _test_actions() -> dict[str, Any]:
    """``raftlab test``'s options: option string -> its argparse action."""
    parser = _test_parser()
    return {o: a for a in parser._actions for o in a.option_strings} if parser else {}


def test_options() -> set[str]:
    """The option strings ``raftlab test`` accepts (empty if it is not available)."""
    return set(_test_actions())


def _check_values(path: str, camp: Campaign) -> None:
    """Every setting has the type ``raftlab test`` takes, and every run's options pass its
    checks: a wrong value is an error naming its field now, before any run starts."""
    import argparse

    from tester import test_cli

    actions = _test_actions()
    for k, v in camp.settings.items():
        a = actions.get("--" + k.replace("_", "-"))
        if a is None:
            continue
        where = f"{path}: field 'settings.{k}'"
        if a.nargs == 0:  # a switch such as no_deploy
            if not isinstance(v, bool):
                raise CampaignError(f"{where} must be true or false, got {v!r}")
            continue
        if isinstance(v, list) and not isinstance(a, argparse._AppendAction):
            raise CampaignError(f"{where} takes one value, got the list {v!r}")
        for x in v if isinstance(v, list) else [v]:
            if isinstance(x, bool):
                raise CampaignError(f"{where} must be a value, not {x!r}")
            try:
                value = a.type(str(x)) if callable(a.type) else str(x)
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                kind = {"int": "an integer", "float": "a number"}.get(
                    getattr(a.type, "__name__", ""), "a valid value")
                raise CampaignError(f"{where} must be {kind}, got {x!r}") from None
            if a.choices is not None and value not in a.choices:
                raise CampaignError(f"{where}: {x!r} is not one of "
                                    f"{', '.join(map(str, a.choices))}")
    parser = _test_parser()
    for cfg in camp.matrix() if parser else []:
        argv = test_argv(cfg)[1:]
        if not _WHERE & set(cfg):  # where the runs go is preflight's to check
            argv += ["--fleet", "-"]
        try:
            args = parser.parse_args(argv)
        except SystemExit:  # argparse said why on stderr
            raise CampaignError(f"{path}: field 'settings': raftlab test refuses "
                                f"{' '.join(test_argv(cfg))}") from None
        try:
            test_cli.validate(args)
        except test_cli.BadInput as e:
            msg = str(e)
            flag = re.match(r"--([a-z-]+)", msg)
            name = flag.group(1).replace("-", "_") if flag else ""
            field_ = f"settings.{name}" if name in camp.settings else "settings"
            raise CampaignError(f"{path}: field '{field_}': {msg}") from None


def preflight(path: str, camp: Campaign) -> None:
    """What real runs need before the first starts: every database adapter loads, and the
    fleet or inventory exists. A missing one is bad input (254), not a matrix of unknown
    verdicts."""
    from tester import fleet
    from tester.db import load_db

    for i, db in enumerate(camp.dbs):
        try:
            load_db(db, **({"deploy": False} if db in ("raftnode", "etcd") else {}))
        except ValueError as e:
            raise CampaignError(f"{path}: field 'dbs[{i}]': {e}") from None

    if not _WHERE & set(camp.settings):
        raise CampaignError(f"{path}: field 'settings.fleet' is missing: real runs need "
                            "settings.fleet, settings.inventory or settings.nodes")
    name = camp.settings.get("fleet")
    if isinstance(name, str) and not fleet.inventory_path(name).exists():
        raise CampaignError(f"{path}: field 'settings.fleet': no such fleet {name!r}; run: "
                            f"raftlab fleet up --name {name}")
    inv = camp.settings.get("inventory")
    if isinstance(inv, str) and not Path(inv).is_file():
        raise CampaignError(f"{path}: field 'settings.inventory': no such file {inv!r}")


def load(path: str | Path) -> Campaign:
    """Read and validate a campaign YAML file."""
    import yaml

    p = str(path)
    try:
        with open(p, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except FileNotFoundError:
        raise CampaignError(f"{p}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise CampaignError(f"{p}: cannot read: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise CampaignError(f"{p}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    return parse(data, p)


# --------------------------------------------------------------------------- running


def test_argv(config: dict[str, Any]) -> list[str]:
    """The ``raftlab test`` command line of one configuration."""
    argv = ["test"]
    for k, v in config.items():
        flag = "--" + k.replace("_", "-")
        if v is True:
            argv.append(flag)
        elif v is False or v is None:
            continue
        elif isinstance(v, list):
            for x in v:
                argv += [flag, str(x)]
        elif isinstance(v, dict):  # a mapping of _KEY_JSON: one KEY=JSON flag per key
            for key, x in v.items():
                argv += [flag, f"{key}={json.dumps(x)}"]
        else:
            argv += [flag, str(v)]
    return argv


def sim_argv(config: dict[str, Any]) -> list[str]:
    """The ``raftlab sim`` command line of a simulation cell."""
    out = str(Path(config["store"]) / config["name"])
    argv = ["sim", "--seeds", str(config["seeds"]), "--nodes", str(config["nodes"]),
            "--workload", str(config["workload"]), "--out", out, "--quiet"]
    for u in config.get("unsafe") or []:
        argv += ["--unsafe", str(u)]
    if config.get("cluster"):
        argv += ["--cluster", str(config["cluster"])]
    return argv


def run_sim(config: dict[str, Any]) -> Path | None:
    """Run a simulation cell; the run folder of its shrunk violation, or None when clean."""
    from tester.cli import build_parser

    argv = sim_argv(config)
    args = build_parser("sim").parse_args(argv)
    out = Path(args.out)
    before = set(out.glob("seed-*/2*"))
    code = args.func(args)
    if code == 0:
        return None
    made = sorted(set(out.glob("seed-*/2*")) - before)
    if code != 1 or not made:
        raise RunFailed(f"raftlab sim exited {code} without a verdict")
    return made[-1]


def _sim_summary(cfg: dict[str, Any], run_dir: Path | None) -> RunSummary:
    if run_dir is not None:
        s = summarize(run_dir)
        s.name, s.nemesis = cfg["name"], cfg["nemesis"]
        s.seed = f"{s.seed} of {cfg['seed']}"
        try:
            v = json.loads((run_dir / "results.json").read_text(encoding="utf-8"))["violation"]
            s.error = f"{v['property']}: {v['message']}"
        except (OSError, ValueError, KeyError, TypeError):
            pass
        return s
    return RunSummary(None, cfg["name"], "", True, f"{SIM_DB}, {cfg['nodes']} nodes",
                      cfg["workload"], cfg["nemesis"], cfg["seed"])


def run_test(config: dict[str, Any]) -> Path:
    """Run one configuration with ``raftlab test`` and return its run folder."""
    from tester.cli import build_parser

    argv = test_argv(config)
    try:
        args = build_parser("test").parse_args(argv)
    except SystemExit as e:
        raise RunFailed(f"bad settings for raftlab test (exit {e.code}): {' '.join(argv)}") from None
    latest = Path(config.get("store", "reports")) / config["name"] / "latest"
    before = latest.resolve() if latest.is_symlink() else None
    code = args.func(args)
    run_dir = latest.resolve() if latest.is_symlink() else None
    if run_dir == before:  # the link still names an older run: this one made no folder
        run_dir = None
    if code == EXIT_BAD_INPUT or run_dir is None:
        raise RunFailed(f"raftlab test exited {code} before recording a run", run_dir)
    return run_dir


@dataclass
class Entry:
    """One cell of the matrix after it ran."""

    config: dict[str, Any]
    summary: RunSummary
    seconds: float
    interrupted: bool = False  # Ctrl-C: the campaign stopped here
    phases: dict[str, float] = field(default_factory=dict)  # on a cluster: where time went

    @property
    def verdict(self) -> Any:
        return self.summary.verdict


def run_campaign(camp: Campaign, run_one: RunOne = run_test,
                 progress: Callable[[str], None] | None = None, cluster: str | None = None,
                 provision: Provision | None = None) -> list[Entry]:
    """Run every cell of the matrix; a failed run becomes "unknown".

    Without ``cluster`` the runs go one after another here. With a Dask cluster's address (or
    ``local:N``) the simulations fan their seeds out over it, then every run of the matrix is
    a task (``tester/cluster/runs.py``: a fleet of its own or one of the campaign's
    inventories, per ``provision``); a run whose worker dies is run once more elsewhere, then
    reported unknown with the reason.
    """
    say = progress or (lambda line: print(line, file=sys.stderr, flush=True))
    cells = camp.cells()
    if cluster is None:
        return _run_here(cells, run_one, say)
    from tester.cluster import connect
    from tester.cluster.runs import sweep_slots

    own_fleets = provision is not None and not provision.inventories
    local = parse_address(cluster)[0] is None
    spares = None
    if own_fleets:  # a worker keeps its fleet for its next run of this campaign, no other
        provision = replace(provision, campaign=f"{camp.name}-{uuid.uuid4().hex[:12]}")
        if local:  # the workers' first fleets come up on this machine while the cluster starts
            spares = _spares_ahead(provision, cluster, sum(not c.get("sim") for c in cells))
    try:
        with connect(cluster) as client:
            try:
                address = client.scheduler.address
                sims = [{**c, "cluster": address} for c in cells if c.get("sim")]
                entries = _run_here(sims, run_one, say, total=len(cells))
                if any(e.interrupted for e in entries):
                    return entries
                _wait_spares(spares, say)
                entries += _run_on(client, [c for c in cells if not c.get("sim")], run_one,
                                   provision, say, first=len(sims) + 1, total=len(cells))
            finally:  # also on failure and Ctrl-C: no kept fleet outlives the campaign
                if own_fleets:
                    _release(client, provision.campaign, say, sweep=not local)
    finally:
        if own_fleets and local:
            _wait_spares(spares, say)  # none may still be coming up when the slots are swept
            # a local cluster is closed by now, its workers gone whatever state they were in
            # (Ctrl-C): every slot is free, and what a killed run left up is removed here
            for removed in sweep_slots():
                say(f"removed {removed}")
    return entries


def _spares_ahead(provision: Provision, cluster: str | None, runs: int) -> Future[list[str]]:
    """One fleet per worker of the local cluster (no more than there are runs), coming up in
    the background: a worker takes one for its first run rather than bringing one up then."""
    import os
    from concurrent.futures import ThreadPoolExecutor

    from tester.cluster.runs import spare_fleets

    n = min(parse_address(cluster)[1] or os.cpu_count() or 1, runs)
    pool = ThreadPoolExecutor(1)
    try:
        return pool.submit(spare_fleets, n, provision.fleet_nodes, str(provision.campaign))
    finally:
        pool.shutdown(wait=False)  # its thread ends with the one task


def _wait_spares(spares: Future[list[str]] | None, say: Callable[[str], None]) -> None:
    if spares is None:
        return
    try:
        spares.result()
    except Exception as e:  # the workers bring up their own, and say what fails
        say(f"could not bring the workers' fleets up ahead: {type(e).__name__}: {e}")


def _release(client: Any, campaign: str, say: Callable[[str], None], sweep: bool) -> None:
    """Every worker takes down the fleets it kept for ``campaign``; then (``sweep``) each
    machine's slots that no worker holds (a worker that died mid-run left its fleet up) are
    swept. A local cluster's machine is this one: the campaign sweeps it once it is closed."""
    from tester.cluster.runs import release_fleets, sweep_slots

    try:
        client.run(release_fleets, campaign)
        for worker, removed in (client.run(sweep_slots) if sweep else {}).items():
            if removed:
                say(f"removed what dead runs left on {worker}: {', '.join(removed)}")
    except Exception as e:  # the cluster is gone: a local one's slots are swept after it
        say(f"could not release the campaign's fleets on the cluster: {type(e).__name__}: {e}")


def _label(cfg: dict[str, Any]) -> str:
    if cfg.get("sim"):
        return f"simulation: {cfg['nodes']} nodes, workload={cfg['workload']}, seeds {cfg['seed']}"
    return f"db={cfg['db']} workload={cfg['workload']} nemesis={cfg['nemesis']} seed={cfg['seed']}"


def _unknown(cfg: dict[str, Any], msg: str, run_dir: Path | None = None) -> RunSummary:
    """The index line of a run without a verdict, with the reason."""
    summary = summarize(run_dir, error=msg) if run_dir else RunSummary(
        None, cfg["name"], "", "unknown", cfg["db"], cfg["workload"], cfg["nemesis"],
        str(cfg["seed"]), msg)
    summary.verdict = "unknown"
    return summary


def _done(i: int, total: int, cfg: dict[str, Any], summary: RunSummary, secs: float,
          say: Callable[[str], None], interrupted: bool = False) -> Entry:
    tail = f" {summary.error}" if summary.error else ""
    where = f" {summary.dir}" if summary.dir else ""
    say(f"[{i}/{total}] {_label(cfg)} -> {VERDICT_TEXT[summary.verdict]} "
        f"({secs:.1f} s){where}{tail}")
    return Entry(cfg, summary, secs, interrupted)


def _run_here(cells: list[dict[str, Any]], run_one: RunOne, say: Callable[[str], None],
              total: int | None = None) -> list[Entry]:
    """The cells one after another in this process."""
    total = total or len(cells)
    entries: list[Entry] = []
    for i, cfg in enumerate(cells, start=1):
        say(f"[{i}/{total}] {_label(cfg)} ...")
        t0 = time.monotonic()
        interrupted = False
        try:
            if cfg.get("sim"):
                summary = _sim_summary(cfg, run_sim(dict(cfg)))
            else:
                run_dir = run_one(dict(cfg))
                summary = summarize(run_dir)
                # the runner turns Ctrl-C into a cleanly stopped run: stop the campaign there
                interrupted = _was_interrupted(run_dir)
        except KeyboardInterrupt:
            interrupted = True
            summary = _unknown(cfg, "interrupted (Ctrl-C)")
        except Exception as e:  # one broken run must not stop the gate from reporting
            msg = f"{type(e).__name__}: {e}" if not isinstance(e, RunFailed) else str(e)
            summary = _unknown(cfg, msg, getattr(e, "run_dir", None))
        entries.append(_done(i, total, cfg, summary, time.monotonic() - t0, say, interrupted))
        if interrupted:
            say(f"interrupted: {total - i} run(s) not started")
            break
    return entries


def _run_on(client: Any, cells: list[dict[str, Any]], run_one: RunOne,
            provision: Provision | None, say: Callable[[str], None], first: int,
            total: int) -> list[Entry]:
    """The cells as tasks on the cluster's workers, reported as they finish."""
    from tester.cluster import Lost, fan_out
    from tester.cluster.runs import run_on_worker, unpack

    for i, cfg in enumerate(cells, start=first):
        say(f"[{i}/{total}] {_label(cfg)} ... (queued on the cluster)")
    jobs = [(dict(cfg), run_one, provision) for cfg in cells]
    got: dict[int, Entry] = {}
    try:
        for k, res in fan_out(client, run_on_worker, jobs, describe=lambda j: _label(j[0]),
                              note=say, one_per_thread=True):
            cfg = cells[k]
            if isinstance(res, Lost):
                summary, secs = _unknown(cfg, f"no result: {res.reason}"), 0.0
            else:
                run_dir = unpack(res.tar, cfg["store"], cfg["name"]) if res.tar else None
                summary = (_unknown(cfg, res.error, run_dir) if res.error or run_dir is None
                           else summarize(run_dir))
                secs = res.seconds
            got[k] = _done(first + k, total, cfg, summary, secs, say)
            got[k].phases = {} if isinstance(res, Lost) else res.phases
    except KeyboardInterrupt:
        left = [k for k in range(len(cells)) if k not in got]
        say(f"interrupted: {len(left)} run(s) not finished")
        got[left[0]] = Entry(cells[left[0]], _unknown(cells[left[0]], "interrupted (Ctrl-C)"),
                             0.0, True)
    return [got[k] for k in sorted(got)]


def _was_interrupted(run_dir: Path) -> bool:
    try:
        res = json.loads((Path(run_dir) / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(res, dict) and res.get("interrupted") is True


# --------------------------------------------------------------------------- outputs


def write_junit(camp: Campaign, entries: list[Entry], path: Path) -> Path:
    """JUnit XML: a test case per run; invalid is a failure, unknown an error."""
    failures = sum(1 for e in entries if e.verdict is False)
    errors = sum(1 for e in entries if e.verdict == "unknown")
    total = sum(e.seconds for e in entries)
    suites = ET.Element("testsuites", name=f"raftlab campaign {camp.name}", tests=str(len(entries)),
                        failures=str(failures), errors=str(errors), time=f"{total:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=camp.name, tests=str(len(entries)),
                          failures=str(failures), errors=str(errors), skipped="0",
                          time=f"{total:.3f}",
                          timestamp=time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()))
    for e in entries:
        c, s = e.config, e.summary
        sim = bool(c.get("sim"))
        case = ET.SubElement(suite, "testcase",
                             classname="raftlab.sim" if sim else f"raftlab.{c['db']}.{c['workload']}",
                             name=(f"nodes={c['nodes']} workload={c['workload']} "
                                   f"seeds={c['seed']}" if sim else
                                   f"nemesis={c['nemesis']} seed={c['seed']}"),
                             time=f"{e.seconds:.3f}")
        where = f"run folder: {s.dir}\nreport: {s.dir / 'report.html'}" if s.dir else "no run folder"
        if e.verdict is False and sim:
            f = ET.SubElement(case, "failure", type="invalid",
                              message=f"simulation found a violation: {s.error}")
            f.text = where
        elif e.verdict is False and s.liveness and not s.bad_keys:
            f = ET.SubElement(case, "failure", type="invalid",
                              message=f"liveness after the final heal {s.liveness}")
            f.text = where
        elif e.verdict is False:
            keys = ", ".join(s.bad_keys) or "see the report"
            f = ET.SubElement(case, "failure", type="invalid",
                              message=f"history is not linearizable (keys: {keys})")
            f.text = where
        elif e.verdict == "unknown":
            err = ET.SubElement(case, "error", type="unknown",
                                message=s.error or "the verdict is unknown")
            err.text = where
        ET.SubElement(case, "system-out").text = where
    ET.indent(suites)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)
    return path


def write_index(camp: Campaign, entries: list[Entry], out: Path) -> Path:
    """index.html: every run coloured by verdict, linked to its report."""
    out.mkdir(parents=True, exist_ok=True)
    verdict = worst(e.verdict for e in entries)
    sims = len(camp.sim_cells())
    extra = (
        (f"<p>{sims} simulation{'s' if sims > 1 else ''} of {camp.sim_seeds} seeds, then "
         if sims else "<p>")
        + f"{len(camp.dbs)} db × {len(camp.workloads)} workload × {len(camp.nemeses)} nemesis "
        f"× {len(camp.seeds)} seed = {len(entries) - sims} runs · worst verdict "
        f"<b>{VERDICT_TEXT[verdict]}</b> (exit {exit_code(verdict)}) · "
        "<a href=\"junit.xml\">JUnit XML</a> · <a href=\"campaign.json\">campaign.json</a></p>"
    )
    page = render_index(f"campaign {camp.name}", [e.summary for e in entries], out, extra)
    (out / "index.html").write_text(page, encoding="utf-8")
    (out / "campaign.json").write_text(json.dumps({
        "name": camp.name, "valid": verdict,
        "runs": [{"config": e.config, "valid": e.verdict, "seconds": round(e.seconds, 3),
                  "run_dir": str(e.summary.dir) if e.summary.dir else None,
                  "error": e.summary.error or None,
                  **({"phases": e.phases} if e.phases else {})} for e in entries],
    }, indent=2, default=str), encoding="utf-8")
    return out / "index.html"


def output_dir(camp: Campaign) -> Path:
    if camp.out:
        return Path(camp.out)
    return Path(camp.store) / "campaigns" / _slug(camp.name) / time.strftime("%Y%m%dT%H%M%S",
                                                                             time.gmtime())


#: what a worker imports to run ``raftlab test``: imported once while the local cluster starts
RUN_MODULES = ("tester.campaign", "tester.cluster.runs", "tester.test_cli", "tester.runner",
               "tester.control", "tester.dbs.raftnode", "tester.report")


def main(path: str, run_one: RunOne = run_test, out: str | None = None,
         junit: str | None = None, dry_run: bool = False, cluster: str | None = None) -> int:
    """Run a campaign file; the exit code is the worst verdict (254 for a bad file)."""
    try:
        camp = load(path)
    except CampaignError as e:
        print(f"raftlab campaign: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if out:
        camp.out = out
    if dry_run:
        for cfg in camp.cells():
            print("raftlab " + " ".join(sim_argv(cfg) if cfg.get("sim") else test_argv(cfg)))
        return 0
    from tester.cluster import discard_early, start_early

    # a local cluster starts while the fleets and databases are checked (not for a bad file)
    start_early(cluster, RUN_MODULES if run_one is run_test else ())
    try:
        return _checked_and_run(path, camp, run_one, junit, cluster)
    finally:
        discard_early()  # started, but the campaign stopped before it connected


def _checked_and_run(path: str, camp: Campaign, run_one: RunOne, junit: str | None,
                     cluster: str | None) -> int:
    if run_one is run_test and camp.matrix():
        try:
            preflight(path, camp)
        except CampaignError as e:
            print(f"raftlab campaign: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
    # the fleets and inventories of raftlab test; another run_one (tests) stands on its own
    provision = camp.provision() if run_one is run_test else None
    try:
        parse_address(cluster)
        entries = run_campaign(camp, run_one, cluster=cluster, provision=provision)
    except ClusterError as e:  # a bad or unreachable address: nothing was run
        print(f"raftlab campaign: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    d = output_dir(camp)
    index = write_index(camp, entries, d)
    xml = write_junit(camp, entries, Path(junit or camp.junit or d / "junit.xml"))
    verdict = worst(e.verdict for e in entries)
    tally = {w: sum(1 for e in entries if VERDICT_TEXT[e.verdict] == w)
             for w in ("VALID", "INVALID", "UNKNOWN")}
    print(f"campaign {camp.name}: {VERDICT_TEXT[verdict]} "
          f"({', '.join(f'{n} {w.lower()}' for w, n in tally.items())})")
    print(f"index: {index}")
    print(f"junit: {xml}")
    if any(e.interrupted for e in entries):
        print("raftlab campaign: interrupted (the index and JUnit file cover the runs so far)",
              file=sys.stderr)
        return 130
    return exit_code(verdict)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "campaign",
        help="run a matrix of tests (dbs × workloads × nemeses × seeds) and gate on it",
        description="Run every combination in FILE.yml, write an index page and JUnit XML, "
        "and exit with the worst verdict: 0 valid, 1 invalid, 2 unknown, 254 bad file.",
    )
    p.add_argument("file", metavar="FILE.yml", help="the campaign file")
    p.add_argument("--out", metavar="DIR",
                   help="where index.html and junit.xml go (default "
                   "<store>/campaigns/<name>/<timestamp>)")
    p.add_argument("--junit", metavar="PATH", help="write the JUnit XML here instead")
    p.add_argument("--dry-run", action="store_true",
                   help="print the raftlab test command of every run and stop")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run each run as a task on this Dask cluster (tcp://HOST:PORT, as "
                        "raftlab cluster up prints, or local:N): each brings up a local fleet "
                        "of its own, or holds one of the campaign's inventories")
    p.set_defaults(func=lambda a: main(a.file, out=a.out, junit=a.junit, dry_run=a.dry_run,
                                       cluster=a.cluster))

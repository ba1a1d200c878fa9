"""The test runner: Jepsen's lifecycle, one step after another, each logged with its timing.

fleet -> DB setup (parallel, retried) -> clients open -> workers and nemesis run the generator
-> final heal -> quiet period and final reads -> node logs -> teardown -> check -> store.

Whatever happens -- an internal error, Ctrl-C -- every fault is healed, the database stopped,
the partial history kept (it is flushed op by op) and the run folder completed. A second Ctrl-C
during that cleanup is the only way to skip it.

Workers follow Jepsen's client semantics: one thread per process, spread over the nodes; a
completion is ``ok``, ``fail`` (definitely not applied) or ``info`` (unknown); a read that
could not complete is a ``fail`` (reads change nothing); after an ``info`` the worker carries on
as process ``id + concurrency`` with a fresh client. Times come from this machine's monotonic
clock, in ns since the test began.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from checker.history import NEMESIS, HistoryWriter, Op
from checker.verdict import UNKNOWN, Verdict, worst
from tester import bounds, liveness, nodeevents
from tester import generator as gen
from tester import nemesis as nem
from tester import workloads as wl
from tester.store import RunStore

log = logging.getLogger("raftlab")


@dataclass
class RunConfig:
    """Everything that defines a run; stored verbatim in test.json."""

    name: str = "raftlab"
    db: str = "raftnode"
    workload: str = "registers"
    nemesis: list[str] = field(default_factory=lambda: ["partition"])
    #: None: the hunting schedule (each family its own loop, random timings); a number: one
    #: action every that many seconds (the interval schedule)
    nemesis_interval: float | None = None
    time_limit: float = 60.0
    concurrency: int = 10
    rate: float = 100.0  # ops/s over all clients; 0 = as fast as possible
    keys: int = 10
    ops_per_key: int | None = 200
    seed: int = 0
    unsafe: list[str] = field(default_factory=list)
    store: str = "reports"
    deploy: bool = True
    op_timeout: float = 5.0
    #: liveness: seconds after the final heal within which the cluster must converge (one
    #: leader followed by all, every node applied to the same index); adapters without
    #: ``node_status`` get the fixed ``quiet`` wait instead and no liveness check
    settle_timeout: float = 10.0
    quiet: float = 2.0  # seconds between the final heal and the final reads (no node_status)
    #: a client or nemesis thread still busy this long after the time limit (plus
    #: op_timeout) is stuck: the run goes on without it and ends "unknown"; also how long
    #: the final heal waits for nemesis actions in flight
    hang_timeout: float = 60.0
    final_time: float = 15.0  # upper bound on the final-reads phase
    setup_attempts: int = 3
    ready_timeout: float = 30.0
    leave_db_running: bool = False
    check_timeout: float = 60.0
    nemesis_opts: dict[str, Any] = field(default_factory=dict)
    db_opts: dict[str, Any] = field(default_factory=dict)


@dataclass
class Outcome:
    valid: Verdict
    run_dir: Path
    results: dict[str, Any]
    report: Path | None = None


class Recorder:
    """Appends history records through one lock; keeps them in memory for the statistics."""

    def __init__(self, path: Path):
        self.lock = threading.Lock()
        self.writer = HistoryWriter(path)
        self.ops: list[Op] = []
        self.t0 = time.monotonic_ns()
        self.closed = False

    def now(self) -> int:
        return time.monotonic_ns() - self.t0

    def record(self, type_: str, process: int | str, f: str, key: Any = None, value: Any = None,
               error: Any = None, node: str | None = None, extra: dict[str, Any] | None = None
               ) -> Op:
        with self.lock:
            op = Op(len(self.ops), self.now(), type_, process, f, value, key, error, node,
                    dict(extra or {}))
            if self.closed:  # a thread abandoned as stuck came back after the run ended
                log.warning("dropped a record after the history was closed: %s", op)
                return op
            self.ops.append(op)
            self.writer.append(op)
            return op

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.writer.close()


class ClientWorker:
    """One client thread's state: its node, its current process id and its client."""

    def __init__(self, thread: int, node: Any, db: Any, cfg: RunConfig, rec: Recorder,
                 read_fs: frozenset[str]):
        self.thread, self.node, self.db, self.cfg, self.rec = thread, node, db, cfg, rec
        self.process = thread
        self.read_fs = read_fs
        self.client: Any = None
        #: set when the run gave up waiting for this worker: its late completion is dropped,
        #: so its operation stays indeterminate (an invoke without completion)
        self.abandoned = False

    def open(self) -> None:
        """Connect a fresh client to this worker's node."""
        c = self.db.client(dict(self.cfg.db_opts))
        c.open(self.node)
        self.client = c

    def close(self) -> None:
        if self.client is not None:
            with suppress(Exception):
                self.client.close()
            self.client = None

    def perform(self, req: dict[str, Any]) -> dict[str, Any]:
        f, key, value = req["f"], req.get("key"), req.get("value")
        extra = {"final": True} if req.get("final") else None
        self.rec.record("invoke", self.process, f, key, value, node=self.node.name, extra=extra)
        typ: str
        try:
            if self.client is None:
                try:
                    self.open()
                except Exception as e:  # nothing was sent: definitely not applied
                    typ, out, err = "fail", value, f"connect: {type(e).__name__}: {e}"
                    raise _Done() from None
            typ, out, err = self.client.invoke(f, key, value, self.cfg.op_timeout)
        except _Done:
            pass
        except Exception as e:  # the request may have reached the node: indeterminate
            typ, out, err = "info", value, f"{type(e).__name__}: {e}"
        if typ not in ("ok", "fail", "info"):
            typ, err = "info", f"client returned type {typ!r}"
        if typ == "info" and f in self.read_fs:
            typ = "fail"  # a read has no effect, so one that did not complete did not happen
        if typ != "ok":
            out = value
        if self.abandoned:
            return dict(req, type="info", value=value, error="abandoned")
        self.rec.record(typ, self.process, f, key, out, err, self.node.name, extra)
        done = dict(req, type=typ, value=out, error=err)
        if typ == "info":
            # Jepsen's rule: this process may still have an op in flight; continue as a new one
            self.close()
            self.process += self.cfg.concurrency
        return done


class _Done(Exception):
    pass


class NemesisWorker:
    """The nemesis thread's executor: performs fault requests and records them."""

    def __init__(self, nemesis: nem.Nemesis, rec: Recorder):
        self.nemesis, self.rec = nemesis, rec
        self.abandoned = False

    def perform(self, req: dict[str, Any]) -> dict[str, Any]:
        f = req["f"]
        self.rec.record("invoke", NEMESIS, f, value=req.get("value"))
        typ, value, err = self.nemesis.invoke(req)
        if self.abandoned:
            log.warning("nemesis %s finished after the run gave up on it: %s", f, value)
            return dict(req, type=typ, value=value, error=err)
        self.rec.record(typ, NEMESIS, f, value=value, error=err)
        log.info("nemesis %s: %s%s", f, value, f" ({err})" if err else "")
        return dict(req, type=typ, value=value, error=err)


class Interpreter:
    """Runs a generator on real threads: each asks for requests, performs them, reports back.

    All generator calls happen under one condition variable; a thread told to wait sleeps on
    it until its time comes or another op completes. Bounded by ``deadline`` (seconds since
    the test began) and by ``stop``: a thread still performing a request at the deadline is
    stuck; :meth:`run` abandons it and names it.
    """

    def __init__(self, g: gen.Generator, workers: dict[gen.Thread, Any], rec: Recorder,
                 seed: int, deadline: float, stop: threading.Event):
        self.g, self.workers, self.rec, self.seed = g, workers, rec, seed
        self.deadline, self.stop = deadline, stop
        self.cond = threading.Condition()
        self.threads = tuple(workers)
        self.errors: list[BaseException] = []
        #: thread -> (request, start in s since the test began) while it performs one
        self.busy: dict[gen.Thread, tuple[dict[str, Any], float]] = {}

    def _loop(self, thread: gen.Thread) -> None:
        worker = self.workers[thread]
        rng = gen.thread_rng(self.seed, thread)
        try:
            while not self.stop.is_set():
                now = self.rec.now() / 1e9
                if now >= self.deadline:
                    return
                ctx = gen.Context(now, thread, rng, self.threads, getattr(worker, "process", None))
                with self.cond:
                    r = self.g.next(ctx)
                    if r is None:
                        self.cond.notify_all()  # a phase may now be complete for the others
                        return
                    if isinstance(r, gen.Pending):
                        wait = 0.05 if r.until is None else r.until - now
                        self.cond.wait(max(0.0, min(wait, 0.5, self.deadline - now)))
                        continue
                self.busy[thread] = (r, now)
                done = worker.perform(r)
                self.busy.pop(thread, None)
                if getattr(worker, "abandoned", False):
                    return
                ctx.time = self.rec.now() / 1e9
                with self.cond:
                    self.g.update(ctx, done)
                    self.cond.notify_all()
        except BaseException as e:  # noqa: BLE001 - reported to the main thread
            self.errors.append(e)
            self.stop.set()

    def run(self) -> list[str]:
        """Run until the generator is done, ``stop`` or the deadline; return what each
        thread still busy one second past the deadline was doing (it is abandoned)."""
        ts = {threading.Thread(target=self._loop, args=(t,), name=f"worker-{t}", daemon=True): t
              for t in self.threads}
        for t in ts:
            t.start()
        left = self.deadline + 1.0 - self.rec.now() / 1e9
        stuck = [ts[t] for t in bounds.join_all(ts, max(0.0, left))]
        if self.errors:
            raise self.errors[0]
        now = self.rec.now() / 1e9
        out = []
        for thread in stuck:
            worker = self.workers[thread]
            worker.abandoned = True
            req, since = self.busy.get(thread, ({}, now))
            what = " ".join(str(x) for x in (req.get("f"), req.get("key")) if x is not None)
            node = getattr(getattr(worker, "node", None), "name", None)
            out.append(f"{thread if isinstance(thread, str) else f'worker {thread}'} stuck "
                       f"in {what or 'a request'}{f' on {node}' if node else ''} for "
                       f"{now - since:.1f} s")
        return out


# --------------------------------------------------------------------------- statistics


#: fail errors that are the system's real answer (not unavailability)
ANSWERED = frozenset({"cas-mismatch"})


def fault_windows(ops: list[Op], end: int) -> list[tuple[int, int, str]]:
    """(start ns, end ns, package) while each nemesis package was in force."""
    open_: dict[str, int] = {}
    out: list[tuple[int, int, str]] = []
    for op in ops:
        if op.process != NEMESIS or op.type == "invoke":
            continue
        action, _, name = op.f.partition("-")
        if action == "start" and op.error is None:
            open_.setdefault(name, op.time)
        elif action == "stop" and name in open_:
            out.append((open_.pop(name), op.time, name))
        elif op.f == "heal-all":
            out.extend((t, op.time, n) for n, t in open_.items())
            open_.clear()
    out.extend((t, end, n) for n, t in open_.items())
    return sorted(out)


def quantiles(xs: list[float]) -> dict[str, float]:
    """p50, p95, p99 and the maximum ("1") of ``xs``, as results.json and the report give them."""
    if not xs:
        return {}
    xs = sorted(xs)
    return {str(q): round(xs[min(len(xs) - 1, int(q * len(xs)))], 3)
            for q in (0.5, 0.95, 0.99)} | {"1": round(xs[-1], 3)}


def summarize(ops: list[Op]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(stats, perf): counts per f and type, availability with/without faults, latencies."""
    end = ops[-1].time if ops else 0
    windows = fault_windows(ops, end)
    by_f: dict[str, dict[str, int]] = {}
    lat: dict[str, list[float]] = {}
    invokes: dict[Any, Op] = {}
    avail = {"faulty": [0, 0], "healthy": [0, 0]}
    for op in ops:
        if op.process == NEMESIS:
            continue
        if op.type == "invoke":
            invokes[op.process] = op
            continue
        inv = invokes.pop(op.process, None)
        by_f.setdefault(op.f, {"ok": 0, "fail": 0, "info": 0})[op.type] += 1
        if inv is None:
            continue
        if op.type == "ok":
            lat.setdefault(op.f, []).append((op.time - inv.time) / 1e6)
        faulty = any(a <= inv.time <= b for a, b, _ in windows)
        slot = avail["faulty" if faulty else "healthy"]
        slot[0] += op.type == "ok" or op.error in ANSWERED
        slot[1] += 1
    for inv in invokes.values():  # never completed: indeterminate
        by_f.setdefault(inv.f, {"ok": 0, "fail": 0, "info": 0})["info"] += 1
    totals = {t: sum(c[t] for c in by_f.values()) for t in ("ok", "fail", "info")}
    answered = avail["faulty"][0] + avail["healthy"][0]
    n = sum(totals.values())
    fault_s = sum(b - a for a, b, _ in windows) / 1e9
    stats = {
        "ops": n,
        **totals,
        "by_f": by_f,
        "availability": {
            "overall": round(answered / n, 4) if n else None,
            "during_faults": round(avail["faulty"][0] / avail["faulty"][1], 4)
            if avail["faulty"][1] else None,
            "without_faults": round(avail["healthy"][0] / avail["healthy"][1], 4)
            if avail["healthy"][1] else None,
            "fault_seconds": round(fault_s, 3),
        },
        "nemesis": sum(1 for op in ops if op.process == NEMESIS and op.type != "invoke"),
    }
    dur = end / 1e9
    perf = {
        "duration_s": round(dur, 3),
        "ops_per_s": round(n / dur, 1) if dur > 0 else None,
        "latency_ms": {f: quantiles(v) for f, v in lat.items()},
        "latency_all_ms": quantiles([x for v in lat.values() for x in v]),
    }
    return stats, perf


# --------------------------------------------------------------------------- checking


def check_history(ops: list[Op], workload: wl.Workload, timeout: float) -> dict[str, Any]:
    """The workload checker's JSON result (docs/results.md); ``valid: "unknown"`` if it
    cannot run."""
    try:
        return workload.check([op for op in ops if op.process != NEMESIS], timeout).to_dict()
    except Exception as e:  # Jepsen: a checker that throws gives an unknown verdict
        log.error("checker failed: %s: %s", type(e).__name__, e)
        return {"valid": UNKNOWN, "model": workload.model, "reason": f"checker error: {e}",
                "partitions": []}


def per_key(checked: dict[str, Any]) -> dict[str, Any]:
    return {str(p.get("key")): p.get("valid") for p in checked.get("partitions") or []}


def judge(ops: list[Op], workload: wl.Workload, nodes_dir: Path, cut_short: bool,
          timeout: float, live: dict[str, Any] | None = None) -> dict[str, Any]:
    """The verdict and its evidence, from the history, the node logs and the liveness check
    after the final heal (``live``, already judged: only the run could ask the nodes): what a
    run writes into results.json, and what ``raftlab analyze`` recomputes from a stored run."""
    checked = check_history(ops, workload, timeout)
    stats, perf = summarize(ops)
    valid: Verdict = checked.get("valid", UNKNOWN)
    events = nodeevents.check(nodes_dir)
    if events is not None:
        valid = worst([valid, events["valid"]])  # composed checkers: the worst verdict wins
    if live is not None:
        valid = worst([valid, live["valid"]])  # not converged: a detected defect
    if cut_short and valid is True:
        valid = UNKNOWN  # a run cut short proves nothing about the rest
    if not [op for op in ops if op.process != NEMESIS and op.type == "ok"]:
        valid = worst([valid, UNKNOWN])  # nothing succeeded: nothing was tested
    return {"valid": valid, "checker": checked, "per_key": per_key(checked),
            "node_events": events, "elections": nodeevents.elections(events),
            "liveness": live, "stats": stats, "perf": perf}


# --------------------------------------------------------------------------- the run


class Runner:
    """One test run over given nodes/remotes and DB. ``run()`` returns the Outcome."""

    def __init__(self, cfg: RunConfig, db: Any, nodes: list[Any], remotes: dict[str, Any],
                 config_extra: dict[str, Any] | None = None):
        self.cfg, self.db, self.nodes, self.remotes = cfg, db, nodes, remotes
        self.store = RunStore(cfg.store, cfg.name)
        self.timings: dict[str, float] = {}
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.rec: Recorder | None = None
        self.nemesis: nem.Nemesis | None = None
        #: the liveness check after the final heal (tester.liveness), when the adapter
        #: offers node_status and the run got that far
        self.liveness: dict[str, Any] | None = None
        #: nodes the final heal failed on: liveness problems there are the tester's
        self.heal_failed: set[str] = set()
        #: nemesis actions still running when the final heal began (healed again at the end)
        self.late_actions: list[str] = []
        self.config_extra = config_extra or {}
        self.nemesis_opts = {"schedule": "interval" if cfg.nemesis_interval is not None
                             else "hunt", **cfg.nemesis_opts}
        #: told the nemesis plan in one line before the test starts (the CLI prints it)
        self.announce: Callable[[str], None] | None = None
        self._handler = logging.FileHandler(self.store.log_file, encoding="utf-8")
        self._handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(threadName)s %(message)s"))

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        t = time.monotonic()
        log.info("step %s: begin", name)
        try:
            yield
        except BaseException as e:
            log.error("step %s: failed after %.3f s: %s: %s", name, time.monotonic() - t,
                      type(e).__name__, e)
            raise
        finally:
            self.timings[name] = round(time.monotonic() - t, 3)
        log.info("step %s: done in %.3f s", name, self.timings[name])

    def _parallel(self, fn: Callable[[Any], None]) -> list[str]:
        env = nem.Env(self.db, self.nodes, self.remotes, random.Random(0))
        return env.each(self.nodes, fn)

    def _setup_node(self, node: Any) -> None:
        opts = {"unsafe": list(self.cfg.unsafe), "deploy": self.cfg.deploy, **self.cfg.db_opts}
        last: Exception | None = None
        for attempt in range(1, self.cfg.setup_attempts + 1):
            try:
                with suppress(Exception):
                    self.db.teardown(self.remotes[node.name], node)
                self.db.setup(self.remotes[node.name], node, self.nodes, opts)
                return
            except Exception as e:
                last = e
                log.warning("%s: setup attempt %d/%d failed: %s", node.name, attempt,
                            self.cfg.setup_attempts, e)
        raise RuntimeError(f"{node.name}: setup failed {self.cfg.setup_attempts} times: {last}")

    def _config(self) -> dict[str, Any]:
        return {**asdict(self.cfg), **self.config_extra,
                "start_time": self.store.started,
                "start_time_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                time.gmtime(self.store.started)),
                "nodes": [{"name": n.name, "host": n.host} for n in self.nodes],
                "nemesis_colors": {n: nem.COLORS[n] for n in self.cfg.nemesis},
                "nemesis_schedule": self.nemesis_opts["schedule"],
                "nemesis_swarm": self.nemesis.plan or None if self.nemesis else None,
                "nemesis_unsupported": self.nemesis.unsupported or None if self.nemesis
                else None}

    def run(self) -> Outcome:
        logging.getLogger("raftlab").addHandler(self._handler)
        logging.getLogger("raftlab").setLevel(logging.INFO)
        try:
            self._build_nemesis()
        except BaseException:
            logging.getLogger("raftlab").removeHandler(self._handler)
            self._handler.close()
            raise
        self.store.write_test(self._config())
        self.rec = Recorder(self.store.history)
        interrupted = False
        try:
            self._run_phases()
        except KeyboardInterrupt:
            interrupted = True
            self.errors.append("interrupted (Ctrl-C)")
            log.error("interrupted: healing, stopping the database and saving the history")
        except Exception as e:
            self.errors.append(f"{type(e).__name__}: {e}")
            log.exception("internal error: healing, stopping the database, saving the history")
        finally:
            self.stop.set()
            try:
                self._cleanup()
            except KeyboardInterrupt:
                log.error("second interrupt: skipping the rest of the cleanup")
                self._finish_store(interrupted=True, partial=True)
                raise
        return self._finish_store(interrupted, partial=bool(self.errors))

    def _run_phases(self) -> None:
        cfg, rec = self.cfg, self.rec
        assert rec is not None
        with self.step("db-setup"):
            errors = self._parallel(self._setup_node)
            if errors:
                raise RuntimeError("database setup failed: " + "; ".join(errors))
            self.db.wait_ready(self.remotes, self.nodes, cfg.ready_timeout)
        self.workload = wl.make(cfg.workload, cfg.keys, cfg.ops_per_key)
        with self.step("clients-open"):
            self.workers = {
                i: ClientWorker(i, self.nodes[i % len(self.nodes)], self.db, cfg, rec,
                                self.workload.read_fs)
                for i in range(cfg.concurrency)
            }
            for w in self.workers.values():
                with suppress(Exception):  # a node that cannot be reached now may be later
                    w.open()
        client_gen: gen.Generator = self.workload.generator
        if cfg.rate > 0:
            client_gen = gen.Stagger(1.0 / cfg.rate, client_gen)
        main = gen.Any(
            gen.clients(gen.TimeLimit(cfg.time_limit, client_gen)),
            self.nemesis.generator(cfg.nemesis_interval, cfg.time_limit),
        )
        threads: dict[gen.Thread, Any] = dict(self.workers)
        for t in self.nemesis.threads:
            threads[t] = NemesisWorker(self.nemesis, rec)
        with self.step("workload"):
            deadline = rec.now() / 1e9 + cfg.time_limit + cfg.op_timeout + cfg.hang_timeout
            self._stuck(Interpreter(main, threads, rec, cfg.seed, deadline, self.stop).run())
        with self.step("final-heal"):
            self._heal()
        with self.step("settle"):
            if liveness.offered(self.db):
                self.liveness = liveness.wait_converged(self.db, self.nodes,
                                                        cfg.settle_timeout, self.stop)
            else:
                self.stop.wait(cfg.quiet)
        with self.step("final-reads"):
            if not self.stop.is_set():
                final = gen.TimeLimit(cfg.final_time, self.workload.final_reads())
                deadline = rec.now() / 1e9 + cfg.final_time + cfg.op_timeout
                live = {i: w for i, w in self.workers.items() if not w.abandoned}
                self._stuck(Interpreter(final, live, rec, cfg.seed + 1, deadline,
                                        self.stop).run())
                if self.liveness is not None and self.liveness["converged"]:
                    self.liveness["unread_keys"] = liveness.unread_keys(rec.ops)

    def _stuck(self, stuck: list[str]) -> None:
        """Threads the interpreter gave up on: the run goes on without them, ``unknown``."""
        for what in stuck:
            log.error("%s: abandoned; the run goes on without it", what)
            self.errors.append(what)

    def _build_nemesis(self) -> None:
        """The nemesis, its unsupported families left out and (hunt) its swarm drawn: before
        test.json is written, which records both. A probe that cannot reach a node leaves
        the family in; its actions then fail and are recorded."""
        cfg = self.cfg
        env = nem.Env(self.db, self.nodes, self.remotes, random.Random(f"{cfg.seed}/nemesis"))
        self.nemesis = nem.Nemesis.build(env, cfg.nemesis, self.nemesis_opts, cfg.seed)
        with self.step("nemesis-probe"):
            self.nemesis.prepare()
        if self.announce is not None:
            self.announce(f"{self.nemesis.schedule}: " + (
                nem.describe(self.nemesis.plan) if self.nemesis.schedule == "hunt"
                else " ".join(self.nemesis.faults) or "none")
                + "".join(f"; {n} unsupported" for n in self.nemesis.unsupported))

    def _heal(self) -> None:
        if self.nemesis is None:  # failed before the nemesis existed: heal with defaults
            env = nem.Env(self.db, self.nodes, self.remotes, random.Random(0))
            self.nemesis = nem.Nemesis.build(env, [])
        res = self._heal_all()
        if res["errors"]:
            self.errors.append(f"heal errors: {res['errors']}")
            log.error("final heal had errors: %s", res["errors"])
            names = {n.name for n in self.nodes}
            self.heal_failed |= {e.split(":", 1)[0] for errs in res["errors"].values()
                                 for e in errs} & names
        if res.get("in_flight"):
            self.late_actions = list(res["in_flight"])
            self.errors.append("nemesis actions still running at the final heal: "
                               + ", ".join(self.late_actions))

    def _heal_all(self) -> dict[str, Any]:
        """One recorded heal of every fault family, bounded by the hang timeout."""
        assert self.nemesis is not None and self.rec is not None
        self.rec.record("invoke", NEMESIS, "heal-all")
        res = self.nemesis.heal_all(wait=self.cfg.hang_timeout)
        self.rec.record("info", NEMESIS, "heal-all", value=res, error=None)
        return res

    def _heal_late_actions(self) -> None:
        """Heal once more after actions that outlived the final heal have ended (a fault
        they made after it would otherwise stay); say so if they never end."""
        res = self._heal_all()
        if res.get("in_flight"):
            self.errors.append("nemesis actions never ended (faults they make later stay): "
                               + ", ".join(res["in_flight"]))

    def _cleanup(self) -> None:
        healed = "final-heal" in self.timings
        if not healed:
            with self.step("final-heal"):
                self._heal()
        for w in getattr(self, "workers", {}).values():
            if not w.abandoned:  # an abandoned client is still in use by its thread
                w.close()
        if self.late_actions:
            with self.step("late-heal"):
                self._heal_late_actions()
        with self.step("node-logs"):
            self._parallel(self._download_logs)
        if not self.cfg.leave_db_running:
            with self.step("db-teardown"):
                errors = self._parallel(lambda nd: self.db.teardown(self.remotes[nd.name], nd))
                if errors:
                    log.error("teardown errors: %s", errors)

    def _download_logs(self, node: Any) -> None:
        remote = self.remotes[node.name]
        for path in self.db.log_files(remote, node) or []:
            dest = self.store.node_dir(node.name) / Path(path).name
            try:
                remote.get(path, str(dest))
            except Exception as e:
                log.warning("%s: could not download %s: %s", node.name, path, e)

    def _finish_store(self, interrupted: bool, partial: bool) -> Outcome:
        rec = self.rec
        assert rec is not None
        rec.close()
        ops = list(rec.ops)
        # stopped before the workload existed: judge what there is as registers
        workload = getattr(self, "workload", None) or wl.registers()
        with self.step("check"):
            live = self.liveness
            if live is not None:
                live["valid"] = liveness.verdict(live, self.heal_failed)
                if self.late_actions and live["valid"] is False:
                    live["valid"] = UNKNOWN  # a fault may have come back after the heal
            judged = judge(ops, workload, self.store.path / "nodes", bool(self.errors),
                           self.cfg.check_timeout, live)
        valid: Verdict = judged["valid"]
        results = {
            **judged,
            "nemesis": self.nemesis.summary() if self.nemesis is not None else None,
            "timings": self.timings,
            "errors": self.errors,
            "interrupted": interrupted,
            "partial": partial,
        }
        self.store.write_results(results)
        self.store.write_history_edn(ops)
        report = self.store.write_report()
        log.info("verdict %s; run folder %s", valid, self.store.path)
        logging.getLogger("raftlab").removeHandler(self._handler)
        self._handler.close()
        return Outcome(valid, self.store.path, results, report)

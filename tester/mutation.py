"""Mutation testing of raftnode: does raftlab catch Raft bugs that nobody wrote a schedule for?

A *mutant* is raftnode with one small, ordinary implementation bug -- a flipped or dropped
guard, an off-by-one in quorum or index arithmetic, a missing term check, an acknowledgement
sent too early -- written as one exact text replacement in one source file. The unsafe
switches (docs/raftnode.md) are bugs planted on purpose and their schedules were designed
beside them; mutants are the honest measure of detection power: the share of them a tester
run kills is its *mutation score*.

:func:`mutated_tree` copies the project to a temporary folder and applies one mutant there;
everything then runs from that copy (``PYTHONPATH``), so the simulator, the zipapp deployed to
a fleet and the tester all see the same mutated raftnode. ``bench/mutants.py`` runs the whole
catalogue; ``tests/sim/test_mutants.py`` keeps a handful of kills in CI.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: what a mutated copy needs: the three packages and the project file
COPIED = ("raftnode", "tester", "checker", "pyproject.toml")


@dataclass(frozen=True)
class Mutant:
    """One bug: replace ``old`` (which must occur exactly once) by ``new`` in ``path``."""

    name: str
    path: str
    old: str
    new: str
    area: str  # which part of Raft it breaks (vote, log, commit, quorum, read, snapshot, ...)
    why: str  # the bug in words, as a reviewer would describe it
    #: why no history can expose it, when that was worked out: left out of the score
    equivalent: str = ""

    def apply(self, root: Path) -> None:
        """Edit the copy under ``root``; refuses a replacement that is missing or ambiguous,
        so a mutant never silently stops mutating when the source moves on."""
        f = root / self.path
        text = f.read_text()
        count = text.count(self.old)
        if count != 1:
            raise ValueError(f"mutant {self.name}: {self.path} contains the text to replace "
                             f"{count} times (expected exactly once)")
        f.write_text(text.replace(self.old, self.new))


_CORE, _SM = "raftnode/core.py", "raftnode/statemachine.py"
_HOST, _STORAGE = "raftnode/host.py", "raftnode/storage.py"

MUTANTS: tuple[Mutant, ...] = (
    # ---- elections
    Mutant("vote-ignores-log-length", _CORE,
           "return log_term > lt or (log_term == lt and index >= self.last_index())",
           "return log_term >= lt", "vote",
           "the up-to-date check compares last terms only: a candidate with a shorter log of "
           "the same last term gets the vote"),
    Mutant("vote-twice-in-term", _CORE,
           "can = self.vote == m.src or (self.vote is None and self.leader is None)",
           "can = self.vote == m.src or self.leader is None", "vote",
           "a node that already voted in this term votes again for another candidate while "
           "it knows no leader"),
    Mutant("vote-not-recorded", _CORE,
           "                self.vote = m.src\n", "                pass\n", "vote",
           "a granted vote is not remembered, so the node can grant it again"),
    Mutant("tally-one-short", _CORE,
           "        if granted >= self._quorum():\n            return \"won\"",
           "        if granted >= self._quorum() - 1:\n            return \"won\"", "quorum",
           "a candidate wins with one vote fewer than a majority"),
    # ---- quorum arithmetic
    Mutant("quorum-half", _CORE,
           "return len(self.membership.voters) // 2 + 1",
           "return len(self.membership.voters) // 2", "quorum",
           "a quorum is half of the voters, not a majority"),
    Mutant("quorum-even-cluster", _CORE,
           "return len(self.membership.voters) // 2 + 1",
           "return (len(self.membership.voters) + 1) // 2", "quorum",
           "a quorum rounded for odd clusters only: 2 of 4 voters (after a member is added)"),
    Mutant("commit-index-one-short", _CORE,
           "n = matches[self._quorum() - 1]", "n = matches[max(self._quorum() - 2, 0)]",
           "commit", "the leader commits the highest index held by one node fewer than a quorum"),
    # ---- log matching and the follower side
    Mutant("append-skips-term-check", _CORE,
           "if self.term_at(m.index) != m.log_term:", "if self.term_at(m.index) is None:",
           "log", "AppendEntries accepts entries whose predecessor exists with another term"),
    Mutant("append-keeps-conflicts", _CORE,
           "            if have == e.term:\n                continue",
           "            if have is not None:\n                continue", "log",
           "a follower keeps its own entry where the leader sends a different one"),
    Mutant("append-acks-whole-log", _CORE,
           "self.term, 0, last_new))", "self.term, 0, self.last_index()))", "log",
           "a follower acknowledges its whole log, including an unverified stale tail, as "
           "matching the leader"),
    Mutant("reject-does-not-back-off", _CORE,
           "pr.next = max(pr.match + 1, min(m.index, m.reject_hint or m.index))",
           "pr.next = max(pr.match + 1, m.index + 1)", "log",
           "after a rejected append the leader retries from the same place instead of backing "
           "off: a follower with a divergent tail never catches up"),
    Mutant("follower-commit-unbounded", _CORE,
           "self._commit_to(min(m.commit, last_new))", "self._commit_to(m.commit)",
           "follower-commit",
           "a follower advances its commit index to the leader's even past the entries it "
           "has verified"),
    Mutant("stale-term-accepted", _CORE,
           "        elif m.term < self.term:\n",
           "        elif m.term < self.term - 1:\n", "term",
           "messages from the previous term are handled instead of refused"),
    # ---- reads
    Mutant("read-index-self-confirmed", _CORE,
           "confirmed = acks[self._quorum() - 1]", "confirmed = acks[0]", "read",
           "ReadIndex releases reads on the leader's own heartbeat round, without a quorum"),
    Mutant("read-index-one-behind", _CORE,
           "self.reads_pending.append((self.round + 1, self.commit, ctxs))",
           "self.reads_pending.append((self.round + 1, self.commit - 1, ctxs))", "read",
           "a read waits for the entry before the commit index instead of the commit index",
           equivalent="the entry at the commit index is answered to its client only once "
                      "applied, so a read that misses it overlaps that write; and a read "
                      "invoked after the write's answer is queued when it is already applied"),
    Mutant("read-before-term-commit", _CORE,
           "        if self.commit < self.term_start:\n            self.reads_waiting_commit",
           "        if self.commit < self.term_start - 1:\n            self.reads_waiting_commit",
           "read", "a new leader serves reads once the entry before its no-op is committed",
           equivalent="when every entry before the no-op is committed, the commit index "
                      "already covers every acknowledged write: the read is fresh"),
    Mutant("read-skips-noop-wait", _CORE,
           "        if self.commit < self.term_start:\n            self.reads_waiting_commit",
           "        if False:\n            self.reads_waiting_commit", "read",
           "a new leader serves ReadIndex reads before its no-op commits, at the commit index "
           "it knew as a follower"),
    # ---- membership
    Mutant("membership-changes-overlap", _CORE,
           "        if self.config_index > self.commit:\n            raise ProposalRejected",
           "        if self.config_index > self.commit + 1:\n            raise ProposalRejected",
           "membership", "a second configuration change may start before the first commits"),
    Mutant("removed-leader-keeps-leading", _CORE,
           "        if self.config_index <= self.commit and not self.is_voter():",
           "        if self.config_index < self.commit and not self.is_voter():", "membership",
           "a leader that removed itself steps down only after a later entry commits"),
    Mutant("term-start-off-by-one", _CORE,
           "self.term_start = self.last_index() + 1", "self.term_start = self.last_index()",
           "read", "a new leader counts its term as started one entry early"),
    # ---- snapshots and sessions
    Mutant("compact-drops-entry", _CORE,
           "self.log = self.log[index - self.snap_index :]",
           "self.log = self.log[index - self.snap_index + 1 :]", "snapshot",
           "log compaction removes one entry past the snapshot"),
    Mutant("snapshot-without-sessions", _SM,
           '"sessions": {c: list(_copy(s)) for c, s in self.sessions.items()},',
           '"sessions": {},', "session",
           "snapshots leave out the client sessions: a retry after a restore applies again"),
    Mutant("snapshot-aliases-state", _SM,
           '"data": _copy(self.data),', '"data": self.data,', "snapshot",
           "a snapshot image shares the live dict, so it changes after it is taken"),
    Mutant("stale-seq-reapplied", _SM,
           "                if seq < s[0]:\n                    return _fail(\"stale-request\")\n",
           "", "session",
           "a delayed copy of an older request of a session is applied again"),
    # ---- the server's Ready loop (raftnode/host.py): when a client is answered
    Mutant("ack-without-term-check", _HOST,
           "            if term == e.term:\n                if self.outlet.resolve(",
           "            if True:\n                if self.outlet.resolve(", "ack",
           "a proposal is answered with whatever entry committed at its index, even one of "
           "another term that replaced it"),
    Mutant("ack-on-append", _HOST,
           "        index, term = self.core.propose(command)\n"
           "        self.proposals[index] = (term, token)\n",
           "        index, term = self.core.propose(command)\n"
           "        self.outlet.resolve(token, {\"status\": \"ok\", \"value\": "
           "command.get(\"value\")}, self.core.log[-1])\n", "ack",
           "a write is acknowledged as soon as the leader appends it, before it is durable "
           "or committed"),
    Mutant("read-released-early", _HOST,
           "            if index <= self.applied:\n", "            if index <= self.applied + 1:\n",
           "read", "a read is answered one entry before its read index is applied"),
    Mutant("installed-snapshot-not-restored", _HOST,
           "    def _install_snapshot(self, snap: Snapshot) -> None:\n        self.sm.restore(snap.data)",
           "    def _install_snapshot(self, snap: Snapshot) -> None:\n        pass", "snapshot",
           "a follower that installs a leader's snapshot keeps its old state machine"),
    # ---- the durable log
    Mutant("vote-change-not-persisted", _STORAGE,
           "if hard_state is not None and hard_state != self._hard:",
           "if hard_state is not None and hard_state.commit != self._hard.commit:", "storage",
           "a hard state is written only when its commit index changes: a new term or vote "
           "alone is lost by a restart"),
    Mutant("replay-ignores-truncation", _STORAGE,
           "            if pos < len(self._entries):\n                del self._entries[pos:]\n",
           "            if pos < len(self._entries):\n                continue\n", "storage",
           "recovery keeps the first entry written at an index, not the one that replaced it"),
    Mutant("entries-not-fsynced", _STORAGE,
           "        need_sync = bool(entries)\n", "        need_sync = False\n", "storage",
           "appended entries are written but not fsynced before the Ready is acknowledged "
           "(only a new term or vote is): a crash loses acknowledged writes"),
    Mutant("sync-before-write", _STORAGE,
           "        fh.write(data)\n        if need_sync:\n            fh.sync()\n",
           "        if need_sync:\n            fh.sync()\n        fh.write(data)\n", "storage",
           "the log is fsynced before the Ready's records are written, so they are not "
           "durable when acknowledged"),
    Mutant("torn-tail-kept", _STORAGE,
           "            if torn:\n                fs.truncate(path, good)\n",
           "            if False:\n                fs.truncate(path, good)\n", "storage",
           "recovery skips a torn last record but leaves it in the file: the next records "
           "are appended after the garbage, and the following restart finds a corrupt log"),
    Mutant("snapshot-renamed-unsynced", _STORAGE,
           "        f.sync()\n        f.close()\n        fs.replace(tmp, final)\n",
           "        f.close()\n        fs.replace(tmp, final)\n", "storage",
           "a snapshot file is renamed into place without an fsync: a crash can leave it "
           "empty or cut short, after the log it replaced was compacted away"),
    Mutant("compaction-drops-hard-state", _STORAGE,
           'parts = [encode_record({"h": self._hard.to_dict()})]', "parts = []", "storage",
           "rewriting the log after a snapshot leaves out term and vote"),
)

BY_NAME = {m.name: m for m in MUTANTS}
#: mutants in modules the simulator runs: raftnode/server.py's own code is only the asyncio
#: edge (sockets, the worker thread, forwarding); its Ready loop is raftnode/host.py
SIMULATED = ("raftnode/core.py", "raftnode/statemachine.py", "raftnode/types.py",
             "raftnode/host.py", "raftnode/storage.py")


@contextmanager
def mutated_tree(mutant: Mutant | None, src: Path = ROOT) -> Iterator[Path]:
    """A temporary copy of the project with ``mutant`` applied (``None``: unmutated)."""
    with tempfile.TemporaryDirectory(prefix="raftlab-mutant-") as tmp:
        root = Path(tmp)
        ignore = shutil.ignore_patterns("__pycache__", "*.so", "accel-build.json", "*.pyc")
        for name in COPIED:
            p = src / name
            if p.is_dir():
                shutil.copytree(p, root / name, ignore=ignore)
            else:
                shutil.copy2(p, root / name)
        if mutant is not None:
            mutant.apply(root)
        yield root


def tree_env(root: Path) -> dict[str, str]:
    """The environment that makes a child process import the copy under ``root``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root)
    env["RAFTLAB_PURE"] = "1"
    return env


@dataclass
class SimOutcome:
    """What ``raftlab sim`` made of one mutant."""

    mutant: str
    killed: bool
    seeds: int  # seeds run (up to and including the killing one)
    seed: int | None  # the killing seed
    prop: str  # the violated property, or "crash" when the simulator raised
    seconds: float
    detail: str = ""


_VIOLATION = re.compile(r"VIOLATION at seed (\d+) after (\d+) seed\(s\) in [\d.]+s: (\S+)")


def run_sim(mutant: Mutant | None, seeds: int, first: int = 0, jobs: int = 2, nodes: int = 3,
            extra: tuple[str, ...] = (), timeout: float = 3600.0) -> SimOutcome:
    """Run ``raftlab sim`` on the mutated copy until the first violation or ``seeds`` seeds."""
    name = mutant.name if mutant else "(none)"
    with mutated_tree(mutant) as root:
        cmd = [sys.executable, "-m", "tester.cli", "sim", "--seeds", str(seeds),
               "--seed", str(first), "--jobs", str(jobs), "--nodes", str(nodes),
               "--no-shrink", "--quiet", "--out", str(root / "out"), *extra]
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, cwd=root, env=tree_env(root), capture_output=True,
                               text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return SimOutcome(name, False, 0, None, "", time.monotonic() - t0,
                              f"no answer within {timeout:.0f} s")
        dt = time.monotonic() - t0
    if p.returncode == 0:
        return SimOutcome(name, False, seeds, None, "", dt)
    m = _VIOLATION.search(p.stdout)
    if p.returncode == 1 and m:
        return SimOutcome(name, True, int(m.group(2)), int(m.group(1)), m.group(3), dt,
                          p.stdout.splitlines()[1].strip() if "\n" in p.stdout else "")
    tail = (p.stderr.strip().splitlines() or ["(no output)"])[-1]
    return SimOutcome(name, True, 0, None, "crash", dt, f"exit {p.returncode}: {tail}")

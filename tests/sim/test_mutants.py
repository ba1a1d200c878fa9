"""Detection cannot silently regress: a handful of raftnode mutants (tester/mutation.py), each
an ordinary Raft bug no schedule was written for -- in the core, in the server's Ready loop and
in the durable log -- must still be killed by ``raftlab sim`` within a small seed budget, and
every catalogued mutant must still apply to the sources."""

from __future__ import annotations

import pytest

from tester.mutation import BY_NAME, MUTANTS, ROOT, mutated_tree, run_sim

#: one mutant per area the simulator covers, each killed well inside the budget when measured
#: (bench/mutants.py: seeds to the kill in brackets)
CI_MUTANTS = {
    "vote-twice-in-term": 300,  # (17)
    "quorum-even-cluster": 300,  # (7)
    "append-keeps-conflicts": 300,  # (5)
    "follower-commit-unbounded": 300,  # (3)
    "read-index-self-confirmed": 300,  # (31)
    "reject-does-not-back-off": 50,  # (3) a liveness failure: never converges after heal
    # the server's Ready loop (raftnode/host.py) and the durable log (raftnode/storage.py),
    # which the simulator runs on its crash-prone disk
    "ack-on-append": 100,  # (2) an acknowledged write lost
    "entries-not-fsynced": 100,  # (3) an acknowledged write lost
    "torn-tail-kept": 300,  # (29) storage: the node cannot restart on its own log
}


def test_every_catalogued_mutant_still_applies_to_the_sources():
    # apply() refuses text that is missing or ambiguous, so a refactoring that moves the
    # mutated line fails here instead of quietly turning the mutant into the original
    for m in MUTANTS:
        with mutated_tree(m) as root:
            assert (root / m.path).read_text() != (ROOT / m.path).read_text(), m.name


def test_a_mutant_whose_text_is_gone_is_refused(tmp_path):
    (tmp_path / "raftnode").mkdir()
    (tmp_path / "raftnode" / "core.py").write_text("nothing to see\n")
    with pytest.raises(ValueError, match="0 times"):
        BY_NAME["quorum-half"].apply(tmp_path)


@pytest.mark.parametrize("name", sorted(CI_MUTANTS))
def test_the_simulator_kills_the_mutant(name):
    out = run_sim(BY_NAME[name], CI_MUTANTS[name], jobs=2, timeout=600)
    assert out.killed and out.prop != "crash", f"{name} survived: {out}"

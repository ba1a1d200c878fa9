"""A campaign worker keeps the fleet it brought up for its next run of the same campaign, and
gives it up when the run fails, when its campaign is released, or for another campaign; a local
campaign's spare fleets, brought up while its cluster starts, are taken by its workers or
swept; no fleet outlives its campaign. The fleet itself is faked here (``tester.fleet.up``/``down``
record calls); tests/report/test_e2e_campaign_cluster.py runs real fleets."""

from __future__ import annotations

import fcntl
from pathlib import Path

import pytest

from tester import fleet
from tester.cluster import runs


@pytest.fixture
def fleets(tmp_path, monkeypatch):
    """The fleets up now (name -> nodes) and every up/down call, with slot locks in tmp."""
    up: dict[str, int] = {}
    calls: list[tuple[str, str]] = []

    def fake_up(name: str, nodes: int, subnet: str) -> None:
        assert name not in up, f"{name} brought up twice"
        up[name] = nodes
        calls.append(("up", name))

    def fake_down(name: str) -> list[str]:
        calls.append(("down", name))
        return [f"fleet {name}"] if up.pop(name, None) is not None else []

    monkeypatch.setattr(fleet, "up", fake_up)
    monkeypatch.setattr(fleet, "down", fake_down)
    monkeypatch.setattr(fleet, "leftovers", lambda name: [name] if name in up else [])
    monkeypatch.setattr(fleet, "inventory_path",
                        lambda name: tmp_path if name in up else tmp_path / "absent")
    monkeypatch.setattr(runs, "SLOT_LOCKS", tmp_path)
    monkeypatch.setattr(runs, "_KEPT", [])
    monkeypatch.setattr(runs, "_RELEASED", set())
    return up, calls


def test_a_worker_reuses_its_fleet_for_the_next_run_of_the_campaign_and_releases_it(fleets):
    up, calls = fleets
    with runs.own_fleet(3, "gate-1") as first:
        assert up == {first.name: 3}
    with runs.own_fleet(3, "gate-1") as second:
        assert second is first and second.runs == 2
    assert calls == [("down", first.name), ("up", first.name)]  # one bring-up for two runs
    assert up == {first.name: 3}  # kept between runs
    assert runs.release_fleets("gate-1") == [first.name]
    assert up == {} and runs._KEPT == []


def test_a_failed_run_gives_its_fleet_up_and_the_next_run_gets_a_fresh_one(fleets):
    up, calls = fleets
    with pytest.raises(RuntimeError), runs.own_fleet(3, "gate-1"):
        raise RuntimeError("ssh: connection reset")
    assert up == {} and runs._KEPT == []
    with runs.own_fleet(3, "gate-1") as lease:
        lease.keep = False  # the run recorded errors: a fault may be left on the nodes
    assert up == {} and [c for c, _ in calls].count("up") == 2


def test_a_run_still_going_when_its_campaign_is_released_takes_its_fleet_down_at_its_end(
        fleets):
    up, _ = fleets
    with runs.own_fleet(3, "gate-1") as lease:
        assert runs.release_fleets("gate-1") == []  # in use: not pulled from under the run
        assert up == {lease.name: 3}
    assert up == {}


def test_another_campaign_takes_down_an_idle_fleet_it_cannot_use(fleets):
    up, _ = fleets
    with runs.own_fleet(3, "gate-1") as old:
        pass
    with runs.own_fleet(3, "gate-2") as new:
        assert new is not old and old.lock.closed  # gate-1's fleet went down, slot freed
        assert up == {new.name: 3} and [new] == runs._KEPT
    with runs.own_fleet(5, "gate-2") as bigger:  # another size: a second slot
        assert bigger.name != new.name and sorted(up) == sorted([new.name, bigger.name])
    runs.release_fleets("gate-2")
    assert up == {}


def test_without_a_campaign_a_run_takes_its_fleet_down_afterwards(fleets):
    up, _ = fleets
    with runs.own_fleet(3) as lease:
        assert up == {lease.name: 3}
    assert up == {}


def test_a_kept_fleet_holds_its_slot_and_a_dead_workers_fleet_is_swept(fleets, tmp_path):
    up, _ = fleets
    with runs.own_fleet(3, "gate-1") as lease:
        pass
    assert runs.sweep_slots() == []  # kept by a live worker: its slot lock is held
    slot = tmp_path / "raftlab-fleet-slot-0.lock"
    with open(slot, "w") as fh, pytest.raises(BlockingIOError):
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    lease.lock.close()  # the worker died: the kernel drops its lock, the fleet stays up
    runs._KEPT.clear()
    assert runs.sweep_slots() == [f"fleet {lease.name}"] and up == {}
    assert Path(slot).exists()


def test_spare_fleets_are_taken_by_the_campaigns_workers_without_a_second_bring_up(fleets):
    up, calls = fleets
    names = runs.spare_fleets(2, 3, "gate-1")
    assert sorted(names) == sorted(up) and len(up) == 2
    with runs.own_fleet(3, "gate-1") as a, runs.own_fleet(3, "gate-1") as b:
        assert sorted([a.name, b.name]) == sorted(names)
    assert [c for c, _ in calls].count("up") == 2  # the spares' own, no more
    runs.release_fleets("gate-1")
    assert up == {}


def test_a_spare_of_another_campaign_or_size_is_replaced_and_an_untaken_one_swept(
        fleets, tmp_path):
    up, calls = fleets
    first, second = sorted(runs.spare_fleets(2, 3, "gate-1"))
    with runs.own_fleet(3, "gate-2") as lease:  # not made for it: down and up again
        assert lease.name == first and calls[-2:] == [("down", first), ("up", first)]
    runs.release_fleets("gate-2")
    assert list(up) == [second]
    assert runs.sweep_slots() == [f"fleet {second}"] and up == {}
    assert not list(tmp_path.glob("*.spare"))

"""Fleet fixtures: real local fleets on 10.213.10.0/24 (names fl*), always torn down."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from tester import control, fleet, inventory

SUBNET = "10.213.10.0/24"


def skip_unless_root_tools(*extra: str) -> None:
    """Skip unless root with the fleet's tools; sshd lives in /usr/sbin, often not on PATH."""
    from tests.conftest import require_root_tools

    require_root_tools()
    missing = fleet.missing_tools(extra)
    if missing:
        pytest.skip(f"end-to-end test needs {', '.join(missing)} (run scripts/bootstrap.sh)")


@contextlib.contextmanager
def local_fleet(name: str, nodes: int) -> Iterator[tuple[fleet.Fleet, inventory.Inventory,
                                                          dict[str, control.Remote]]]:
    """A fleet on this suite's subnet, removed afterwards whatever happens."""
    with fleet.session(name, nodes=nodes, subnet=SUBNET) as made:
        yield made


@pytest.fixture
def e2e() -> None:
    skip_unless_root_tools()

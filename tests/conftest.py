"""Shared test fixtures: where ../shared is, and skips with a clear reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("RAFTLAB_SHARED", ROOT.parent / "shared"))
PEER_HISTORIES = SHARED / "peer-histories" / "porcupine"


@pytest.fixture
def peer_histories() -> Path:
    """Porcupine's public histories, read in place from ../shared (never copied here)."""
    if not PEER_HISTORIES.is_dir():
        pytest.skip(f"third-party histories not found at {PEER_HISTORIES} (../shared is absent)")
    return PEER_HISTORIES


def require_root_tools(*tools: str) -> None:
    """Skip an end-to-end test unless we are root and the named tools are installed."""
    if os.geteuid() != 0:
        pytest.skip("end-to-end test needs root (network namespaces, iptables)")
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.skip(f"end-to-end test needs {', '.join(missing)} (run scripts/bootstrap.sh)")

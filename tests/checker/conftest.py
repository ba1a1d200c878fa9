"""Make ``import checker`` find the project's package, not this test directory.

``tests/`` is on ``sys.path`` (for ``tests/conftest.py``), so without this ``tests/checker``
would shadow the real ``checker`` package as a namespace package.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
mod = sys.modules.get("checker")
if mod is not None and getattr(mod, "__file__", None) is None:
    del sys.modules["checker"]  # a namespace package picked up from tests/

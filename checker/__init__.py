"""raftlab's linearizability checker: histories, models, and a Porcupine-style search.

The public API: :func:`check` a history against a :class:`Model` (built-ins via
:func:`load_model`), read files with :func:`checker.formats.load`, or check a plain list
of operations with :func:`check_operations`, as Porcupine's API takes them.
"""

from checker.linearizability import CheckResult, PartitionResult, check, check_operations
from checker.model import Model
from checker.models import MODELS, load_model
from checker.operation import Operation
from raftnode.accel import guard as _guard

_guard()  # checker/edn_lines.py compiled only while the build matches its source

__all__ = ["MODELS", "CheckResult", "Model", "Operation", "PartitionResult", "check",
           "check_operations", "load_model"]

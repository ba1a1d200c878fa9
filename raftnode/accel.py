"""Optional compiled builds (mypyc) of the modules the simulator and the checker spend their
time in.

``raftlab sim`` runs raftnode's real Raft core tens of thousands of times a second; compiling
the same source files with mypyc (C extensions built next to the ``.py`` files) makes a seed
about twice as fast. ``raftlab check`` reads Jepsen's line-per-op EDN a character at a time
in ``checker/edn_lines.py``, which compiled is eight times faster (and faster than the
text rewrite it uses otherwise). Nothing else changes: the server, the zipapp (``.py`` files only) and
every test run the same code compiled or not, and the simulator's traces are byte-identical
either way.

The guard: a build records the SHA-256, modification time and size of every source it
compiled. When a package that has compiled modules is imported, :func:`guard` compares them
with the sources on disk (a source with the build's time and size is taken as unchanged, as
Python's own ``.pyc`` check does; any other is hashed); if any differs (a source was edited after the build), or ``RAFTLAB_PURE=1`` is set, the whole
group is imported from its ``.py`` files instead -- a stale build is never run. The modules
are compiled as one group because compiled modules reach into each other's classes directly,
so it is all of them or none.

Build: ``raftlab compile`` (needs mypy and a C compiler; ``scripts/bootstrap.sh`` runs it);
``raftlab compile --status`` says what is in use, ``--clean`` removes the build.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any

#: the compiled group, as paths relative to the project root
MODULES = (
    "raftnode/types.py",
    "raftnode/core.py",
    "raftnode/statemachine.py",
    "raftnode/fs.py",
    "raftnode/storage.py",
    "raftnode/host.py",
    "tester/sim/invariants.py",
    "tester/lazyfs/durable.py",
    "tester/sim/disk.py",
    "tester/sim/cluster.py",
    "tester/sim/simulator.py",
    "checker/edn_lines.py",
)
GROUP = "raftnode.accel_group"
LIBRARY = "raftnode/accel_group__mypyc"  # where mypyc puts the group's shared library
#: {"sources": {path: sha256}, "stat": {path: [mtime_ns, size]}}
STAMP = "raftnode/accel-build.json"
ROOT = Path(__file__).resolve().parent.parent

_state: dict[str, Any] = {}


def _name(rel: str) -> str:
    return rel.removesuffix(".py").replace("/", ".")


def _extensions(base: str) -> list[Path]:
    """Where an extension module for ``base`` (a path without suffix) may lie."""
    return [ROOT / (base + s) for s in importlib.machinery.EXTENSION_SUFFIXES]


def _compiled(rel: str) -> bool:
    return any(p.is_file() for p in _extensions(rel.removesuffix(".py")))


def _digest(rel: str) -> str | None:
    import hashlib  # only when there is a build to check: `import raftnode` stays cheap

    try:
        return hashlib.sha256((ROOT / rel).read_bytes()).hexdigest()
    except OSError:
        return None


def _stat(rel: str) -> list[int] | None:
    try:
        st = os.stat(ROOT / rel)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size]


def status() -> tuple[bool, str]:
    """(whether the compiled modules are used, why)."""
    if "result" in _state:
        return _state["result"]
    if not any(_compiled(m) for m in MODULES):
        result = (False, "not built")
    elif os.environ.get("RAFTLAB_PURE") == "1":
        result = (False, "RAFTLAB_PURE=1")
    else:
        import json

        try:
            stamp = json.loads((ROOT / STAMP).read_text())
            built, seen = stamp["sources"], stamp.get("stat") or {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            built, seen = {}, {}
        # a source whose modification time and size are those of the build is the built
        # one (as Python's own .pyc check assumes); only the others are hashed
        stale = [m for m in MODULES if not _compiled(m)
                 or (seen.get(m) != _stat(m) and built.get(m) != _digest(m))]
        if not any(p.is_file() for p in _extensions(LIBRARY)):
            stale.append("the shared library")
        result = ((False, "stale build (changed since: " + ", ".join(stale) + ")") if stale
                  else (True, "compiled"))
    _state["result"] = result
    return result


class _SourceFirst:
    """A meta-path finder that imports the group's modules from their ``.py`` files."""

    names = {_name(m): m for m in MODULES}

    @classmethod
    def find_spec(cls, fullname: str, path: Any = None, target: Any = None) -> Any:
        rel = cls.names.get(fullname)
        if rel is None:
            return None
        return importlib.util.spec_from_file_location(fullname, ROOT / rel)


def guard() -> None:
    """Called by each package holding compiled modules, before any of them is imported."""
    if _state.get("guarded"):
        return
    _state["guarded"] = True
    used, why = status()
    if not used and why != "not built":  # quietly: `raftlab sim` and --status say why
        sys.meta_path.insert(0, _SourceFirst)


def build() -> int:
    """Compile the group in place with mypyc; returns a process exit code."""
    import json
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="raftlab-accel-") as tmp:
        script = (
            "import sys\n"
            "from setuptools import setup\n"
            "from mypyc.build import mypycify\n"
            # (modules the group imports are type-checked quietly: only the group's own
            # errors stop a build)
            f"setup(name={GROUP!r}, ext_modules=mypycify(['--follow-imports=silent', "
            f"*{list(MODULES)!r}], "
            f"group_name={GROUP!r}, target_dir={tmp!r}),\n"
            f"      script_args=['-q', 'build_ext', '--inplace', '--build-temp', {tmp!r}, "
            f"'--build-lib', {tmp!r}])\n"
        )
        digests = {m: _digest(m) for m in MODULES}
        stats = {m: _stat(m) for m in MODULES}
        # Unlink the old build first rather than let the compiler overwrite it: this process
        # may have it loaded (raftlab imports every subcommand), and truncating a mapped
        # library under a running process can crash it.
        clean()
        r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, text=True,
                           capture_output=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout[-4000:] + r.stderr[-4000:])
            print("raftlab: compiling the simulator's and checker's modules failed; they "
                  "run interpreted",
                  file=sys.stderr)
            return 1
    (ROOT / STAMP).write_text(json.dumps({"sources": digests, "stat": stats}, indent=1) + "\n")
    _state.clear()
    print(f"compiled {len(MODULES)} modules with mypyc ({', '.join(MODULES)})")
    return 0


def clean() -> int:
    """Remove the compiled modules and the stamp."""
    for base in [m.removesuffix(".py") for m in MODULES] + [LIBRARY]:
        for path in _extensions(base):
            path.unlink(missing_ok=True)
    (ROOT / STAMP).unlink(missing_ok=True)
    return 0


def add_parser(subparsers: Any) -> None:
    """``raftlab compile [--status | --clean]``."""
    p = subparsers.add_parser(
        "compile",
        help="compile the simulator's and checker's hot modules with mypyc (faster)",
        description="Compile raftnode's core, the simulator and the checker's EDN line reader "
        "in place with mypyc: the same source files, as C extensions, used only while they "
        "match the sources. Exit 0 when "
        "built, 1 when compiling failed (everything still runs interpreted).",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--status", action="store_true", help="say whether compiled modules are used")
    g.add_argument("--clean", action="store_true", help="remove the compiled modules")
    p.set_defaults(func=_run)


def _run(args: Any) -> int:
    if args.clean:
        return clean()
    if args.status:
        used, why = status()
        print(f"compiled modules: {'in use' if used else 'not in use'} ({why})")
        return 0
    return build()

"""lazyfs on fleet nodes, driven over SSH: ship it, mount it over a database's data directory,
tell it to crash, and take it away again.

The node runs the zipapp ``/opt/raftlab/lazyfs/lazyfs.pyz`` (this package, the durability
model and the mfusepy bindings; python3 and libfuse 3 are all it needs there) as a pid-file
daemon, mounted over the data directory ``D``; its state (backing tree, stash, control socket,
pid and log) lives beside it in ``D.lazyfs``. Mounting moves what ``D`` holds into the backing
tree, durable: lazyfs can be put under a database that is already set up (and stopped).
"""

from __future__ import annotations

import json
import shlex
import tempfile
import threading
import zipfile
from pathlib import Path
from typing import Any

from tester.control import Remote
from tester.db import DBError
from tester.dbs.daemon import Daemon

HOME = "/opt/raftlab/lazyfs"
APP = f"{HOME}/lazyfs.pyz"
MAIN = "import sys\nfrom tester.lazyfs.node import main\nsys.exit(main())\n"
SOURCES = ("__init__.py", "durable.py", "fs.py", "node.py")
MOUNT_TIMEOUT = 10.0

_lock = threading.Lock()
_built: dict[str, Path] = {}


def zipapp() -> Path:
    """Build the node program once per process; ValueError when mfusepy is not installed."""
    with _lock:
        if "app" not in _built:
            try:
                import mfusepy
            except ImportError:
                raise ValueError("lazyfs needs mfusepy on the control machine "
                                 "(pip install mfusepy; scripts/bootstrap.sh does)") from None
            here = Path(__file__).parent
            out = Path(tempfile.mkdtemp(prefix="raftlab-lazyfs-")) / "lazyfs.pyz"
            with open(out, "wb") as f:
                f.write(b"#!/usr/bin/env python3\n")
                with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as z:
                    z.writestr("__main__.py", MAIN)
                    z.writestr("tester/__init__.py", "")
                    for name in SOURCES:
                        z.write(here / name, f"tester/lazyfs/{name}")
                    z.write(mfusepy.__file__, "mfusepy.py")
            _built["app"] = out
        return _built["app"]


def state_dir(data_dir: str) -> str:
    return data_dir.rstrip("/") + ".lazyfs"


def daemon(data_dir: str) -> Daemon:
    state = state_dir(data_dir)
    return Daemon("lazyfs", f"{state}/daemon.pid", f"{state}/daemon.log")


def install(remote: Remote) -> str | None:
    """Put the program on the node; return why this node cannot mount lazyfs, or None."""
    remote.run(f"mkdir -p {HOME}", timeout=15)
    remote.put(zipapp(), APP, mode=0o755)
    r = remote.run(f"command -v python3 >/dev/null || {{ echo 'python3 is not installed' >&2; "
                   f"exit 3; }}; python3 {APP} check", timeout=20, check=False)
    if r.exit_code == 0:
        return None
    return (r.stderr or r.stdout).strip().splitlines()[-1] if (r.stderr or r.stdout).strip() \
        else f"lazyfs check exited {r.exit_code}"


def _mounted(data_dir: str) -> str:
    """Shell test: is lazyfs mounted at ``data_dir``."""
    return f"grep -qs '^lazyfs {data_dir.rstrip('/')} ' /proc/mounts"


def mount(remote: Remote, data_dir: str) -> None:
    """Mount lazyfs over ``data_dir`` (the database stopped); no-op when it already is."""
    if remote.run(_mounted(data_dir), timeout=10, check=False).exit_code == 0:
        return
    state = state_dir(data_dir)
    q = shlex.quote
    remote.run(f"mkdir -p {q(data_dir)} {q(state)}", timeout=15)
    d = daemon(data_dir)
    d.start(remote, ["python3", APP, "mount", state, data_dir])
    r = remote.run(f"i=0; until {_mounted(data_dir)}; do "
                   f"[ $i -ge {int(MOUNT_TIMEOUT * 20)} ] && exit 1; "
                   f"kill -0 $(cat {q(d.pid_file)}) 2>/dev/null || exit 2; "
                   "sleep 0.05; i=$((i+1)); done", timeout=MOUNT_TIMEOUT + 10, check=False)
    if r.exit_code != 0:
        tail = remote.run(f"tail -n 3 {q(d.log_file)} | cut -c1-300", timeout=10,
                          check=False).stdout.strip()
        raise DBError(f"{remote.name}: lazyfs did not mount over {data_dir}: "
                      f"{tail or 'no output'}")


def unmount(remote: Remote, data_dir: str) -> None:
    """Unmount (lazily, if something still holds a file), stop the daemon, drop its state.
    The data is dropped with it: call this only when the database's data is to be wiped."""
    q = shlex.quote
    remote.run(f"if {_mounted(data_dir)}; then fusermount3 -uz {q(data_dir)}; fi; true",
               timeout=15)
    daemon(data_dir).stop(remote)
    remote.run(f"rm -rf {q(state_dir(data_dir))}", timeout=30)


def crash(remote: Remote, data_dir: str, seed: str, mode: str = "random") -> dict[str, Any]:
    """Lose what is not durable under ``data_dir`` (the database must be stopped); returns
    what was lost (files, bytes, directory entries)."""
    r = remote.run(f"python3 {APP} crash {shlex.quote(state_dir(data_dir))} "
                   f"--mode {shlex.quote(mode)} --seed {shlex.quote(seed)}", timeout=60,
                   check=False)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        out = {"ok": False, "error": (r.stderr or r.stdout).strip() or f"exit {r.exit_code}"}
    if not out.get("ok"):
        raise DBError(f"{remote.name}: lazyfs crash under {data_dir} failed: {out.get('error')}")
    return {k: v for k, v in out.items() if k != "ok"}

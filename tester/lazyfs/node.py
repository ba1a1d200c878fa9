"""The lazyfs program a node runs: ``mount`` serves the filesystem (in the foreground, with its
control socket), ``crash`` tells a mounted one to lose what is not durable.

    python3 lazyfs.pyz mount STATE MOUNTPOINT
    python3 lazyfs.pyz crash STATE [--mode random|lose|torn|keep] [--seed S]
    python3 lazyfs.pyz check

``check`` exits 0 when this node can mount (``/dev/fuse`` and libfuse 3 present), else prints
why on one line and exits 3. ``crash`` prints what was lost as one JSON object.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import socket
import sys
import threading
from typing import Any

from tester.lazyfs.durable import MODES

SOCKET = "ctl.sock"


def why_not() -> str | None:
    """Why FUSE cannot be mounted here, or None."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this node (FUSE is not available: load the fuse module, or " \
               "run the container with --device /dev/fuse)"
    from ctypes.util import find_library

    if not find_library("fuse3"):
        return "libfuse 3 is not installed on this node (apt-get install fuse3)"
    if not any(os.access(os.path.join(d, "fusermount3"), os.X_OK)
               for d in os.environ.get("PATH", "/usr/bin:/bin").split(":") + ["/usr/bin"]):
        return "fusermount3 is not installed on this node (apt-get install fuse3)"
    return None


def serve_control(fs: Any, path: str) -> socket.socket:
    """Answer ``{"op": "crash", ...}`` and ``{"op": "ping"}`` lines on a unix socket."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)

    def one(conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as f:
            try:
                req = json.loads(f.readline() or b"{}")
                if req.get("op") == "crash":
                    out: dict[str, Any] = {"ok": True, **fs.crash(req.get("seed", 0),
                                                                  req.get("mode", "random"))}
                elif req.get("op") == "ping":
                    out = {"ok": True, "crashes": fs.crashes}
                else:
                    out = {"ok": False, "error": f"unknown op {req.get('op')!r}"}
            except Exception as e:  # the reply says what went wrong; the daemon keeps serving
                out = {"ok": False, "error": f"{type(e).__name__}: {e}"}
            f.write(json.dumps(out).encode() + b"\n")

    def loop() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            one(conn)

    threading.Thread(target=loop, name="lazyfs-control", daemon=True).start()
    return srv


def request(state: str, req: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(os.path.join(state, SOCKET))
        s.sendall(json.dumps(req).encode() + b"\n")
        with s.makefile("rb") as f:
            return json.loads(f.readline() or b'{"ok": false, "error": "no answer"}')


def mount(state: str, mountpoint: str) -> None:
    """Serve lazyfs on ``mountpoint`` until it is unmounted (fusermount3 -u) or killed."""
    import mfusepy

    from tester.lazyfs.fs import MOUNT_OPTIONS, LazyFS

    class Ops(LazyFS, mfusepy.Operations):
        pass

    os.makedirs(mountpoint, exist_ok=True)
    root = os.path.join(state, "root")
    os.makedirs(root, exist_ok=True)
    for name in os.listdir(mountpoint):  # files already there become the durable start
        os.rename(os.path.join(mountpoint, name), os.path.join(root, name))
    fs = Ops(state)
    srv = serve_control(fs, os.path.join(state, SOCKET))
    # Only an unmount or SIGTERM ends the daemon: a stray SIGINT or SIGHUP (a closed terminal,
    # a signal meant for the tester) must not leave the database over the empty directory
    # beneath the mount. libfuse keeps a handler that is not the default one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        mfusepy.FUSE(fs, mountpoint, foreground=True, nothreads=True, fsname="lazyfs",
                     **MOUNT_OPTIONS)
    finally:
        srv.close()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="lazyfs", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("mount")
    m.add_argument("state")
    m.add_argument("mountpoint")
    c = sub.add_parser("crash")
    c.add_argument("state")
    c.add_argument("--mode", choices=MODES, default="random")
    c.add_argument("--seed", default="0")
    sub.add_parser("check")
    a = ap.parse_args(argv)
    if a.cmd == "check":
        why = why_not()
        if why:
            print(why, file=sys.stderr)
            return 3
        return 0
    if a.cmd == "mount":
        why = why_not()
        if why:
            print(f"lazyfs: {why}", file=sys.stderr)
            return 3
        mount(a.state, a.mountpoint)
        return 0
    try:
        out = request(a.state, {"op": "crash", "mode": a.mode, "seed": a.seed})
    except OSError as e:
        print(f"lazyfs: no lazyfs serves {a.state} ({e})", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0 if out.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())

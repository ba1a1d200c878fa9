"""A pid-file daemon on a node, driven over SSH: the one process-lifecycle both adapters share.

Nodes may lack systemd (the local fleet has none), so a database runs as a plain background
process whose pid is kept in a file; kill, pause and resume signal that pid. This is also
what the Ansible role does where systemd is absent, so either can manage the other's process.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tester.control import Remote
from tester.db import DBError
from tester.inventory import Node


@dataclass(frozen=True)
class Daemon:
    """Where a daemon's pid and output live on a node."""

    name: str
    pid_file: str
    log_file: str

    def start(self, remote: Remote, argv: Sequence[str], env: Mapping[str, str] | None = None,
              cwd: str = "/") -> int:
        """Start ``argv`` detached (own session, no terminal); no-op if already running."""
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        cmd = " ".join(shlex.quote(a) for a in argv)
        script = (
            f"p={shlex.quote(self.pid_file)}; "
            'if [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null; then cat "$p"; exit 0; fi; '
            f"cd {shlex.quote(cwd)} || exit 1; "
            f"setsid env {envs} {cmd} </dev/null >>{shlex.quote(self.log_file)} 2>&1 & "
            'echo $! > "$p"; echo $!')
        out = remote.run(script, timeout=15).stdout.split()
        if not out or not out[-1].isdigit():
            raise DBError(f"{remote.name}: starting {self.name} printed no pid")
        return int(out[-1])

    def running(self, remote: Remote) -> bool:
        r = remote.run(self._signal("0"), timeout=10, check=False)
        return r.exit_code == 0

    def signal(self, remote: Remote, sig: str) -> bool:
        """Send a signal to the daemon; False when it is not running."""
        return remote.run(self._signal(sig), timeout=10, check=False).exit_code == 0

    def kill(self, remote: Remote, wait: float = 5.0) -> None:
        """SIGKILL and wait until the process is gone (a killed process can't hold its port)."""
        script = (f"p={shlex.quote(self.pid_file)}; [ -f \"$p\" ] || exit 0; pid=$(cat \"$p\"); "
                  'kill -9 "$pid" 2>/dev/null; '
                  f'i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt {int(wait * 100)} ]; '
                  "do sleep 0.01; i=$((i+1)); done; "
                  'if kill -0 "$pid" 2>/dev/null; then echo "still running" >&2; exit 1; fi; '
                  'rm -f "$p"')
        remote.run(script, timeout=wait + 10)

    def stop(self, remote: Remote, grace: float = 5.0) -> None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; also resumes a paused process."""
        script = (f"p={shlex.quote(self.pid_file)}; [ -f \"$p\" ] || exit 0; pid=$(cat \"$p\"); "
                  'kill -CONT "$pid" 2>/dev/null; kill -TERM "$pid" 2>/dev/null; '
                  f'i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt {int(grace * 100)} ]; '
                  "do sleep 0.01; i=$((i+1)); done; "
                  'kill -9 "$pid" 2>/dev/null; rm -f "$p"; true')
        remote.run(script, timeout=grace + 10)

    def require_running(self, remote: Remote) -> None:
        """With ``--no-deploy``: a DBError naming the node when this daemon is not running."""
        if not self.running(remote):
            raise DBError(f"{remote.name}: {self.name} is not running (no live pid in "
                          f"{self.pid_file}); drop --no-deploy to deploy it")

    def _signal(self, sig: str) -> str:
        return (f"p={shlex.quote(self.pid_file)}; [ -f \"$p\" ] && "
                f'kill -{sig} "$(cat "$p")" 2>/dev/null')


def require_program(remote: Remote, path: str, package: str) -> None:
    """A DBError naming the node and the Debian package when ``path`` is not installed."""
    remote.run(f"test -x {shlex.quote(path)} || {{ echo '{path} is not installed "
               f"(apt-get install {package})' >&2; exit 1; }}", timeout=10)


class DaemonFaults:
    """``kill``, ``pause`` and ``resume`` of an adapter whose database is one pid-file daemon
    per node (``daemon``): what every such adapter does alike, written once."""

    daemon: Daemon

    def kill(self, remote: Remote, node: Node) -> None:
        """SIGKILL, and wait until the process is gone."""
        self.daemon.kill(remote)

    def pause(self, remote: Remote, node: Node) -> None:
        self.daemon.signal(remote, "STOP")

    def resume(self, remote: Remote, node: Node) -> None:
        self.daemon.signal(remote, "CONT")


def wait_until(what: str, fn, timeout: float, interval: float = 0.05):  # type: ignore[no-untyped-def]
    """Poll ``fn()`` until it returns a truthy value; raise DBError naming ``what`` on timeout.

    Other exceptions from ``fn`` count as "not yet"; a DBError from ``fn`` means "never" and
    ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last_err: Exception | None = None
    while True:
        try:
            v = fn()
            if v:
                return v
        except DBError:
            raise
        except Exception as e:  # remembered for the timeout message
            last_err = e
        if time.monotonic() > deadline:
            extra = f" (last error: {last_err})" if last_err else ""
            raise DBError(f"timed out after {timeout:g} s waiting for {what}{extra}")
        time.sleep(interval)

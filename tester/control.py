"""SSH control of a fleet: run commands, copy files, on one node or all in parallel.

The tester touches nodes only through this module, so local fleets and real VMs are driven
the same way. A node is reached the way ``ssh`` would reach it: Fabric's ``Connection`` reads
``~/.ssh/config`` (or ``$RAFTLAB_SSH_CONFIG``) together with the inventory's
``ansible_ssh_common_args`` (``-o ProxyJump=...``, ``-J``, ``-o User=...``, ...), goes through
jump hosts (bastions), and authenticates with the inventory's key, the config's
``IdentityFile`` or an ssh-agent. A non-root ``ansible_user`` runs every command and file
transfer under ``sudo -n``. Host keys, the bastion's included, are checked strictly against a
known_hosts file; accepting an unknown key on first contact must be asked for
(``accept_new=True``), as with OpenSSH's ``StrictHostKeyChecking=accept-new``. Commands run
on Paramiko channels of that connection, with our own timeouts, session limit and reconnect.
Every command and its outcome is logged to the ``raftlab.control`` logger, which the tester
writes to the run's ``raftlab.log``.
"""

from __future__ import annotations

import io
import logging
import os
import select
import shlex
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import paramiko
from fabric import Config, Connection

from tester.inventory import Node

log = logging.getLogger("raftlab.control")
# paramiko logs a failed handshake (with its traceback) from its own thread; without a
# handler Python prints that on stderr. The error raised here already says what went wrong.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
T = TypeVar("T")


class ControlError(RuntimeError):
    """An SSH step failed; the message names the node (``node`` holds its name)."""

    def __init__(self, node: str, message: str, named: bool = False):
        """``named``: the message names its nodes already (several nodes' errors)."""
        super().__init__(message if named else f"{node}: {message}")
        self.node = node


class Unreachable(ControlError):
    """The node could not be reached or authenticated."""


class CommandFailed(ControlError):
    """A command exited non-zero under ``check=True``."""

    def __init__(self, result: Result):
        err = (result.stderr.strip() or result.stdout.strip())[-800:]
        super().__init__(result.node, f"command failed (exit {result.exit_code}): "
                                      f"{_short(result.cmd)}: {err}")
        self.result = result


class CommandTimeout(ControlError):
    """A command did not finish in time (it may still be running on the node)."""


@dataclass(frozen=True)
class Result:
    node: str
    cmd: str
    stdout: str
    stderr: str
    exit_code: int
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Trust a host's key on first contact and record it (never replaces a known key)."""

    _lock = threading.Lock()

    def __init__(self, known_hosts: Path | None):
        self.known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        log.warning("accepting new host key for %s (%s %s)", hostname, key.get_name(),
                    key.fingerprint if hasattr(key, "fingerprint") else key.get_base64()[:16])
        client.get_host_keys().add(hostname, key.get_name(), key)
        if self.known_hosts is not None:
            with self._lock, open(self.known_hosts, "a") as f:
                f.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def ssh_config_path() -> Path:
    """The OpenSSH client configuration read for every node (``$RAFTLAB_SSH_CONFIG`` wins)."""
    return Path(os.environ.get("RAFTLAB_SSH_CONFIG") or "~/.ssh/config").expanduser()


def common_args_config(host: str, args: str) -> str:
    """An ssh_config block for ``host`` from ``ansible_ssh_common_args`` (``-o K=V``, ``-J``).

    Options ssh would take from its command line come first, so they win over
    ``~/.ssh/config`` as they do for ssh itself.
    """
    words = shlex.split(args or "")
    lines = []
    flags = {"-J": "ProxyJump", "-i": "IdentityFile", "-p": "Port", "-l": "User",
             "-F": None}
    i = 0
    while i < len(words):
        w = words[i]
        value = words[i + 1] if i + 1 < len(words) else ""
        if w == "-o" and value:
            key, _, val = value.partition("=")
            if not val:
                key, _, val = value.partition(" ")
            lines.append(f"    {key.strip()} {val.strip()}")
            i += 2
        elif w.startswith("-o") and len(w) > 2:
            key, _, val = w[2:].partition("=")
            lines.append(f"    {key.strip()} {val.strip()}")
            i += 1
        elif w in flags and value:
            if flags[w]:
                lines.append(f"    {flags[w]} {value}")
            i += 2
        else:
            i += 1
    return f"Host {host}\n" + "\n".join(lines) + "\n" if lines else ""


def connection(node: Node, timeout: float = 10.0) -> Connection:
    """A Fabric Connection to ``node`` (not opened) as ssh would make it, jump hosts included.

    Precedence, as for ``ssh``: the inventory's explicit host, port, user and key; then its
    ``ansible_ssh_common_args``; then ``~/.ssh/config``.
    """
    cfg = paramiko.SSHConfig()
    cfg.parse(io.StringIO(common_args_config(node.host,
                                             node.var("ansible_ssh_common_args", ""))))
    user_cfg = ssh_config_path()
    if user_cfg.exists():
        with open(user_cfg) as f:
            cfg.parse(f)
    explicit = node.explicit
    connect_kwargs = {"banner_timeout": timeout, "auth_timeout": timeout,
                      "allow_agent": True, "look_for_keys": node.key_file is None}
    if node.key_file:
        connect_kwargs["key_filename"] = [str(Path(node.key_file).expanduser())]
    config = Config(ssh_config=cfg, overrides={"connect_kwargs": connect_kwargs,
                                               "load_ssh_configs": False})
    return Connection(
        node.host, config=config, connect_timeout=int(max(1, timeout)),
        user=node.user if "user" in explicit or not cfg.lookup(node.host).get("user")
        else None,
        port=node.port if "port" in explicit or not cfg.lookup(node.host).get("port")
        else None)


MAX_SESSIONS = 8  # concurrent commands per node; the SFTP channel is one more


class Remote:
    """One SSH connection to one node; thread-safe for concurrent ``run`` calls."""

    def __init__(self, node: Node, known_hosts: str | Path | None = None,
                 accept_new: bool = False, timeout: float = 10.0):
        self.node = node
        self.name = node.name
        self._known_hosts = Path(known_hosts) if known_hosts else None
        self._accept_new = accept_new
        self._timeout = timeout
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_lock = threading.Lock()
        self._connect_lock = threading.Lock()
        # sshd refuses an 11th channel on one connection (MaxSessions 10 by default): parallel
        # fault actions and heals on one node queue here instead of failing.
        self._sessions = threading.BoundedSemaphore(MAX_SESSIONS)
        self._hops: list[Connection] = []
        self.user = node.user
        self._client = self._connect()

    def _connect(self) -> paramiko.SSHClient:
        node, kh, timeout = self.node, self._known_hosts, self._timeout
        conn = connection(node, timeout)
        hops = []
        c: Connection | None = conn
        while isinstance(c, Connection):  # the node, then each jump host on the way
            hops.append(c)
            c = c.gateway if isinstance(c.gateway, Connection) else None
        for hop in hops:
            client = hop.client
            if kh is not None and kh.exists():
                client.load_host_keys(str(kh))
            elif kh is None:
                client.load_system_host_keys()
                extra = hop.ssh_config.get("userknownhostsfile")
                for f in (extra.split() if extra else []):
                    if Path(f).expanduser().exists():
                        client.load_host_keys(str(Path(f).expanduser()))
            client.set_missing_host_key_policy(
                _AcceptNew(kh) if self._accept_new else paramiko.RejectPolicy())
        via = f" via {' -> '.join(h.host for h in reversed(hops[1:]))}" if hops[1:] else ""
        t0 = time.monotonic()
        try:
            conn.open()
        except paramiko.BadHostKeyException as e:
            self._close_hops(hops)
            raise Unreachable(node.name, f"host key of {e.hostname} does not match known_hosts "
                                         f"({kh}): {e}") from None
        except paramiko.SSHException as e:
            self._close_hops(hops)
            why = str(e).replace("banner[", "banner: [")
            if "protocol banner" in why:
                why = f"no SSH server answered ({why})"
            if "not found in known_hosts" in why:
                why = (f"{why}: not in known_hosts ({kh}); "
                       "add it, or accept new keys explicitly (accept_new=True)")
            raise Unreachable(node.name, f"cannot connect to {conn.user}@{conn.host}:"
                                         f"{conn.port}{via}: {why}") from None
        except OSError as e:
            self._close_hops(hops)
            # paramiko wraps the socket errors of every address it tried: name the first
            first = next(iter(getattr(e, "errors", {}).values()), e)
            raise Unreachable(node.name, f"cannot connect to {conn.host}:{conn.port}{via}: "
                                         f"{first.strerror or first}") from None
        self._hops = hops
        self.user = conn.user
        transport = conn.client.get_transport()
        sock = getattr(transport, "sock", None)
        if isinstance(sock, socket.socket):  # small request/response packets: no Nagle wait
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        log.info("%s: connected to %s@%s:%d%s in %.0f ms", node.name, conn.user, conn.host,
                 conn.port, via, (time.monotonic() - t0) * 1000)
        return conn.client

    @staticmethod
    def _close_hops(hops: list[Connection]) -> None:
        for hop in hops:
            hop.client.close()

    def _transport(self) -> paramiko.Transport:
        """The live transport, reconnecting once if a fault (or the network) closed it.

        A fault run can cut or starve the control connection itself; healing must still reach
        the node afterwards, so a dead connection is replaced rather than given up on.
        """
        with self._connect_lock:
            transport = self._client.get_transport()
            if transport is None or not transport.is_active():
                log.warning("%s: SSH connection was closed; reconnecting", self.name)
                self._close_hops(self._hops)
                with self._sftp_lock:
                    self._sftp = None
                self._client = self._connect()
                transport = self._client.get_transport()
                if transport is None or not transport.is_active():
                    raise Unreachable(self.name, "SSH connection is closed")
            return transport

    def run(self, cmd: str, timeout: float = 60.0, check: bool = True,
            stdin: str | None = None) -> Result:
        """Run a shell command; raise CommandFailed (check) or CommandTimeout naming the node."""
        if self.user != "root":
            cmd = f"sudo -n sh -c {shlex.quote(cmd)}"
        t0 = time.monotonic()
        log.info("%s: $ %s", self.name, cmd)
        if not self._sessions.acquire(timeout=timeout):
            raise CommandTimeout(self.name, f"no free SSH session within {timeout:g} s: "
                                            f"{_short(cmd)}")
        try:
            chan = self._transport().open_session(timeout=timeout)
        except (paramiko.SSHException, OSError) as e:
            self._sessions.release()
            raise Unreachable(self.name, f"cannot open an SSH session: {e}") from None
        except BaseException:
            self._sessions.release()
            raise
        out, err = bytearray(), bytearray()
        try:
            chan.exec_command(cmd)
            if stdin is not None:
                chan.sendall(stdin.encode())
            chan.shutdown_write()
            deadline = t0 + timeout

            def left() -> float:
                rest = deadline - time.monotonic()
                if rest <= 0:
                    log.warning("%s: timed out after %.1f s: %s", self.name, timeout, cmd)
                    raise CommandTimeout(self.name, f"command timed out after {timeout:g} s: "
                                                    f"{_short(cmd)}")
                return rest

            while True:
                while chan.recv_ready():
                    out += chan.recv(65536)
                while chan.recv_stderr_ready():
                    err += chan.recv_stderr(65536)
                if chan.eof_received or chan.closed:
                    break
                select.select([chan], [], [], min(left(), 0.5))
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            while not chan.status_event.wait(min(left(), 0.5)):
                pass
            code = chan.recv_exit_status()
        finally:
            chan.close()
            self._sessions.release()
        res = Result(self.name, cmd, out.decode(errors="replace"), err.decode(errors="replace"),
                     code, time.monotonic() - t0)
        log.info("%s: exit %d in %.0f ms%s%s", self.name, code, res.elapsed * 1000,
                 _tail(" stdout", res.stdout), _tail(" stderr", res.stderr))
        if check and code != 0:
            raise CommandFailed(res)
        return res

    def _sftp_client(self) -> paramiko.SFTPClient:
        self._transport()  # reconnect first (it takes the sftp lock to drop a stale client)
        with self._sftp_lock:
            if self._sftp is None:
                self._sftp = self._client.open_sftp()
            return self._sftp

    def _staging(self) -> str:
        """A private path in the login user's reach, for transfers a non-root user relays."""
        return f"/tmp/.raftlab-{os.getpid()}-{threading.get_ident()}-{time.monotonic_ns()}"

    def put(self, local: str | Path, remote: str, mode: int | None = None) -> None:
        """Upload a file (optionally chmod it); as a non-root user, through sudo."""
        t0 = time.monotonic()
        target = remote if self.user == "root" else self._staging()
        try:
            sftp = self._sftp_client()
            sftp.put(str(local), target)
            if mode is not None:
                sftp.chmod(target, mode)
        except (OSError, paramiko.SSHException) as e:
            log.warning("%s: upload %s -> %s failed: %s", self.name, local, remote, e)
            raise ControlError(self.name, f"upload {local} -> {remote} failed: {e}") from None
        self._relay_in(target, remote)
        log.info("%s: uploaded %s -> %s in %.0f ms", self.name, local, remote,
                 (time.monotonic() - t0) * 1000)

    def write(self, remote: str, content: str | bytes, mode: int | None = None) -> None:
        """Create a file with the given content on the node; as a non-root user, via sudo."""
        data = content.encode() if isinstance(content, str) else content
        target = remote if self.user == "root" else self._staging()
        try:
            sftp = self._sftp_client()
            with sftp.open(target, "wb") as f:
                f.write(data)
            if mode is not None:
                sftp.chmod(target, mode)
        except (OSError, paramiko.SSHException) as e:
            raise ControlError(self.name, f"writing {remote} failed: {e}") from None
        self._relay_in(target, remote)
        log.info("%s: wrote %d bytes to %s", self.name, len(data), remote)

    def _relay_in(self, staged: str, remote: str) -> None:
        if staged != remote:  # root moves it into place, keeping the mode set above
            q = shlex.quote
            self.run(f"cp --preserve=mode {q(staged)} {q(remote)}; s=$?; rm -f {q(staged)}; "
                     "exit $s", timeout=self._timeout * 6)

    def get(self, remote: str, local: str | Path) -> None:
        """Download a file from the node (a non-root user has sudo copy it out first)."""
        source = remote
        if self.user != "root":
            source = self._staging()
            q = shlex.quote
            self.run(f"cp {q(remote)} {q(source)} && chown {q(self.user)} {q(source)}",
                     timeout=self._timeout * 6)
        try:
            Path(local).parent.mkdir(parents=True, exist_ok=True)
            self._sftp_client().get(source, str(local))
        except (OSError, paramiko.SSHException) as e:
            log.warning("%s: download %s failed: %s", self.name, remote, e)
            raise ControlError(self.name, f"download {remote} -> {local} failed: {e}") from None
        finally:
            if source != remote:
                self.run(f"rm -f {shlex.quote(source)}", check=False)
        log.info("%s: downloaded %s -> %s", self.name, remote, local)

    def close(self) -> None:
        with self._sftp_lock:
            if self._sftp is not None:
                self._sftp.close()
                self._sftp = None
        self._close_hops(self._hops)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(nodes: Iterable[Node], known_hosts: str | Path | None = None,
            accept_new: bool = False, timeout: float = 10.0) -> dict[str, Remote]:
    """Connect to every node in parallel; raise Unreachable naming every node that failed."""
    nodes = list(nodes)
    results: dict[str, Remote] = {}
    errors: list[ControlError] = []

    def one(n: Node) -> None:
        try:
            results[n.name] = Remote(n, known_hosts, accept_new=accept_new, timeout=timeout)
        except ControlError as e:
            errors.append(e)

    with ThreadPoolExecutor(max_workers=max(1, min(32, len(nodes)))) as pool:
        list(pool.map(one, nodes))
    if errors:
        for r in results.values():
            r.close()
        if len(errors) == 1:
            raise errors[0]
        errors.sort(key=lambda e: e.node)
        raise Unreachable(", ".join(e.node for e in errors), "; ".join(map(str, errors)),
                          named=True)
    return {n.name: results[n.name] for n in nodes}


def on_all(remotes: dict[str, Remote], fn: Callable[[Remote], T]) -> dict[str, T]:
    """Call ``fn(remote)`` on every node in parallel; raise ControlError naming failed nodes."""
    out: dict[str, T] = {}
    errors: dict[str, BaseException] = {}

    def one(name: str) -> None:
        try:
            out[name] = fn(remotes[name])
        except Exception as e:  # collected and re-raised with the node's name below
            errors[name] = e

    with ThreadPoolExecutor(max_workers=max(1, min(32, len(remotes)))) as pool:
        list(pool.map(one, list(remotes)))
    if errors:
        names = ", ".join(sorted(errors))
        msg = "; ".join(str(e) if isinstance(e, ControlError) else f"{n}: {e}"
                        for n, e in sorted(errors.items()))
        raise ControlError(names, msg, named=True) from next(iter(errors.values()))
    return {name: out[name] for name in remotes}


def run_all(remotes: dict[str, Remote], cmd: str, timeout: float = 60.0,
            check: bool = True) -> dict[str, Result]:
    """Run one command on every node in parallel."""
    return on_all(remotes, lambda r: r.run(cmd, timeout=timeout, check=check))


def close_all(remotes: dict[str, Remote]) -> None:
    for r in remotes.values():
        r.close()


def _short(cmd: str, n: int = 200) -> str:
    return cmd if len(cmd) <= n else cmd[:n] + "..."


def _tail(label: str, text: str, n: int = 400) -> str:
    text = text.strip()
    if not text:
        return ""
    return f"{label}: {text if len(text) <= n else '...' + text[-n:]}"

"""A Docker daemon of the tests' own, in a network namespace of its own.

dockerd with its iptables management on does to a machine what it does on a developer's:
FORWARD policy DROP, br_netfilter, its chains. Run in the root namespace it would do that to
every other fleet on this machine too, so the tests run it inside a private network namespace
(iptables, the FORWARD policy, bridge-nf-call-iptables and ip_forward are all per namespace),
and run the raftlab commands that need it in the same namespace. Deleting the namespace leaves
the host as it was. Its data root is kept (``DATA_ROOT``) so the node image is built once per
machine.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from tester.fleet import container

ROOT = Path(__file__).resolve().parents[2]
NETNS = "rltdock"
RUN_DIR = Path("/run/raftlab-test-docker")
DATA_ROOT = Path("/var/lib/raftlab/test-docker")
SOCKET = RUN_DIR / "docker.sock"
BIP = "10.213.74.1/24"  # docker0 inside the namespace


@dataclass(frozen=True)
class Netns:
    """A private network namespace; ``run`` executes a command inside it."""

    name: str
    env: dict[str, str]

    def run(self, args: list[str], timeout: float = 240, check: bool = False
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*enter(self.name), *args], capture_output=True,
                              text=True, timeout=timeout, check=check,
                              env={**os.environ, **self.env})

    def raftlab(self, *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
        """``raftlab ARGS`` run from inside the namespace (the control node lives there)."""
        return self.run([sys.executable, "-m", "tester.cli", *args], timeout=timeout)


def enter(ns: str) -> list[str]:
    """The prefix that runs a command in network namespace ``ns`` and nothing else.

    Not ``ip netns exec``: it also remounts /sys, hiding the cgroup mounts dockerd needs.
    """
    return ["nsenter", f"--net=/run/netns/{ns}"]


def _kill_all_in(ns: str) -> None:
    for _ in range(50):
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                              text=True).stdout.split()
        if not pids:
            return
        for p in pids:
            with suppress(ProcessLookupError):
                os.kill(int(p), signal.SIGKILL)
        time.sleep(0.1)


@contextmanager
def netns(name: str, forward_drop: bool = False) -> Iterator[Netns]:
    """A fresh namespace with loopback up; optionally FORWARD DROP and br_netfilter on."""
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        ns = Netns(name, {"PYTHONPATH": str(ROOT)})
        ns.run(["ip", "link", "set", "lo", "up"], check=True)
        if forward_drop:
            subprocess.run(["modprobe", "br_netfilter"], capture_output=True)
            ns.run(["iptables", "-w", "-P", "FORWARD", "DROP"], check=True)
            ns.run(["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"], check=True)
        yield ns
    finally:
        _kill_all_in(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def missing() -> list[str]:
    return [t for t in ("dockerd", "containerd", "docker", "debootstrap")
            if shutil.which(t) is None]


@contextmanager
def daemon(image_timeout: float = 900) -> Iterator[Netns]:
    """dockerd (iptables on) in namespace ``NETNS``, with the node image present; then gone."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    env = {"DOCKER_HOST": f"unix://{SOCKET}"}
    with netns(NETNS) as ns:
        ns = Netns(ns.name, {**ns.env, **env})
        # as on a fresh machine: dockerd turns forwarding on itself, and so sets FORWARD to DROP
        ns.run(["sysctl", "-qw", "net.ipv4.ip_forward=0"], check=True)
        with open(RUN_DIR / "dockerd.log", "ab") as log:
            proc = subprocess.Popen(
                [*enter(NETNS), "dockerd", "--data-root", str(DATA_ROOT),
                 "--exec-root", str(RUN_DIR / "exec"), "--pidfile",
                 str(RUN_DIR / "docker.pid"), "-H", f"unix://{SOCKET}", "--bip", BIP],
                stdout=log, stderr=log, start_new_session=True)
        try:
            deadline = time.monotonic() + 60
            while ns.run(["docker", "version"], timeout=10).returncode != 0:
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (RUN_DIR / "dockerd.log").read_text()[-1500:]
                    raise RuntimeError(f"dockerd did not start: {tail}")
                time.sleep(0.2)
            present = subprocess.run(["docker", "image", "inspect", container.DEFAULT_IMAGE],
                                     capture_output=True, env={**os.environ, **env})
            if present.returncode != 0:  # debootstrap needs the mirror: built from the host
                build = subprocess.run([sys.executable, "-m", "tester.cli", "fleet", "image",
                                        "build"], capture_output=True, text=True,
                                       timeout=image_timeout, cwd=ROOT,
                                       env={**os.environ, **ns.env})
                if build.returncode != 0:
                    raise RuntimeError(f"raftlab fleet image build failed: {build.stderr[-1500:]}")
            yield ns
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

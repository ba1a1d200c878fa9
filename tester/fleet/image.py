"""``raftlab fleet image build``: the container fleet's node image, made offline from Debian.

No registry is needed: debootstrap fetches a minimal Debian (bookworm by default) from the
machine's Debian mirror, with the packages a raftlab node uses (sshd, iptables, iproute2 for
tc, libfaketime, python3, procps, sudo, and a C compiler for libfaketime's wait fix), and the engine imports that tree as an image. The
image carries the label ``raftlab.fleet.image=1`` so ``fleet down --remove-image`` removes
only what raftlab built.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tester.fleet.base import FleetError, which
from tester.fleet.container import DEFAULT_IMAGE, LABEL, engine_binary, engine_running

# gcc and libc6-dev: faketime-run builds waitfix.so on the node on first use (without it,
# Python's timed waits never end under a moved clock: tester/dbs/waitfix.c)
# fuse3: the disk nemesis mounts lazyfs over the data directory (tester/lazyfs)
PACKAGES = ("openssh-server", "iptables", "iproute2", "libfaketime", "python3", "procps",
            "sudo", "gcc", "libc6-dev", "fuse3")
DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"


def system_mirror() -> str:
    """The Debian mirror this machine's apt uses (so a proxied or local mirror keeps working)."""
    for src in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d")
                                                         .glob("*"))]:
        try:
            text = src.read_text()
        except OSError:
            continue
        for ln in text.splitlines():
            words = ln.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in ln:
                return next(w for w in words[1:] if "://" in w)
    return DEFAULT_MIRROR


def build(engine: str = "docker", image: str = DEFAULT_IMAGE, suite: str = DEFAULT_SUITE,
          mirror: str | None = None, log: Callable[[str], None] = print) -> float:
    """Build the node image; returns the seconds it took. Raises FleetError saying why not."""
    engine_binary(engine)
    why = engine_running(engine)
    if why:
        raise FleetError(f"--engine {engine}: {why}")
    if which("debootstrap") is None:
        raise FleetError("raftlab fleet image build needs debootstrap "
                         "(apt-get install debootstrap, or run scripts/bootstrap.sh)")
    mirror = mirror or system_mirror()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="raftlab-image-") as tmp:
        root = Path(tmp) / "rootfs"
        log(f"debootstrap {suite} from {mirror} ({', '.join(PACKAGES)}) ...")
        p = subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                            suite, str(root), mirror], capture_output=True, text=True)
        if p.returncode != 0:
            tail = (p.stdout + p.stderr).strip().splitlines()[-3:]
            raise FleetError(f"debootstrap {suite} from {mirror} failed: {' | '.join(tail)}")
        # host keys come from the fleet (one per node); caches are not part of a node
        for pattern in ("etc/ssh/ssh_host_*", "var/cache/apt/archives/*.deb",
                        "var/lib/apt/lists/*_Packages"):
            for f in root.glob(pattern):
                f.unlink()
        shutil.rmtree(root / "var/log", ignore_errors=True)
        (root / "var/log").mkdir()
        log(f"{engine} import as {image} ...")
        tar = subprocess.Popen(["tar", "-C", str(root), "--numeric-owner", "-c", "."],
                               stdout=subprocess.PIPE)
        imp = subprocess.run([engine_binary(engine), "import",
                              "--change", f"LABEL {LABEL}.image=1",
                              "--change", 'CMD ["/bin/bash"]', "-", image],
                             stdin=tar.stdout, capture_output=True, text=True)
        if tar.stdout is not None:
            tar.stdout.close()
        tar.wait()
        if imp.returncode != 0 or tar.returncode != 0:
            raise FleetError(f"{engine} import {image} failed: {imp.stderr.strip()}")
    return time.monotonic() - t0

#!/usr/bin/env bash
# Set up everything raftlab needs on a Debian/Ubuntu machine, as root: Debian packages
# (python3, sshd, iptables, libfaketime, etcd, NATS, Redis, chromium, a C compiler) and a
# virtualenv in .venv with raftlab installed in editable mode and its simulator modules
# compiled. Safe to run again; it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "raftlab bootstrap: needs root (it installs Debian packages and creates network namespaces)" >&2
  exit 254
fi

APT_PACKAGES=(
  python3 python3-venv python3-pip python3-dev gcc libc6-dev
  openssh-server openssh-client iptables iproute2 procps psmisc kmod
  libfaketime faketime sudo
  fuse3
  docker.io debootstrap
  etcd-server etcd-client
  nats-server redis-server redis-sentinel
  chromium chromium-driver
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "raftlab bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # no package starts a service while installing (docker.io would start a system dockerd that
  # sets the FORWARD policy to DROP): the tests start and stop their own daemons
  no_start=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    no_start=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ -n "$no_start" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# Debian's etcd, NATS and Redis packages may start system services on their default ports;
# raftlab runs its own servers on the fleet's nodes.
if command -v systemctl >/dev/null 2>&1; then
  for s in etcd nats-server redis-server redis-sentinel; do
    systemctl disable --now "$s" >/dev/null 2>&1 || true
  done
fi

PY=${RAFTLAB_PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.raftlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev,compile]'
  touch "$stamp"
fi

# raftnode's core, the simulator and the checker's EDN line reader compiled with mypyc:
# `raftlab sim` runs about twice as fast, `raftlab check` reads Jepsen's EDN as fast as JSONL.
# Optional: if it fails, everything runs from the sources (`raftlab compile --status`).
if ! .venv/bin/raftlab compile --status | grep -q "(compiled)"; then
  .venv/bin/raftlab compile || echo "raftlab bootstrap: compiling failed; raftlab sim and check run interpreted" >&2
fi

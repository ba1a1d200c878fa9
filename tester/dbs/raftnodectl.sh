#!/bin/sh
# raftnodectl: run raftnode on this node as a pid-file daemon under libfaketime
# (through faketime-run, installed beside it).
#
# Installed as /opt/raftnode/raftnodectl by both the tester's raftnode adapter and the Ansible
# role, so either can start, fault and stop a node the other deployed. Configuration comes
# from /opt/raftnode/raftnode.env (shell variables, see below).
#
#   raftnodectl run [--join]     exec the node in the foreground (systemd's ExecStart)
#   raftnodectl start [--join]   start it detached unless it is running; prints the pid
#   raftnodectl stop             SIGTERM (SIGKILL after 5 s); resumes a paused process first
#   raftnodectl kill             SIGKILL, wait until gone
#   raftnodectl pause|resume     SIGSTOP / SIGCONT
#   raftnodectl status           prints "running PID" (exit 0) or "stopped" (exit 3)
#   raftnodectl wipe             delete the data directory (the node must be stopped)
set -eu
CONF=${RAFTNODE_CONF:-/opt/raftnode/raftnode.env}
[ -r "$CONF" ] || { echo "raftnodectl: no configuration at $CONF" >&2; exit 2; }
. "$CONF"
: "${RAFTNODE_ID:?} ${RAFTNODE_LISTEN:?} ${RAFTNODE_PEERS:?}"
APP=${RAFTNODE_APP:-/opt/raftnode/raftnode.pyz}
PY=${RAFTNODE_PYTHON:-python3}
DATA=${RAFTNODE_DATA:-/var/lib/raftnode/data}
PID=${RAFTNODE_PID:-/var/lib/raftnode/raftnode.pid}
LOG=${RAFTNODE_LOG:-/var/log/raftnode/node.log}
OUT=${RAFTNODE_STDOUT:-/var/log/raftnode/stdout.log}
SECRET=${RAFTNODE_SECRET:-/opt/raftnode/secret}
CLOCK=${RAFTNODE_CLOCK:-/var/lib/raftnode/faketime}
FAKETIME_CACHE=${RAFTNODE_FAKETIME_CACHE:-1}
# the shared daemon-under-libfaketime wrapper (tester/dbs/faketime-run.sh), installed beside us
FAKETIME_RUN=${RAFTNODE_FAKETIME_RUN:-$(dirname "$0")/faketime-run}
[ -z "${RAFTNODE_FAKETIME_LIB:-}" ] || export RAFTLAB_FAKETIME_LIB="$RAFTNODE_FAKETIME_LIB"

pid() { [ -f "$PID" ] && cat "$PID"; }
alive() { p=$(pid) && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
wait_gone() {  # $1 pid, $2 hundredths of a second
  i=0
  while kill -0 "$1" 2>/dev/null && [ "$i" -lt "$2" ]; do sleep 0.01; i=$((i + 1)); done
  ! kill -0 "$1" 2>/dev/null
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
  run)
    mkdir -p "$DATA" "$(dirname "$LOG")" "$(dirname "$PID")"
    [ -x "$FAKETIME_RUN" ] || { echo "raftnodectl: $FAKETIME_RUN is missing (install it beside raftnodectl)" >&2; exit 2; }
    # shellcheck disable=SC2086  # RAFTNODE_ARGS is a list of extra flags
    exec "$FAKETIME_RUN" "$CLOCK" "$FAKETIME_CACHE" \
      "$PY" "$APP" serve --id "$RAFTNODE_ID" --listen "$RAFTNODE_LISTEN" \
      --peers "$RAFTNODE_PEERS" --data-dir "$DATA" --secret-file "$SECRET" \
      --log-file "$LOG" --pid-file "$PID" ${RAFTNODE_ARGS:-} "$@"
    ;;
  start)
    if alive; then echo "$(pid)"; exit 0; fi
    mkdir -p "$(dirname "$OUT")" "$(dirname "$PID")"
    setsid "$0" run "$@" </dev/null >>"$OUT" 2>&1 &
    echo $! > "$PID"
    echo $!
    ;;
  stop)
    alive || { rm -f "$PID"; exit 0; }
    p=$(pid); kill -CONT "$p" 2>/dev/null || true; kill -TERM "$p" 2>/dev/null || true
    wait_gone "$p" 500 || { kill -9 "$p" 2>/dev/null || true; wait_gone "$p" 500; }
    rm -f "$PID"
    ;;
  kill)
    alive || { rm -f "$PID"; exit 0; }
    p=$(pid); kill -9 "$p" 2>/dev/null || true
    wait_gone "$p" 500 || { echo "raftnodectl: pid $p survived SIGKILL" >&2; exit 1; }
    rm -f "$PID"
    ;;
  pause) alive && kill -STOP "$(pid)" ;;
  resume) alive && kill -CONT "$(pid)" ;;
  status) if alive; then echo "running $(pid)"; else echo stopped; exit 3; fi ;;
  wipe)
    if alive; then echo "raftnodectl: stop the node before wiping" >&2; exit 1; fi
    # a mount point (lazyfs, under the disk nemesis) stays: empty it
    rm -rf "$DATA" 2>/dev/null || [ -z "$(ls -A "$DATA" 2>/dev/null)" ]
    ;;
  *) echo "usage: raftnodectl run|start|stop|kill|pause|resume|status|wipe" >&2; exit 2 ;;
esac

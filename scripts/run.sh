#!/usr/bin/env bash
# The main job: set up (if needed), bring up a local 5-node fleet, deploy raftnode, run a
# linearizability test under network partitions and clock skew, print the verdict and the run
# folder, and tear the fleet down again (also on failure or Ctrl-C).
# Extra arguments go to `raftlab test` (e.g. --time-limit 60 --unsafe local-reads).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh || exit $?
RAFTLAB=.venv/bin/raftlab
FLEET=${RAFTLAB_FLEET:-raftlab}

cleanup() { "$RAFTLAB" fleet down --name "$FLEET" >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$RAFTLAB" fleet down --name "$FLEET" >/dev/null 2>&1 || true   # leftovers of a killed run
"$RAFTLAB" fleet up --nodes 5 --name "$FLEET" || exit $?
"$RAFTLAB" test --fleet "$FLEET" --db raftnode --workload registers \
  --nemesis partition,flap,clock --time-limit 30 "$@"
status=$?
case $status in
  0) echo "raftlab: verdict: linearizable (exit 0)" ;;
  1) echo "raftlab: verdict: NOT linearizable (exit 1)" ;;
  2) echo "raftlab: verdict: unknown (exit 2)" ;;
  *) echo "raftlab: the test did not complete (exit $status)" ;;
esac
exit $status

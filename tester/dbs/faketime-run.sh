#!/bin/sh
# faketime-run: exec a command under libfaketime, its clock offset read from this node's file.
#
#   faketime-run CLOCK_FILE CACHE_SECONDS COMMAND [ARG...]
#
# The one place the daemon-under-libfaketime recipe lives: raftnodectl runs raftnode through
# it, and any adapter does the same through tester.dbs.faketime. CLOCK_FILE holds an offset
# ("+0", "+5", "-2.5", "+0 x0.5"); it is created as "+0" when missing. CACHE_SECONDS is how
# long libfaketime keeps the offset before reading the file again (0: every clock call).
# waitfix.c beside this script is built once into waitfix-CKSUM.so and preloaded first, so
# that Python's timed waits (Event.wait, Condition.wait, queue.get) end under the faked clock
# and programs on jemalloc (redis-server) start (waitfix.c says why).
# RAFTLAB_FAKETIME_LIB names libfaketime when it is not in a standard place.
set -eu
[ $# -ge 3 ] || { echo "usage: faketime-run CLOCK_FILE CACHE_SECONDS COMMAND [ARG...]" >&2; exit 2; }
clock=$1 cache=$2
shift 2
here=$(dirname "$0")
lib=
for f in ${RAFTLAB_FAKETIME_LIB:-} /usr/lib/*/faketime/libfaketime.so.1 \
         /usr/lib/faketime/libfaketime.so.1 /usr/local/lib/faketime/libfaketime.so.1; do
  if [ -n "$f" ] && [ -f "$f" ]; then lib=$f; break; fi
done
[ -n "$lib" ] || { echo "faketime-run: libfaketime not found (install libfaketime)" >&2; exit 2; }
fix=
if [ -f "$here/waitfix.c" ]; then  # built once per version of the source
  fix="$here/waitfix-$(cksum < "$here/waitfix.c" | cut -d' ' -f1).so"
fi
if [ -n "$fix" ] && [ ! -f "$fix" ]; then
  if command -v cc >/dev/null 2>&1 &&
     cc -shared -fPIC -O2 -o "$fix.$$" "$here/waitfix.c" -ldl 2>/dev/null; then
    mv -f "$fix.$$" "$fix"
  else
    rm -f "$fix.$$"
    echo "faketime-run: cannot build $fix (no cc, or cc failed): timed waits may hang under clock faults" >&2
  fi
fi
if [ -n "$fix" ] && [ -f "$fix" ]; then preload="$fix $lib"; else preload=$lib; fi
mkdir -p "$(dirname "$clock")"
[ -f "$clock" ] || echo "+0" > "$clock"
if [ "$cache" = 0 ]; then c="FAKETIME_NO_CACHE=1"; else c="FAKETIME_CACHE_DURATION=$cache"; fi
exec env LD_PRELOAD="$preload" FAKETIME_TIMESTAMP_FILE="$clock" "$c" "$@"

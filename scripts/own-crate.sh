#!/usr/bin/env bash
# examples/own-crate (a crate outside the workspace, as a user's would be) compiled behind the
# docker-backed tests, then tested. Its dependency graph unifies other features than the
# workspace's, so it compiles most crates again (~110 s on 2 cores): `start` does that on one
# core, under SCHED_IDLE (CPU only when nothing else wants it) and the lowest I/O priority,
# while the docker tests' runs mostly wait on their observation windows (at nice 19 on both
# cores, the first docker test's probes woke up to 379 ms late in CI); `test` waits for that
# build and runs the tests in the foreground (run beside the docker tests, their image builds
# and runs slowed the latency-judging ones: tried, and undone). Its own target directory
# (target/own-crate) keeps the two cargo processes from waiting on each other's lock.
#
#   bash scripts/own-crate.sh start   # returns at once; the build holds target/own-crate.lock
#   bash scripts/own-crate.sh test    # waits (at most 30 min) for that build, then tests
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
target=$root/target/own-crate
lock=$root/target/own-crate.lock
manifest=$root/examples/own-crate/Cargo.toml
mkdir -p "$target"
# Its runs' reports go to its own target directory, as a user's crate's would
# (target/own-crate/aftershock/: its tests check that).
export CARGO_TARGET_DIR=$target

case "${1:-}" in
  start)
    exec 9>"$lock"
    flock -x 9
    # The build inherits descriptor 9, so the lock is held until it (and every rustc) ends.
    nohup chrt --idle 0 nice -n 19 ionice -c3 cargo test --manifest-path "$manifest" --no-run -j 1 \
      >"$target/build.log" 2>&1 </dev/null &
    echo "own-crate: compiling behind the docker tests (log: $target/build.log)"
    ;;
  test)
    waited=$(date +%s)
    flock -w 1800 -x "$lock" true
    echo "own-crate: waited $(( $(date +%s) - waited )) s for its background build"
    # A build that failed in the background shows its errors here, in the foreground.
    cargo test --manifest-path "$manifest"
    ;;
  *)
    echo "usage: $0 start|test" >&2
    exit 2
    ;;
esac

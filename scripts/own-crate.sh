#!/usr/bin/env bash
# examples/own-crate (a crate outside the workspace, as a user's would be) compiled and tested
# behind the docker-backed tests. Its dependency graph unifies other features than the
# workspace's, so it compiles most crates again (~110 s on 2 cores): `start` does that at
# the lowest CPU and I/O priority while the docker tests' runs mostly wait on their
# observation windows, then runs its tests at normal priority (their runs take the
# machine-wide run lock like the docker tests' own, between them); `test` waits for that job
# and shows its output and exit status. Its own target directory (target/own-crate) keeps the
# two cargo processes from waiting on each other's lock. Without a `start` before it, `test`
# builds and tests in the foreground.
#
#   bash scripts/own-crate.sh start   # returns at once; the job holds target/own-crate.lock
#   bash scripts/own-crate.sh test    # waits (at most 30 min) for that job, or runs it
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
    rm -f "$target/test.rc"
    # The job inherits descriptor 9, so the lock is held until it (and every rustc) ends.
    nohup bash -c '
      nice -n 19 ionice -c3 cargo test --manifest-path "$1" --no-run &&
        cargo test --manifest-path "$1"
      echo $? > "$2/test.rc"' own-crate "$manifest" "$target" \
      >"$target/test.log" 2>&1 </dev/null &
    echo "own-crate: compiling and testing behind the docker tests (log: $target/test.log)"
    ;;
  test)
    waited=$(date +%s)
    flock -w 1800 -x "$lock" true
    if [[ -f "$target/test.rc" ]]; then
      echo "own-crate: waited $(( $(date +%s) - waited )) s for its background job"
      cat "$target/test.log"
      rc=$(cat "$target/test.rc")
      rm -f "$target/test.rc"
      exit "$rc"
    fi
    cargo test --manifest-path "$manifest"
    ;;
  *)
    echo "usage: $0 start|test" >&2
    exit 2
    ;;
esac

# The two commands of the README, and the pieces they are made of.
# Both start a Docker engine if none answers and build missing images on the way.

.PHONY: suite test test-pure test-docker test-own-crate test-platforms test-platforms-dind images clean lint engine browser

engine:
	@bash scripts/ensure-docker.sh

## Headless Chromium for the chart test (installed from Debian when missing).
browser:
	@bash scripts/ensure-chromium.sh

## The incident suite: every scenario in scenarios/, with the summary table.
suite: engine
	cargo run -q -p aftershock-cli -- suite

## The tests, in three tiers: first what needs no Docker engine (unit tests, tidy, the
## scenario files, the chart in headless Chromium, lossyfs's mount, the suite merge: a failure
## there shows right after the build), then the docker-backed tests (timed runs one at a time
## under the machine-wide run lock; the rest of their binary overlaps), then a crate of its own
## (examples/own-crate, outside the workspace) runs its chaos tests through the public API
## (scripts/own-crate.sh: compiled behind the docker tests on one core under SCHED_IDLE, in
## target/own-crate; its reports go to target/own-crate/aftershock/).
## Every cargo command selects the whole workspace (`--exclude` or `--test` pick targets):
## one feature set for every dependency, so no crate is compiled twice.
test: test-pure test-docker test-own-crate

# The root package's test targets, by tier (a new tests/*.rs must be named in one: checked).
PURE_TESTS = --test scenario_files --test suite_merge --test no_engine --test compose_corpus
DOCKER_TESTS = --test docker --test engine_restart
# Three threads on two cores: a test mostly waits (for the run lock, or in an observation
# window), and with a third waiting, two runs that may share the machine find each other
# more often while a run alone holds it.
DOCKER_THREADS = 3

test-pure: engine browser
	@for t in tests/*.rs tests/*/main.rs; do n=$$(basename $${t%/main.rs} .rs); \
	  case " $(PURE_TESTS) $(DOCKER_TESTS) " in *" --test $$n "*) ;; \
	  *) echo "make test: $$t is in no tier (PURE_TESTS or DOCKER_TESTS in the Makefile)"; exit 2;; \
	  esac; done
	python3 scripts/import-circles.py model/src harness/src cli/src
	cargo test --workspace --exclude aftershock-tests
	cargo test --workspace $(PURE_TESTS)

test-docker: engine
	cargo build --workspace --bin aftershock
	cargo test --workspace $(DOCKER_TESTS) --no-run
	@bash scripts/own-crate.sh start
	cargo test --workspace $(DOCKER_TESTS) -- --test-threads $(DOCKER_THREADS)
	cargo test --workspace --lib two_of_three_nodes -- --ignored

test-own-crate: engine
	bash scripts/own-crate.sh test

## The platform tier: the harness's binary and a few scenarios inside a cgroup v2 VM with
## Debian trixie's kernel and docker.io 26 (scripts/platform-vm.sh, qemu; KVM when it boots,
## else TCG). Not part of `make test` (~12 min from a fresh clone on a quiet machine, up to ~30
## beside other work): nightly.
test-platforms: engine
	bash scripts/platform-tier.sh

## The same scenarios against trixie's docker.io 26 on this cgroup v1 host, in a Docker-in-Docker
## machine (scripts/platform-dind.sh: ensure-docker.sh --suite trixie inside; the host's engine
## is not touched). ~10 min.
test-platforms-dind: engine
	bash scripts/platform-dind.sh

images: engine
	cargo run -q -p aftershock-cli -- images build

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

clean: engine
	cargo run -q -p aftershock-cli -- clean

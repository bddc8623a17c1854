# The two commands of the README, and the pieces they are made of.
# Both start a Docker engine if none answers and build missing images on the way.

.PHONY: suite test images clean lint engine browser

engine:
	@bash scripts/ensure-docker.sh

## Headless Chromium for the chart test (installed from Debian when missing).
browser:
	@bash scripts/ensure-chromium.sh

## The incident suite: every scenario in scenarios/, with the summary table.
suite: engine
	cargo run -q -p aftershock-cli -- suite

## The tests: unit tests, scenario-file tests, the chart in headless Chromium and the
## docker-backed incident tests (and the kill-skew test, a docker-backed unit test of the
## harness's cluster, ignored in plain `cargo test`); then a crate of its own (examples/own-crate, outside the
## workspace) runs its chaos tests through the public API (sharing this target directory, so
## its dependencies are not built twice; its reports go to target/aftershock/).
test: engine browser
	cargo test
	cargo test -p aftershock --lib two_of_three_nodes -- --ignored
	CARGO_TARGET_DIR=$(CURDIR)/target cargo test --manifest-path examples/own-crate/Cargo.toml

images: engine
	cargo run -q -p aftershock-cli -- images build

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

clean: engine
	cargo run -q -p aftershock-cli -- clean

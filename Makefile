# The two commands of the README, and the pieces they are made of.
# Both start a Docker engine if none answers and build missing images on the way.

.PHONY: suite test images clean lint engine

engine:
	@bash scripts/ensure-docker.sh

## The incident suite: every scenario in scenarios/, with the summary table.
suite: engine
	cargo run -q -p aftershock -- suite

## The tests: unit tests, scenario-file tests and the docker-backed incident tests.
test: engine
	cargo test

images: engine
	cargo run -q -p aftershock -- images build

lint:
	cargo fmt --all -- --check
	cargo clippy --all-targets -- -D warnings

clean: engine
	cargo run -q -p aftershock -- clean

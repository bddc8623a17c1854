//! Shared helpers for the docker-backed tests.

//! A stand-in for a team's own crate: its chaos tests live in `tests/`, its service's image in
//! `image/`. The library itself is empty.

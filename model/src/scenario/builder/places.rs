//! Where each part of an experiment was added in the caller's code (`#[track_caller]`), so a
//! problem the plan finds names the caller's `file:line:column`, as a scenario file's would.
//!
//! The k-th part added gets the span `k..k+1` on the references it holds (the file form's
//! references carry spans); a problem at a span, or about a part by name, is found here.

use crate::scenario::file::Ref;
use crate::scenario::load::Located;
use crate::scenario::resolve::Anchor;
use std::panic::Location;
use toml::Spanned;

/// The places of an experiment's parts, in the order they were added.
#[derive(Debug, Clone, Default)]
pub(super) struct Places {
    parts: Vec<(String, &'static Location<'static>)>,
}

impl Places {
    /// Records a part called `name` added at `at`; the span its references carry.
    pub fn add(&mut self, name: &str, at: &'static Location<'static>) -> std::ops::Range<usize> {
        self.parts.push((name.to_string(), at));
        let k = self.parts.len();
        k..k + 1
    }

    /// Where a problem is: the part its span or name points at, else `fallback` (the call of
    /// `plan()`).
    pub fn locate(&self, anchor: &Anchor, fallback: &'static Location<'static>) -> Located {
        let part = match anchor {
            Anchor::Span(span) => span.start.checked_sub(1).and_then(|k| self.parts.get(k)),
            Anchor::Name(name) => self.parts.iter().find(|(n, _)| n == name),
        };
        let at = part.map_or(fallback, |(_, at)| *at);
        located(at)
    }
}

/// A caller's location as the file, line and column an error names.
pub(super) fn located(at: &Location<'_>) -> Located {
    (
        at.file().to_string(),
        at.line() as usize,
        at.column() as usize,
    )
}

/// The same reference, at `span`.
pub(super) fn respan(r: &mut Ref, span: &std::ops::Range<usize>) {
    *r = Spanned::new(span.clone(), r.get_ref().clone());
}

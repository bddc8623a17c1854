//! Progress on the long steps of a run (image builds, bring-up, the observation with its fault
//! windows), drawn with `indicatif` on stderr. Silent when stderr is not a terminal (CI logs,
//! pipes) and when the CLI prints `--json`; the default ([`Progress::hidden`]) draws nothing,
//! so library users and tests see no bars.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// Where progress goes. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    bars: Option<MultiProgress>,
}

/// One step in progress; cleared when finished or dropped.
#[derive(Debug)]
pub struct Step {
    bar: ProgressBar,
}

impl Progress {
    /// Draws nothing.
    pub fn hidden() -> Self {
        Self::default()
    }

    /// Draws on stderr when it is a terminal; otherwise draws nothing.
    pub fn stderr() -> Self {
        let bars = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self { bars }
    }

    pub fn is_visible(&self) -> bool {
        self.bars.is_some()
    }

    /// A spinner for a step of unknown length ("building images", "bringing up").
    pub fn spinner(&self, message: impl Into<String>) -> Step {
        let bar = self.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} ({elapsed})").expect("a valid template"),
        );
        bar.set_message(message.into());
        bar.enable_steady_tick(Duration::from_millis(120));
        Step { bar }
    }

    /// A bar over a known length of time; the caller moves it with [`Step::set_elapsed`].
    pub fn timed(&self, message: impl Into<String>, total: Duration) -> Step {
        let bar = self.add(ProgressBar::new(total.as_millis() as u64));
        bar.set_style(
            ProgressStyle::with_template("{bar:30} {msg} [{elapsed}/{len_secs}]")
                .expect("a valid template")
                .with_key(
                    "len_secs",
                    |s: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = write!(w, "{}s", s.len().unwrap_or(0) / 1000);
                    },
                ),
        );
        bar.set_message(message.into());
        Step { bar }
    }

    fn add(&self, bar: ProgressBar) -> ProgressBar {
        match &self.bars {
            Some(m) => m.add(bar),
            None => {
                bar.set_draw_target(ProgressDrawTarget::hidden());
                bar
            }
        }
    }
}

impl Step {
    pub fn set_message(&self, message: impl Into<String>) {
        self.bar.set_message(message.into());
    }

    pub fn set_elapsed(&self, elapsed: Duration) {
        self.bar.set_position(elapsed.as_millis() as u64);
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_progress_draws_nothing_and_steps_still_work() {
        let p = Progress::hidden();
        assert!(!p.is_visible());
        let step = p.timed("observing", Duration::from_secs(10));
        step.set_elapsed(Duration::from_secs(3));
        assert_eq!(step.bar.position(), 3000);
        assert!(step.bar.is_hidden());
    }
}

//! The run's progress events ([`aftershock::ProgressEvent`]) drawn as `indicatif` bars on
//! stderr: a spinner per step of unknown length, a bar over the observation, a line when the
//! run waits for another run's lock. Nothing is drawn when stderr is not a terminal (CI logs,
//! pipes) or with `--json`.

use aftershock::{Progress, ProgressEvent};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Bars on stderr when it is a terminal and `quiet` is false; otherwise no watcher at all.
pub fn stderr(quiet: bool) -> Progress {
    if quiet || !std::io::stderr().is_terminal() {
        return Progress::default();
    }
    let bars = Bars {
        multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        open: Mutex::new(HashMap::new()),
    };
    Progress::to(move |e| bars.show(e))
}

struct Bars {
    multi: MultiProgress,
    open: Mutex<HashMap<u64, ProgressBar>>,
}

impl Bars {
    fn show(&self, event: &ProgressEvent) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            ProgressEvent::Started { step, what, length } => {
                let bar = self.multi.add(new_bar(*length));
                bar.set_message(what.clone());
                open.insert(*step, bar);
            }
            ProgressEvent::Moved {
                step,
                elapsed,
                message,
            } => {
                if let Some(bar) = open.get(step) {
                    bar.set_position(elapsed.as_millis() as u64);
                    bar.set_message(message.clone());
                }
            }
            ProgressEvent::Finished { step } => {
                if let Some(bar) = open.remove(step) {
                    bar.finish_and_clear();
                }
            }
            ProgressEvent::Waiting { holder } => {
                let _ = self.multi.println(format!("waiting for {holder}"));
            }
            _ => {}
        }
    }
}

/// A spinner for a step of unknown length, a bar over a known one.
fn new_bar(length: Option<Duration>) -> ProgressBar {
    match length {
        None => {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
                    .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        }
        Some(length) => {
            let bar = ProgressBar::new(length.as_millis() as u64);
            bar.set_style(
                ProgressStyle::with_template("{bar:30} {msg} [{elapsed}/{len_secs}]")
                    .expect("a valid template")
                    .with_key(
                        "len_secs",
                        |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                            let _ = write!(w, "{}s", s.len().unwrap_or(0) / 1000);
                        },
                    ),
            );
            bar
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn quiet_progress_has_no_watcher() {
        assert!(!super::stderr(true).is_watched());
    }
}

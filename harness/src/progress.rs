//! Progress on the long steps of a run (image builds, the run lock, bring-up, the observation
//! with its fault windows), as events for whoever watches: the CLI draws them as bars, a
//! library user passes a callback in [`crate::RunOptions::progress`]. The library itself
//! draws and prints nothing; without a callback the events go nowhere.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What happens on a long step of a run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ProgressEvent {
    /// A step began; `length` is known for the observation (the scenario's duration).
    Started {
        /// Tells this step's events from the others'.
        step: u64,
        /// What the step does ("bringing up zk, api").
        what: String,
        /// How long it will take, when that is known.
        length: Option<Duration>,
    },
    /// A timed step moved on: how far, and what is in effect now ("fault in effect: kill").
    Moved {
        /// The step that moved.
        step: u64,
        /// Time since the step began.
        elapsed: Duration,
        /// What is going on now.
        message: String,
    },
    /// The step ended.
    Finished {
        /// The step that ended.
        step: u64,
    },
    /// The run waits for another run that holds the machine-wide run lock (who, since when).
    Waiting {
        /// The holder, as the lock's holder file names it.
        holder: String,
    },
}

/// Who receives the events.
type Sink = Arc<dyn Fn(&ProgressEvent) + Send + Sync>;

/// A callback that receives a run's [`ProgressEvent`]s, from any thread.
#[derive(Clone, Default)]
pub struct Progress {
    sink: Option<Sink>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Progress")
            .field("watched", &self.sink.is_some())
            .finish()
    }
}

/// One step in progress: `Finished` is sent when it is dropped.
#[derive(Debug)]
pub struct Step {
    progress: Progress,
    id: u64,
}

static NEXT_STEP: AtomicU64 = AtomicU64::new(1);

impl Progress {
    /// Sends every event to `f`.
    pub fn to(f: impl Fn(&ProgressEvent) + Send + Sync + 'static) -> Self {
        Self {
            sink: Some(Arc::new(f)),
        }
    }

    /// Whether anybody receives the events.
    pub fn is_watched(&self) -> bool {
        self.sink.is_some()
    }

    /// Sends `event`, every value of a run's environment hidden in its texts
    /// (`report::redact`).
    pub(crate) fn send(&self, event: ProgressEvent) {
        use crate::report::redact::logged;
        let Some(sink) = &self.sink else { return };
        let hide = |s: String| logged(&s).into_owned();
        sink(&match event {
            ProgressEvent::Started { step, what, length } => ProgressEvent::Started {
                step,
                what: hide(what),
                length,
            },
            ProgressEvent::Moved {
                step,
                elapsed,
                message,
            } => ProgressEvent::Moved {
                step,
                elapsed,
                message: hide(message),
            },
            ProgressEvent::Waiting { holder } => ProgressEvent::Waiting {
                holder: hide(holder),
            },
            other @ ProgressEvent::Finished { .. } => other,
        });
    }

    /// A step of unknown length ("building images", "bringing up").
    pub(crate) fn step(&self, what: impl Into<String>) -> Step {
        self.start(what.into(), None)
    }

    /// A step over a known length of time, moved with [`Step::moved`].
    pub(crate) fn timed(&self, what: impl Into<String>, length: Duration) -> Step {
        self.start(what.into(), Some(length))
    }

    fn start(&self, what: String, length: Option<Duration>) -> Step {
        let id = NEXT_STEP.fetch_add(1, Ordering::Relaxed);
        self.send(ProgressEvent::Started {
            step: id,
            what,
            length,
        });
        Step {
            progress: self.clone(),
            id,
        }
    }
}

impl Step {
    /// The step moved on.
    pub(crate) fn moved(&self, elapsed: Duration, message: String) {
        self.progress.send(ProgressEvent::Moved {
            step: self.id,
            elapsed,
            message,
        });
    }
}

impl Drop for Step {
    fn drop(&mut self) {
        self.progress
            .send(ProgressEvent::Finished { step: self.id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn a_step_is_started_moved_and_finished_for_its_watcher() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let p = Progress::to(move |e| log.lock().unwrap().push(e.clone()));
        {
            let step = p.timed("observing", Duration::from_secs(10));
            step.moved(Duration::from_secs(3), "observing".into());
        }
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(
            matches!(&seen[0], ProgressEvent::Started { length: Some(l), .. } if l.as_secs() == 10)
        );
        assert!(matches!(&seen[1], ProgressEvent::Moved { elapsed, .. } if elapsed.as_secs() == 3));
        assert!(matches!(seen[2], ProgressEvent::Finished { .. }));
    }

    #[test]
    fn unwatched_progress_sends_nothing_and_steps_still_work() {
        let p = Progress::default();
        assert!(!p.is_watched());
        p.timed("observing", Duration::from_secs(1))
            .moved(Duration::ZERO, String::new());
    }
}

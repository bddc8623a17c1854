//! What a write probe remembers: which writes were acknowledged and which are indeterminate
//! (sent, answer never seen — Jepsen's `:info`), and the end-of-run read-back that compares
//! them with what the system still holds.

use crate::timeline::{EventKind, Timeline};
use std::future::Future;
use std::time::{Duration, Instant};

/// The writes of one probe.
#[derive(Debug, Default)]
pub struct Ledger {
    pub name: String,
    pub acknowledged: Vec<u64>,
    pub indeterminate: Vec<u64>,
}

impl Ledger {
    pub fn new(name: &str) -> Self {
        Ledger {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Records how write `seq` ended and turns it into the sample's result. Anything but a
    /// clear acknowledgement may or may not have been applied: indeterminate.
    pub fn settle(
        &mut self,
        seq: u64,
        outcome: Result<(), String>,
    ) -> Result<Option<String>, String> {
        match outcome {
            Ok(()) => {
                self.acknowledged.push(seq);
                Ok(None)
            }
            Err(e) => {
                self.indeterminate.push(seq);
                Err(e)
            }
        }
    }

    /// Lists what is present with `list` (retried for up to 30 s) and records the read-back.
    pub async fn read_back<F, Fut>(self, timeline: &Timeline, mut list: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Vec<u64>, String>>,
    {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            match list().await {
                Ok(present) => {
                    timeline.record(EventKind::ReadBack {
                        probe: self.name,
                        acknowledged: self.acknowledged,
                        indeterminate: self.indeterminate,
                        present,
                    });
                    return;
                }
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        timeline.note(format!(
            "read-back of {} failed for 30 s: {last}",
            self.name
        ));
    }
}

//! What a write probe remembers: which writes were acknowledged and which are indeterminate
//! (sent, answer never seen — Jepsen's `:info`), and the end-of-run read-back that compares
//! them with what the system still holds.

use super::Miss;
use crate::timeline::{EventKind, Timeline};
use std::future::Future;
use std::time::{Duration, Instant};

/// The writes of one probe.
#[derive(Debug, Default)]
pub struct Ledger {
    pub name: String,
    pub acknowledged: Vec<u64>,
    pub indeterminate: Vec<u64>,
    /// The write sent and not yet settled. Still set at the next `sending` when the probe's
    /// timeout dropped the sample mid-request.
    in_flight: Option<u64>,
}

impl Ledger {
    pub fn new(name: &str) -> Self {
        Ledger {
            name: name.into(),
            ..Default::default()
        }
    }

    /// Call right before write `seq` goes out. A previous write that never settled (the
    /// probe's timeout dropped it mid-request) is in doubt from here on.
    pub fn sending(&mut self, seq: u64) {
        if let Some(previous) = self.in_flight.replace(seq) {
            self.indeterminate.push(previous);
        }
    }

    /// Whether the last write was sent and never settled: its connection may still carry
    /// its answer, so the sampler must not reuse that connection.
    pub fn abandoned(&self) -> bool {
        self.in_flight.is_some()
    }

    /// Records how write `seq` ended and turns it into the sample's result. Anything but a
    /// clear acknowledgement may or may not have been applied: indeterminate.
    pub fn settle(&mut self, seq: u64, outcome: Result<(), Miss>) -> Result<Option<String>, Miss> {
        self.in_flight = None;
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
    pub async fn read_back<F, Fut, E>(mut self, timeline: &Timeline, mut list: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Vec<u64>, E>>,
        E: std::fmt::Display,
    {
        if let Some(seq) = self.in_flight.take() {
            self.indeterminate.push(seq);
        }
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
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        timeline.note(format!(
            "read-back of {} failed for 30 s: {last}",
            self.name
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::{Ledger, Miss};

    #[test]
    fn a_write_dropped_mid_request_is_in_doubt_not_unknown() {
        let mut ledger = Ledger::new("w");
        ledger.sending(1);
        assert!(ledger.abandoned(), "sent and not settled");
        // The probe's timeout dropped write 1; write 2 goes out on a new connection.
        ledger.sending(2);
        let _ = ledger.settle(2, Ok(()));
        ledger.sending(3);
        let _ = ledger.settle(3, Err(Miss::Failed("refused".into())));
        assert!(!ledger.abandoned());
        assert_eq!(ledger.acknowledged, vec![2]);
        assert_eq!(ledger.indeterminate, vec![1, 3]);
    }
}

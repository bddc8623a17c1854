//! Registry probes: `/v2/` over HTTP, and a real `docker push`/`docker pull` of a tiny image
//! through the registry by one machine's inner engine (what "nothing could be deployed" means).

use super::{Miss, Sampler};
use crate::engine::inner::Inner;
use crate::services::machine::registry_v2;
use std::time::Duration;

/// GET `/v2/` on the registry; ok on 200.
pub struct V2 {
    pub address: String,
    pub timeout: Duration,
}

impl Sampler for V2 {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, Miss> {
        registry_v2(&self.address, self.timeout)
            .await
            .map(|()| None)
            .map_err(Miss::from)
    }
}

/// Pulls the probe image from the registry with the engine of one machine. With `push_each`,
/// every sample first pushes a new tag; otherwise the first successful push (before the fault)
/// is the deploy, and every later sample pulls it again.
pub struct PushPull {
    pub inner: Inner,
    pub registry: String,
    pub push_each: bool,
    /// The tag pushed last (None until the first push succeeds).
    pub pushed: Option<String>,
}

impl Sampler for PushPull {
    async fn sample(&mut self, seq: u64) -> Result<Option<String>, Miss> {
        if self.push_each || self.pushed.is_none() {
            let tag = format!("s{seq}");
            // The machine's engine is the system under test here: its refusal is a failure.
            let pushed = self.inner.push(&self.registry, &tag).await;
            pushed.map_err(|e| Miss::Failed(e.to_string()))?;
            self.pushed = Some(tag);
        }
        let tag = self.pushed.clone().expect("set above");
        let pulled = self.inner.pull(&self.registry, &tag).await;
        pulled.map_err(|e| Miss::Failed(e.to_string()))?;
        Ok(Some(format!("pulled {tag}")))
    }
}

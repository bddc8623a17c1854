//! HTTP probe: GET a path on a service; ok on 2xx.

use super::Sampler;
use crate::services::toy_api;
use std::time::Duration;

pub struct Get {
    client: reqwest::Client,
    url: String,
}

impl Get {
    pub fn new(ip: &str, path: &str, timeout: Duration) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .expect("an HTTP client without TLS always builds");
        Self {
            client,
            url: toy_api::url(ip, path),
        }
    }
}

impl Sampler for Get {
    async fn sample(&mut self, _seq: u64) -> Result<Option<String>, String> {
        let response = self.client.get(&self.url).send().await.map_err(|e| {
            if e.is_timeout() {
                "timeout".to_string()
            } else if e.is_connect() {
                "connection refused".to_string()
            } else {
                e.to_string()
            }
        })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(160).collect();
        if status.is_success() {
            Ok(None)
        } else {
            Err(format!("{}: {body}", status.as_u16()))
        }
    }
}

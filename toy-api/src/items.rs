//! `GET /item/{id}`: the cache-aside read path of the clerk 2017-03 scenarios.
//!
//! memcached first ([`crate::cache`]); on a miss (or with no reachable node) the item is read
//! from PostgreSQL through the bounded pool ([`crate::db`]) and written to the cache. The answer
//! says where it came from: header `x-cache: hit|miss` and the JSON field `cache`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::cache::{Cache, Lookup};
use crate::db::Db;
use crate::settings::ItemSettings;

/// The item store: an optional cache in front of the database.
#[derive(Clone)]
pub struct Items {
    pub cache: Option<Cache>,
    pub db: Db,
    pub keys: u32,
}

impl Items {
    pub fn new(s: &ItemSettings) -> Self {
        let cache = (!s.memcached.is_empty()).then(|| {
            Cache::new(
                &s.memcached,
                s.mode,
                s.cache_timeout,
                s.retry_after,
                s.hedge,
            )
        });
        Items {
            cache,
            db: Db::new(&s.pg, s.pool, s.query_cost, s.value_bytes),
            keys: s.keys,
        }
    }

    /// The answer to `GET /item/{id}`.
    pub async fn get(&self, id: u32) -> Response {
        if id == 0 || id > self.keys {
            let body = json!({"error": format!("no item {id}; items are 1..={}", self.keys)});
            return (StatusCode::NOT_FOUND, Json(body)).into_response();
        }
        let key = format!("item:{id}");
        let mut cache_errors = 0;
        if let Some(cache) = &self.cache {
            match cache.get(&key).await {
                Lookup::Hit { node, value } => {
                    let body =
                        json!({"id": id, "cache": "hit", "node": node, "bytes": value.len()});
                    return answer("hit", body);
                }
                Lookup::Miss { errors } => cache_errors = errors,
            }
        }
        match self.db.item(id).await {
            Ok((value, cost)) => {
                if let Some(cache) = &self.cache {
                    cache.set(&key, &value).await;
                }
                let body = json!({
                    "id": id,
                    "cache": "miss",
                    "bytes": value.len(),
                    "cache_errors": cache_errors,
                    "db_wait_ms": cost.waited.as_secs_f64() * 1e3,
                    "db_query_ms": cost.query.as_secs_f64() * 1e3,
                    "db_waiting": self.db.waiting(),
                });
                answer("miss", body)
            }
            Err(e) => {
                let body = json!({"error": e, "cache_errors": cache_errors});
                (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
            }
        }
    }
}

fn answer(cache: &'static str, body: serde_json::Value) -> Response {
    let mut response = (StatusCode::OK, Json(body)).into_response();
    response
        .headers_mut()
        .insert("x-cache", HeaderValue::from_static(cache));
    response
}

//! The open-loop load probe: GETs at a fixed rate whatever the system does, so a slow system
//! cannot slow the load down (no coordinated omission). Request `i` is *intended* at
//! `start + i / rate`; it is sent then (or at once if the scheduler is late) on its own task,
//! and its latency counts from the intended time. Bounded: `rate × duration` requests, each
//! with the probe's timeout, at most [`MAX_IN_FLIGHT`] at once.
//!
//! At the end every request is put in the 1-second window of its intended time; each window
//! goes to the timeline with HdrHistogram p50/p99/max, the cache hit ratio (answers with
//! `x-cache: hit`), 5xx and other errors. Failed requests count with the time until they failed.
//!
//! Before the observation, [`prime`] reads every key once, and [`warm_up`] runs the same open
//! loop until the target is steady under it (its last whole windows agree), so that the
//! baseline the latency verdicts compare with is the warm normal, not a cache filling up.

use crate::check;
use crate::scenario::plan::{Load, Probe};
use crate::services::ServiceError;
use crate::timeline::{now, Event, EventKind, Nanos, Timeline};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// More requests than this outstanding at once are not sent (and count as errors).
pub const MAX_IN_FLIGHT: usize = 8000;
const WINDOW: Nanos = 1_000_000_000;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Ok { hit: bool },
    ServerError,
    Other,
}

/// One request: its intended send time (Unix ns), latency from then (ns), how it ended, and
/// how late the generator itself sent it (ns): a late send means the machine, not the system
/// under test, was stalled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Done {
    pub intended: Nanos,
    pub latency: Nanos,
    pub answer: Answer,
    pub lag: Nanos,
}

/// Open files the harness needs beside the load's sockets (Engine API calls, probes, files).
const SPARE_FILES: u64 = 512;

/// Raises this process's soft limit of open files to its hard limit; returns (before, after).
/// Every request in flight holds a socket: at 1024, a login shell's and a bare init's soft
/// limit, a load 30 s behind ends in "too many open files" for its own requests and for the
/// harness's Engine API calls alike (seen in a TCG guest: thousands of requests "failed" and
/// the leak's exec refused with a connect error).
pub fn raise_open_files() -> Option<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the struct above only.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) } != 0 {
        return None;
    }
    let before = l.rlim_cur;
    if l.rlim_cur < l.rlim_max {
        l.rlim_cur = l.rlim_max;
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &l) } != 0 {
            return Some((before, before));
        }
    }
    Some((before, l.rlim_cur))
}

/// Notes on the timeline when the open-files limit, raised as far as it goes, is still below
/// what the load may hold at once.
fn note_open_files(timeline: &Timeline, probe: &str) {
    if let Some((_, limit)) =
        raise_open_files().filter(|l| l.1 < MAX_IN_FLIGHT as u64 + SPARE_FILES)
    {
        timeline.note(format!(
            "load probe {probe}: open files limited to {limit} (the hard limit), fewer than its {MAX_IN_FLIGHT} requests in flight may need: beyond, requests fail with \"too many open files\" (raise it: ulimit -Hn)"
        ));
    }
}

fn client(timeout: Duration) -> reqwest::Client {
    raise_open_files();
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .expect("an HTTP client without TLS always builds")
}

fn url(ip: &str, load: &Load, key: u32) -> String {
    let path = load.path.replace("{key}", &key.to_string());
    format!("http://{ip}:{}{path}", load.port)
}

async fn get(client: &reqwest::Client, url: &str) -> Answer {
    match client.get(url).send().await {
        Ok(r) => {
            let status = r.status();
            let hit = r
                .headers()
                .get("x-cache")
                .is_some_and(|v| v.as_bytes() == b"hit");
            let body = r.bytes().await;
            match (status.as_u16(), body) {
                (200..=299, Ok(_)) => Answer::Ok { hit },
                (500..=599, _) => Answer::ServerError,
                _ => Answer::Other,
            }
        }
        Err(_) => Answer::Other,
    }
}

/// Reads every key once (16 at a time), so the observation starts with a warm cache.
/// Returns how long it took, or the first failure.
pub async fn prime(probe: &Probe, load: &Load, ip: &str) -> Result<Duration, ServiceError> {
    let started = Instant::now();
    let client = client(probe.timeout);
    let keys: Vec<u32> = (1..=load.keys.unwrap_or(0)).collect();
    for batch in keys.chunks(16) {
        let gets = batch.iter().map(|k| {
            let (client, url) = (&client, url(ip, load, *k));
            async move { (get(client, &url).await, url) }
        });
        for (answer, url) in futures_util::future::join_all(gets).await {
            if !matches!(answer, Answer::Ok { .. }) {
                let answer = format!("{answer:?}");
                return Err(ServiceError::at(format!("priming {url}"))(
                    ServiceError::Unexpected { answer },
                ));
            }
        }
    }
    Ok(started.elapsed())
}

/// What a load's warm-up saw: how long it ran and its last windows' agreement (`None`: fewer
/// windows than [`check::STEADY_WINDOWS`] ended).
#[derive(Debug, Clone)]
pub struct WarmUp {
    pub took: Duration,
    pub steady: Option<check::Steady>,
    /// Every window's p99 (ms) and hit ratio (%), in order: what the plan's note shows.
    pub windows: Vec<(f64, f64)>,
}

/// One message to the warm-up's judge: a request sent in a window, or one answered.
enum Msg {
    Sent(i64),
    Done(Done),
}

/// The same open loop as [`run`], before the observation, until the last
/// [`check::STEADY_WINDOWS`] whole windows agree ([`check::Steady::holds`]) or `longest` has
/// passed. A window is whole when every request sent in it has answered (or timed out).
/// Requests still in flight when it ends finish on their own (each has the probe's timeout).
pub async fn warm_up(probe: &Probe, load: &Load, ip: &str, seed: u64, longest: Duration) -> WarmUp {
    let started = Instant::now();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Msg>();
    let (p, load, ip) = (probe.clone(), load.clone(), ip.to_string());
    let sender = tokio::spawn(async move {
        let interval = Duration::from_secs(1) / load.rate.max(1);
        let client = client(p.timeout);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for i in 0u32.. {
            let intended = started + interval * i;
            if intended >= started + longest {
                break;
            }
            tokio::time::sleep_until(intended.into()).await;
            // Nanoseconds since the warm-up started: these requests never reach the timeline.
            let offset = (interval * i).as_nanos() as Nanos;
            let _ = tx.send(Msg::Sent(offset / WINDOW));
            let key = load.keys.map_or(0, |k| rng.gen_range(1..=k));
            let (client, url, tx) = (client.clone(), url(&ip, &load, key), tx.clone());
            tokio::spawn(async move {
                let lag = intended.elapsed().as_nanos() as Nanos;
                let answer = get(&client, &url).await;
                let latency = intended.elapsed().as_nanos() as Nanos;
                let done = Done {
                    intended: offset,
                    latency,
                    answer,
                    lag,
                };
                let _ = tx.send(Msg::Done(done));
            });
        }
    });
    let mut judge = Judge::default();
    let mut warm = None;
    while let Some(msg) = rx.recv().await {
        if let Some(steady) = judge.take(msg, &probe.name).filter(check::Steady::holds) {
            warm = Some(steady);
            break;
        }
    }
    sender.abort();
    WarmUp {
        took: started.elapsed(),
        steady: warm.or_else(|| check::steady(&judge.whole)),
        windows: judge
            .whole
            .iter()
            .map(|w| (w.p99 as f64 / 1e6, w.hit_ratio() * 100.0))
            .collect(),
    }
}

/// The warm-up's windows as they become whole.
#[derive(Default)]
struct Judge {
    /// Requests sent, by window.
    sent: BTreeMap<i64, u64>,
    /// Requests answered, by window.
    done: BTreeMap<i64, Vec<Done>>,
    /// The whole windows, summarised, in order.
    whole: Vec<crate::timeline::Window>,
}

impl Judge {
    /// Counts `msg`; when that makes the next window whole, the agreement of the last ones.
    fn take(&mut self, msg: Msg, probe: &str) -> Option<check::Steady> {
        match msg {
            Msg::Sent(w) => *self.sent.entry(w).or_default() += 1,
            Msg::Done(d) => self.done.entry(d.intended / WINDOW).or_default().push(d),
        }
        let next = self.whole.len() as i64;
        let newest = self.sent.keys().next_back().copied().unwrap_or(-1);
        let answered = self.done.get(&next).map_or(0, Vec::len) as u64;
        if newest <= next || self.sent.get(&next) != Some(&answered) {
            return None;
        }
        let done = self.done.remove(&next).unwrap_or_default();
        let t = crate::timeline::Timeline::from_events(windows(probe, 0, &done));
        self.whole.extend(t.windows(probe).into_iter().take(1));
        check::steady(&self.whole)
    }
}

/// Runs the open loop until `until`, then waits for the last answers and writes the windows.
pub async fn run(
    probe: Probe,
    load: Load,
    ip: String,
    seed: u64,
    until: Instant,
    timeline: Timeline,
) {
    let rate = load.rate.max(1);
    let interval = Duration::from_secs(1) / rate;
    let client = client(probe.timeout);
    note_open_files(&timeline, &probe.name);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Done>();
    let start = Instant::now();
    let start_unix = now();
    let mut refused = 0u64;
    for i in 0u32.. {
        let intended = start + interval * i;
        if intended >= until {
            break;
        }
        tokio::time::sleep_until(intended.into()).await;
        let intended_unix = start_unix + (interval * i).as_nanos() as Nanos;
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            refused += 1;
            let _ = tx.send(Done {
                intended: intended_unix,
                latency: 0,
                answer: Answer::Other,
                lag: 0,
            });
            continue;
        }
        let key = load.keys.map_or(0, |k| rng.gen_range(1..=k));
        let (client, url, tx, in_flight) = (
            client.clone(),
            url(&ip, &load, key),
            tx.clone(),
            in_flight.clone(),
        );
        in_flight.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let lag = intended.elapsed().as_nanos() as Nanos;
            let answer = get(&client, &url).await;
            let latency = intended.elapsed().as_nanos() as Nanos;
            in_flight.fetch_sub(1, Ordering::Relaxed);
            let _ = tx.send(Done {
                intended: intended_unix,
                latency,
                answer,
                lag,
            });
        });
    }
    drop(tx);
    let mut done = vec![];
    while let Some(d) = rx.recv().await {
        done.push(d);
    }
    if refused > 0 {
        timeline.note(format!(
            "load probe {}: {refused} requests not sent ({MAX_IN_FLIGHT} already in flight)",
            probe.name
        ));
    }
    for event in windows(&probe.name, start_unix, &done) {
        timeline.push(event);
    }
    for event in fell_behind(&probe.name, start_unix, &done) {
        timeline.push(event);
    }
}

/// The generator's own lateness over [`super::LAG_BOUND`], as the harness falling behind: one
/// unplanned event per 1-s window that had any, at its latest request's intended time. An
/// open loop's send lag is the host starving the harness, never the system being slow (a full
/// queue refuses a request, it does not wait), so every verdict its window touches is
/// UNKNOWN — as a probe's late sample makes them (seen: 12–88 s behind in a TCG guest, and the
/// error-rate and recovery verdicts read it as the system failing).
pub fn fell_behind(probe: &str, start: Nanos, done: &[Done]) -> Vec<Event> {
    let bound = super::LAG_BOUND.as_nanos() as Nanos;
    let mut worst: BTreeMap<i64, &Done> = BTreeMap::new();
    for d in done.iter().filter(|d| d.lag > bound) {
        let w = worst
            .entry((d.intended - start).max(0) / WINDOW)
            .or_insert(d);
        if d.lag > w.lag {
            *w = d;
        }
    }
    let event = |d: &Done| {
        Event {
        at: d.intended,
        kind: EventKind::Unplanned {
            cause: crate::timeline::Cause::Lag,
            subject: probe.to_string(),
            lasted: d.lag,
            detail: format!(
                "the harness fell behind: load probe `{probe}` sent a request {} ms late (bound {} ms; the host starved it of CPU)",
                d.lag / 1_000_000,
                super::LAG_BOUND.as_millis()
            ),
        },
    }
    };
    worst.into_values().map(event).collect()
}

/// Groups requests into 1-s windows of their intended time (from `start`) and summarises each.
pub fn windows(probe: &str, start: Nanos, done: &[Done]) -> Vec<Event> {
    let mut by_window: BTreeMap<i64, Vec<&Done>> = BTreeMap::new();
    for d in done {
        by_window
            .entry((d.intended - start).max(0) / WINDOW)
            .or_default()
            .push(d);
    }
    by_window
        .into_iter()
        .map(|(w, requests)| {
            // 1 µs to 10 min at 3 significant digits; values are recorded in µs.
            let mut h = Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)
                .expect("valid histogram bounds");
            let (mut ok, mut server_errors, mut other_errors, mut hits) = (0, 0, 0, 0);
            for d in &requests {
                h.saturating_record((d.latency / 1000).max(1) as u64);
                match d.answer {
                    Answer::Ok { hit } => {
                        ok += 1;
                        hits += u64::from(hit);
                    }
                    Answer::ServerError => server_errors += 1,
                    Answer::Other => other_errors += 1,
                }
            }
            let q = |p: f64| h.value_at_quantile(p) as Nanos * 1000;
            let lag = requests.iter().map(|d| d.lag).max().unwrap_or(0);
            Event {
                at: start + w * WINDOW,
                kind: EventKind::Window {
                    probe: probe.to_string(),
                    sent: requests.len() as u64,
                    ok,
                    server_errors,
                    other_errors,
                    hits,
                    p50: q(0.5),
                    p99: q(0.99),
                    max: h.max() as Nanos * 1000,
                    lag,
                },
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_raised_to_the_hard_one() {
        let (_, after) = raise_open_files().expect("getrlimit works");
        let mut l = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: reads into the struct above only.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) }, 0);
        assert_eq!((l.rlim_cur, after), (l.rlim_max, l.rlim_max));
        assert_eq!(
            raise_open_files(),
            Some((after, after)),
            "once raised, stays"
        );
    }

    #[test]
    fn a_send_later_than_the_bound_is_the_harness_falling_behind_once_per_window() {
        let ms = 1_000_000;
        let sent = |intended: Nanos, lag: Nanos| Done {
            intended,
            latency: lag + 5 * ms,
            answer: Answer::Ok { hit: true },
            lag,
        };
        let done = [
            sent(100 * ms, 30 * ms),
            sent(200 * ms, 300 * ms),
            sent(300 * ms, 900 * ms),
            sent(1_500 * ms, 20 * ms),
        ];
        let events = fell_behind("api", 0, &done);
        assert_eq!(events.len(), 1, "{events:?}");
        let EventKind::Unplanned {
            cause,
            lasted,
            detail,
            ..
        } = &events[0].kind
        else {
            panic!("{events:?}")
        };
        assert_eq!(*cause, crate::timeline::Cause::Lag);
        assert_eq!((*lasted, events[0].at), (900 * ms, 300 * ms));
        assert!(detail.contains("900 ms late"), "{detail}");
        assert!(fell_behind("api", 0, &done[..1]).is_empty());
    }

    /// The warm-up's judge: a window counts once every request sent in it has answered and
    /// the sender has moved on; three alike in a row are steady, a cold start is not.
    #[test]
    fn a_warm_up_window_is_judged_when_whole_and_three_alike_are_steady() {
        let ms = 1_000_000;
        let mut judge = Judge::default();
        let mut verdicts = vec![];
        // Window 0 cold (misses, slow), windows 1..=4 warm; 10 requests a window.
        for w in 0..5i64 {
            for i in 0..10 {
                verdicts.push(judge.take(Msg::Sent(w), "p"));
                let warm = w > 0;
                let done = Done {
                    intended: w * WINDOW + i * 100 * ms,
                    latency: if warm { 5 * ms } else { 900 * ms },
                    answer: Answer::Ok { hit: warm },
                    lag: 0,
                };
                verdicts.push(judge.take(Msg::Done(done), "p"));
            }
        }
        // The last window is never whole: nothing was sent after it.
        assert_eq!(judge.whole.len(), 4);
        let judged: Vec<bool> = verdicts.iter().flatten().map(|s| s.holds()).collect();
        // Windows 0..=2 (one cold) then 1..=3 (all warm).
        assert_eq!(judged, [false, true]);
    }

    #[test]
    fn windows_follow_intended_time_and_count_every_answer() {
        let ms = 1_000_000;
        let mut done = vec![];
        for i in 0..100 {
            done.push(Done {
                intended: i * 10 * ms,
                latency: if i == 99 { 900 * ms } else { ms },
                answer: Answer::Ok { hit: i % 2 == 0 },
                lag: i,
            });
        }
        // Sent in the second window, answered late: it still belongs to the second window.
        done.push(Done {
            intended: 1500 * ms,
            latency: 5000 * ms,
            answer: Answer::ServerError,
            lag: 0,
        });
        let w = windows("p", 0, &done);
        assert_eq!(w.len(), 2);
        match &w[0].kind {
            EventKind::Window {
                sent,
                ok,
                hits,
                p50,
                p99,
                max,
                ..
            } => {
                assert_eq!((*sent, *ok, *hits), (100, 100, 50));
                assert!((*p50 - ms).abs() < ms / 100, "{p50}");
                assert!(*p99 <= 2 * ms, "{p99}");
                assert!(*max >= 899 * ms, "{max}");
            }
            e => panic!("{e:?}"),
        }
        match &w[1].kind {
            EventKind::Window {
                server_errors, p99, ..
            } => {
                assert_eq!(w[1].at, 1000 * ms);
                assert_eq!(*server_errors, 1);
                assert!(*p99 >= 4990 * ms, "{p99}");
            }
            e => panic!("{e:?}"),
        }
    }
}

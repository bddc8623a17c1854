//! sicklink: a TCP proxy that makes the connections through it sick, in Toxiproxy's
//! vocabulary (its "toxics"): `latency` with `jitter` per chunk, `bandwidth`, `slicer`,
//! `limit_data`, `timeout`, `reset_peer` and `slow_close`, on the `upstream` (client → server),
//! the `downstream` (server → client) or both streams. The harness starts it inside a
//! container's network namespace and redirects the service's port to it (a fault of kind
//! `sick-link`); this library is the proxy, pure of any harness knowledge, so its toxics are
//! tested over loopback sockets.
//!
//! Each accepted connection gets a connection to `upstream` and two pipes, one per stream.
//! A pipe's reader stamps each chunk with the instant it is due (read time + latency ± jitter)
//! and its writer sends it then, sliced and paced (bandwidth) — so delays overlap as on a
//! long link instead of adding up. An end of stream is forwarded the same way (after the
//! latency, then `slow_close`). Connection-wide: `reset_peer` closes the client's socket with
//! SO_LINGER 0 (an RST) after its time; `timeout` drops the stream's data and closes the
//! connection after its time (never, when zero); `limit_data` closes it once that many bytes
//! went through the stream.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;

/// Which stream of a connection the data toxics act on (Toxiproxy's `stream`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Client → server.
    Upstream,
    /// Server → client (Toxiproxy's default).
    Downstream,
    /// Both.
    Both,
}

impl Stream {
    /// Whether the toxics act on the stream that goes `up` (client → server) or down.
    pub fn covers(self, up: bool) -> bool {
        match self {
            Stream::Upstream => up,
            Stream::Downstream => !up,
            Stream::Both => true,
        }
    }
}

impl std::str::FromStr for Stream {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "upstream" => Ok(Stream::Upstream),
            "downstream" => Ok(Stream::Downstream),
            "both" => Ok(Stream::Both),
            _ => Err(format!("`{s}`: upstream, downstream or both")),
        }
    }
}

/// Toxiproxy's `slicer`: chunks cut into slices of `average` ± `variation` bytes, `delay`
/// between slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slicer {
    pub average: usize,
    pub variation: usize,
    pub delay: Duration,
}

/// The toxics of every connection through the proxy. `None`: that toxic is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toxics {
    /// The stream the data toxics (latency, bandwidth, slicer, limit_data, timeout) act on.
    pub stream: Stream,
    /// Every chunk (and the end of stream) held this long …
    pub latency: Option<Duration>,
    /// … ± up to this, uniformly at random (seeded).
    pub jitter: Duration,
    /// At most this many bytes per second.
    pub bandwidth: Option<u64>,
    pub slicer: Option<Slicer>,
    /// The connection is closed once this many bytes went through the stream.
    pub limit_data: Option<u64>,
    /// The stream's data is dropped; the connection is closed after this long (zero: held
    /// open, silent, until the proxy stops).
    pub timeout: Option<Duration>,
    /// The client's connection is reset (RST) this long after it was accepted.
    pub reset_peer: Option<Duration>,
    /// An end of stream is forwarded this much later.
    pub slow_close: Option<Duration>,
}

impl Toxics {
    /// No toxic: a plain proxy.
    pub fn none() -> Self {
        Toxics {
            stream: Stream::Downstream,
            latency: None,
            jitter: Duration::ZERO,
            bandwidth: None,
            slicer: None,
            limit_data: None,
            timeout: None,
            reset_peer: None,
            slow_close: None,
        }
    }
}

/// Accepts connections on `listener` forever, each forwarded to `upstream` through the
/// toxics; the `n`-th connection's random choices come from `seed` and `n`.
pub async fn serve(listener: TcpListener, upstream: SocketAddr, toxics: Toxics, seed: u64) {
    let toxics = Arc::new(toxics);
    let mut n = 0u64;
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        n += 1;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(n);
        tokio::spawn(connection(client, upstream, toxics.clone(), rng));
    }
}

/// How a pipe ended.
#[derive(Debug, PartialEq)]
enum End {
    /// The end of stream was forwarded (or the pipe broke): the other stream goes on.
    Eof,
    /// A toxic ends the whole connection (limit_data).
    Close,
}

/// One connection: two pipes, until both ended, one closes the connection, or a
/// connection-wide toxic (reset_peer, timeout) fires. Dropping the sockets closes them (with
/// an RST on the client's when reset_peer is on: SO_LINGER 0 from the start). The pipes
/// borrow the sockets' halves (an owned write half would send a FIN when dropped, ahead of
/// the reset).
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    toxics: Arc<Toxics>,
    rng: ChaCha8Rng,
) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return; // dropped: the client sees its connection closed, as behind a dead server
    };
    if toxics.reset_peer.is_some() {
        // Deprecated because a nonzero linger blocks the dropping thread; zero never does:
        // the close is an RST at once.
        #[allow(deprecated)]
        let _ = client.set_linger(Some(Duration::ZERO));
    }
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let (cr, cw) = client.split();
    let (sr, sw) = server.split();
    let close = Notify::new();
    let mut up_rng = rng.clone();
    up_rng.set_word_pos(1 << 20);
    let ends = async {
        tokio::join!(
            pipe(cr, sw, &toxics, true, up_rng, &close),
            pipe(sr, cw, &toxics, false, rng, &close)
        )
    };
    let deadline = |d: Option<Duration>| async move {
        match d {
            Some(d) if !d.is_zero() => tokio::time::sleep(d).await,
            _ => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = ends => {}
        _ = close.notified() => {}
        _ = deadline(toxics.reset_peer) => {}
        _ = deadline(toxics.timeout) => {}
    }
}

/// One chunk on its way, or the end of stream, due at an instant.
enum Piece {
    Data(Instant, Vec<u8>),
    Eof(Instant),
}

/// One stream of a connection: a reader that stamps chunks with their due instant and a
/// writer that sends them then; a stream the toxics do not cover is copied as it is.
async fn pipe(
    mut from: ReadHalf<'_>,
    mut to: WriteHalf<'_>,
    toxics: &Toxics,
    up: bool,
    rng: ChaCha8Rng,
    close: &Notify,
) -> End {
    if !toxics.stream.covers(up) {
        let _ = tokio::io::copy(&mut from, &mut to).await;
        let _ = to.shutdown().await;
        return End::Eof;
    }
    let (tx, rx) = mpsc::channel(256);
    // The writer ends after the last piece (the end of stream, or what limit_data allowed).
    let (end, ()) = tokio::join!(
        read_in(from, tx, toxics, rng.clone()),
        write_out(to, rx, toxics, rng)
    );
    if end == End::Close {
        close.notify_one();
    }
    end
}

/// Reads chunks and sends each on with the instant it is due; drops them under `timeout`;
/// stops at `limit_data` (the connection closes after the allowed bytes are written).
async fn read_in(
    mut from: ReadHalf<'_>,
    tx: mpsc::Sender<Piece>,
    toxics: &Toxics,
    mut rng: ChaCha8Rng,
) -> End {
    let mut buf = vec![0u8; 32 * 1024];
    let mut passed = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) if toxics.timeout.is_some() => {
                // Silent means silent: not even the end of stream goes through.
                return std::future::pending().await;
            }
            Ok(0) | Err(_) => {
                let _ = tx.send(Piece::Eof(due(toxics, &mut rng))).await;
                return End::Eof;
            }
            Ok(n) => n,
        };
        if toxics.timeout.is_some() {
            continue; // the data goes nowhere
        }
        let mut chunk = buf[..n].to_vec();
        let limit = toxics.limit_data.unwrap_or(u64::MAX);
        let room = limit.saturating_sub(passed);
        if chunk.len() as u64 >= room {
            chunk.truncate(room as usize);
            let at = due(toxics, &mut rng);
            let _ = tx.send(Piece::Data(at, chunk)).await;
            // Let the writer send what was allowed, then close the connection.
            drop(tx);
            return End::Close;
        }
        passed += chunk.len() as u64;
        if tx
            .send(Piece::Data(due(toxics, &mut rng), chunk))
            .await
            .is_err()
        {
            return End::Eof;
        }
    }
}

/// When a piece read now is due: now + latency ± jitter (never before now).
fn due(toxics: &Toxics, rng: &mut ChaCha8Rng) -> Instant {
    let now = Instant::now();
    let Some(latency) = toxics.latency else {
        return now;
    };
    let jitter = toxics.jitter.as_micros() as i64;
    let off = if jitter > 0 {
        rng.gen_range(-jitter..=jitter)
    } else {
        0
    };
    let micros = (latency.as_micros() as i64 + off).max(0) as u64;
    now + Duration::from_micros(micros)
}

/// Sends each piece when it is due (never before the one ahead of it), sliced and paced.
async fn write_out(
    mut to: WriteHalf<'_>,
    mut rx: mpsc::Receiver<Piece>,
    toxics: &Toxics,
    mut rng: ChaCha8Rng,
) {
    let mut pace = Pace::new(toxics.bandwidth);
    // With a bandwidth, a twentieth of a second's worth at most per write: smooth pacing.
    let most = toxics
        .bandwidth
        .map_or(usize::MAX, |r| (r as usize / 20).max(1));
    while let Some(piece) = rx.recv().await {
        match piece {
            Piece::Data(at, bytes) => {
                tokio::time::sleep_until(at).await;
                for slice in slices(&bytes, toxics.slicer, most, &mut rng) {
                    if to.write_all(slice).await.is_err() {
                        return;
                    }
                    pace.sent(slice.len()).await;
                    if let Some(s) = toxics.slicer {
                        tokio::time::sleep(s.delay).await;
                    }
                }
            }
            Piece::Eof(at) => {
                tokio::time::sleep_until(at).await;
                if let Some(d) = toxics.slow_close {
                    tokio::time::sleep(d).await;
                }
                let _ = to.shutdown().await;
                return;
            }
        }
    }
    // The reader stopped at limit_data: what was allowed is written; the connection closes.
    let _ = to.flush().await;
}

/// `bytes` cut as the slicer says, none over `most` bytes.
fn slices<'a>(
    bytes: &'a [u8],
    slicer: Option<Slicer>,
    most: usize,
    rng: &mut ChaCha8Rng,
) -> Vec<&'a [u8]> {
    let Some(s) = slicer else {
        return bytes.chunks(most.max(1)).collect();
    };
    let mut out = vec![];
    let mut rest = bytes;
    while !rest.is_empty() {
        let spread = s.variation.min(s.average.saturating_sub(1));
        let size = if spread > 0 {
            rng.gen_range(s.average - spread..=s.average + spread)
        } else {
            s.average
        };
        let (head, tail) = rest.split_at(size.clamp(1, rest.len().min(most)));
        out.push(head);
        rest = tail;
    }
    out
}

/// Bandwidth: after each write, waits until the bytes sent so far fit the rate.
struct Pace {
    rate: Option<u64>,
    next: Instant,
}

impl Pace {
    fn new(rate: Option<u64>) -> Self {
        Pace {
            rate,
            next: Instant::now(),
        }
    }

    async fn sent(&mut self, n: usize) {
        let Some(rate) = self.rate.filter(|r| *r > 0) else {
            return;
        };
        let now = Instant::now();
        self.next = self.next.max(now) + Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::time::sleep_until(self.next).await;
    }
}

#[cfg(test)]
mod tests;

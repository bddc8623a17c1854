//! The toxics over loopback sockets: a real server (echo, or one that sends a fixed reply and
//! closes), the proxy in front of it, a client that times what it gets.

use super::*;
use std::time::Instant as StdInstant;

/// An upstream that echoes every byte until the client's end of stream, then closes.
async fn echo() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

/// An upstream that sends `n` bytes at once on each connection and closes.
async fn sender(n: usize) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(&vec![7u8; n]).await;
                let _ = s.shutdown().await;
                // Keep the socket until the peer closes (no RST for unread data).
                let mut sink = vec![0u8; 1024];
                while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// The proxy in front of `upstream`; its address.
async fn proxy(upstream: SocketAddr, toxics: Toxics) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(serve(l, upstream, toxics, 7));
    addr
}

/// Sends `msg`, closes the write side, reads to the end: (bytes, time, how it ended).
async fn exchange(to: SocketAddr, msg: &[u8]) -> (Vec<u8>, Duration, std::io::Result<()>) {
    let started = StdInstant::now();
    let mut s = TcpStream::connect(to).await.unwrap();
    s.write_all(msg).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = vec![];
    let ended = s.read_to_end(&mut got).await.map(drop);
    (got, started.elapsed(), ended)
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test]
async fn without_toxics_it_is_a_plain_proxy() {
    let p = proxy(echo().await, Toxics::none()).await;
    let (got, took, ended) = exchange(p, b"hello").await;
    assert_eq!(got, b"hello");
    assert!(ended.is_ok());
    assert!(took < Duration::from_millis(200), "{took:?}");
}

#[tokio::test]
async fn latency_holds_each_stream_it_covers() {
    let up = echo().await;
    for (stream, at_least) in [(Stream::Downstream, 150), (Stream::Both, 300)] {
        let t = Toxics {
            stream,
            latency: Some(Duration::from_millis(150)),
            ..Toxics::none()
        };
        let (got, took, _) = exchange(proxy(up, t).await, b"ping").await;
        assert_eq!(got, b"ping");
        assert!(ms(took) >= at_least, "{stream:?}: {took:?}");
        assert!(ms(took) < at_least + 150, "{stream:?}: {took:?}");
    }
}

#[tokio::test]
async fn jitter_spreads_the_latency_within_its_bound() {
    let t = Toxics {
        latency: Some(Duration::from_millis(100)),
        jitter: Duration::from_millis(50),
        ..Toxics::none()
    };
    let p = proxy(echo().await, t).await;
    let mut seen = vec![];
    for _ in 0..8 {
        seen.push(ms(exchange(p, b"x").await.1));
    }
    assert!(seen.iter().all(|t| (50..250).contains(t)), "{seen:?}");
    let (lo, hi) = (seen.iter().min().unwrap(), seen.iter().max().unwrap());
    assert!(hi - lo >= 10, "no spread: {seen:?}");
}

#[tokio::test]
async fn bandwidth_paces_the_bytes() {
    let t = Toxics {
        bandwidth: Some(100_000),
        ..Toxics::none()
    };
    let (got, took, _) = exchange(proxy(sender(50_000).await, t).await, b"").await;
    assert_eq!(got.len(), 50_000);
    // 50 kB at 100 kB/s: half a second (the first twentieth goes at once).
    assert!(ms(took) >= 450, "{took:?}");
    assert!(ms(took) < 1500, "{took:?}");
}

#[tokio::test]
async fn the_slicer_delays_between_slices() {
    let t = Toxics {
        slicer: Some(Slicer {
            average: 100,
            variation: 50,
            delay: Duration::from_millis(10),
        }),
        ..Toxics::none()
    };
    let (got, took, _) = exchange(proxy(sender(1000).await, t).await, b"").await;
    assert_eq!(got, vec![7u8; 1000]);
    // At least 1000 / 150 slices, 10 ms after each.
    assert!(ms(took) >= 60, "{took:?}");
}

#[tokio::test]
async fn limit_data_closes_after_that_many_bytes() {
    let t = Toxics {
        limit_data: Some(1234),
        ..Toxics::none()
    };
    let (got, _, _) = exchange(proxy(sender(10_000).await, t).await, b"").await;
    assert_eq!(got.len(), 1234);
}

#[tokio::test]
async fn timeout_is_silence_then_a_close() {
    let t = Toxics {
        timeout: Some(Duration::from_millis(300)),
        ..Toxics::none()
    };
    let (got, took, _) = exchange(proxy(echo().await, t).await, b"anyone?").await;
    assert!(got.is_empty(), "{got:?}");
    assert!((300..700).contains(&ms(took)), "{took:?}");
}

#[tokio::test]
async fn timeout_zero_holds_the_connection_open() {
    let t = Toxics {
        timeout: Some(Duration::ZERO),
        ..Toxics::none()
    };
    let p = proxy(echo().await, t).await;
    let held = tokio::time::timeout(Duration::from_millis(500), exchange(p, b"x")).await;
    assert!(held.is_err(), "answered: {held:?}");
}

#[tokio::test]
async fn reset_peer_resets_the_client_after_its_time() {
    let t = Toxics {
        reset_peer: Some(Duration::from_millis(200)),
        ..Toxics::none()
    };
    let p = proxy(echo().await, t).await;
    let started = StdInstant::now();
    let mut s = TcpStream::connect(p).await.unwrap();
    s.write_all(b"x").await.unwrap();
    let mut got = vec![];
    let ended = s.read_to_end(&mut got).await;
    let kind = ended.expect_err("a reset, not an end of stream").kind();
    assert_eq!(kind, std::io::ErrorKind::ConnectionReset);
    assert_eq!(got, b"x", "data flows until the reset");
    assert!(
        (200..600).contains(&ms(started.elapsed())),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn slow_close_delays_the_end_of_stream_only() {
    let t = Toxics {
        slow_close: Some(Duration::from_millis(300)),
        ..Toxics::none()
    };
    let started = StdInstant::now();
    let mut s = TcpStream::connect(proxy(sender(10).await, t).await)
        .await
        .unwrap();
    let mut first = [0u8; 10];
    s.read_exact(&mut first).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "data was held"
    );
    let mut rest = vec![];
    s.read_to_end(&mut rest).await.unwrap();
    assert!(ms(started.elapsed()) >= 300, "{:?}", started.elapsed());
}

#[tokio::test]
async fn upstream_toxics_leave_the_downstream_alone() {
    let t = Toxics {
        stream: Stream::Upstream,
        limit_data: Some(0),
        ..Toxics::none()
    };
    // Nothing the client sends goes up, and the connection closes; the server's greeting
    // may or may not have come down before: what came is whole.
    let (got, _, _) = exchange(proxy(sender(5).await, t).await, b"abc").await;
    assert!(got.is_empty() || got == vec![7u8; 5], "{got:?}");
}

#[test]
fn slices_cover_the_bytes_within_their_bounds() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let bytes = vec![1u8; 1000];
    let s = Slicer {
        average: 64,
        variation: 16,
        delay: Duration::ZERO,
    };
    let cut = slices(&bytes, Some(s), usize::MAX, &mut rng);
    assert_eq!(cut.iter().map(|c| c.len()).sum::<usize>(), 1000);
    assert!(cut[..cut.len() - 1]
        .iter()
        .all(|c| (48..=80).contains(&c.len())));
    let paced = slices(&bytes, None, 300, &mut rng);
    assert_eq!(
        paced.iter().map(|c| c.len()).collect::<Vec<_>>(),
        [300, 300, 300, 100]
    );
}

//! `datastore serve`: the log behind a line protocol on TCP, one thread per connection.
//!
//! Requests and answers are single lines: `append <payload>` → `ok <index>` (after the
//! append is as durable as the mode promises); `dump` → one line per record then `end`;
//! `stats` → a JSON object (records, mode, what recovery found at start). A log found corrupt
//! at start is served read-only: appends answer `err corrupt`, so nothing hides it.

use crate::{Durability, Error, Log, Recovery};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

struct State {
    log: Option<Log>,
    path: PathBuf,
    mode: Durability,
    recovery: Recovery,
    corrupt: Option<String>,
    recovery_ms: f64,
}

/// Opens (recovering) the log and serves it on `listen` until the process is killed.
pub fn serve(listen: &str, path: PathBuf, mode: Durability) -> Result<(), Error> {
    let started = Instant::now();
    let (log, recovery, corrupt) = match Log::open(&path, mode) {
        Ok((log, r)) => (Some(log), r, None),
        Err(e @ Error::Corrupt { .. }) => (None, Recovery::default(), Some(e.to_string())),
        Err(e) => return Err(e),
    };
    let recovery_ms = started.elapsed().as_secs_f64() * 1e3;
    println!(
        "{{\"event\":\"recovered\",\"records\":{},\"truncated_bytes\":{},\"corrupt\":{},\"ms\":{recovery_ms:.3}}}",
        recovery.records,
        recovery.truncated_bytes,
        corrupt.is_some()
    );
    let state = Arc::new(Mutex::new(State {
        log,
        path,
        mode,
        recovery,
        corrupt,
        recovery_ms,
    }));
    let listener = TcpListener::bind(listen).map_err(|source| Error::Io {
        path: listen.into(),
        source,
    })?;
    for stream in listener.incoming().flatten() {
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = handle(stream, &state);
        });
    }
    Ok(())
}

fn handle(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut out = stream.try_clone()?;
    for line in BufReader::new(stream).lines() {
        let line = line?;
        let mut s = state.lock().unwrap_or_else(|e| e.into_inner());
        let answer = match line.split_once(' ').unwrap_or((line.as_str(), "")) {
            ("append", payload) => match s.log.as_mut() {
                None => "err corrupt".to_string(),
                Some(log) => match log.append(payload.as_bytes()) {
                    Ok(i) => format!("ok {i}"),
                    Err(e @ Error::Fsync { .. }) if s.mode == Durability::DurableExit => {
                        // What reached the disk is unknown: stop, and let recovery at the
                        // next start say (PostgreSQL's remedy for "fsyncgate").
                        eprintln!("datastore: {e}: exiting, nothing acknowledged");
                        std::process::exit(70);
                    }
                    Err(e) => format!("err {e}"),
                },
            },
            ("dump", _) => match crate::read_all(&s.path) {
                Ok(all) => {
                    let mut text: String = all.iter().map(|p| String::from_utf8_lossy(p) + "\n").collect();
                    text.push_str("end");
                    text
                }
                Err(e) => format!("err {e}"),
            },
            ("stats", _) => format!(
                "{{\"records\":{},\"mode\":\"{}\",\"recovered_records\":{},\"truncated_bytes\":{},\"corrupt\":{},\"recovery_ms\":{:.3}}}",
                s.log.as_ref().map_or(0, Log::records),
                match s.mode {
                    Durability::Durable => "durable",
                    Durability::DurableRetry => "durable-retry",
                    Durability::DurableExit => "durable-exit",
                    Durability::Buffered => "buffered",
                },
                s.recovery.records,
                s.recovery.truncated_bytes,
                serde_json::to_string(&s.corrupt).unwrap_or_default(),
                s.recovery_ms
            ),
            _ => "err unknown command (append PAYLOAD | dump | stats)".to_string(),
        };
        drop(s);
        out.write_all(answer.as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

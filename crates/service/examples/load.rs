//! A bounded loopback load generator (a benchmark, not a test): signed PRISM submissions per
//! second and p50/p99 latency at 1, 16 and 64 connections, on SQLite and PostgreSQL, and a check
//! that every acknowledged submission is stored exactly once.
//!
//! ```text
//! cargo run --release -p assay-service --example load -- [--requests N] [--pg URL] [--only sqlite|postgres]
//! ```
//!
//! The server runs in this process on 127.0.0.1 with the real router, signature checks and
//! database; each connection is one keep-alive HTTP/1.1 client with its own hotkey, sending
//! requests signed before the clock starts (so the client's signing cost is not measured).

use std::time::{Duration, Instant};

use assay_service::api::{AppState, ServiceConfig, serve};
use assay_service::auth::Signer;
use assay_store::{Store, StoreOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Sends one request on a keep-alive connection; returns the status and body.
async fn roundtrip(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> std::io::Result<(u16, Vec<u8>)> {
    stream.write_all(request).await?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).to_ascii_lowercase();
    let status: u16 = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap_or(0))
        })
        .unwrap_or(0);
    while buf.len() < header_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Ok((status, buf[header_end..].to_vec()))
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn run_one(backend: &str, options: StoreOptions, connections: usize, requests: usize) {
    let store = Store::connect(&options).await.expect("database");
    let config = ServiceConfig {
        rate_per_minute: None,
        internal_token: "bench".into(),
        ..ServiceConfig::default()
    };
    let state = AppState::new(store.clone(), config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let server = tokio::spawn(serve(
        state,
        "127.0.0.1:0".parse().unwrap(),
        rx,
        Some(bound_tx),
    ));
    let addr = bound_rx.await.expect("server address");
    let per_conn = requests.div_ceil(connections);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut batches = Vec::new();
    for c in 0..connections {
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&(c as u64 + 1).to_le_bytes());
        seed[8..16].copy_from_slice(&(connections as u64).to_le_bytes());
        seed[16..24].copy_from_slice(&(now as u64).to_le_bytes());
        let signer = Signer::from_seed(seed);
        let mut batch = Vec::with_capacity(per_conn);
        for i in 0..per_conn {
            let body =
                format!(r#"{{"code":"print({c}, {i})","filename":"model.py","metadata":{{}}}}"#);
            let mut req = format!(
                "POST /v1/submissions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            );
            for (k, v) in signer.headers("prism", &format!("n{i}"), now, body.as_bytes()) {
                req.push_str(&format!("{k}: {v}\r\n"));
            }
            req.push_str("\r\n");
            req.push_str(&body);
            batch.push(req.into_bytes());
        }
        batches.push(batch);
    }
    let before = store.submission_count().await.unwrap();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for batch in batches {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.expect("connect");
            stream.set_nodelay(true).ok();
            let mut buf = Vec::new();
            let mut latencies = Vec::with_capacity(batch.len());
            let mut ok = 0usize;
            let mut errors = 0usize;
            for req in &batch {
                let t = Instant::now();
                match roundtrip(&mut stream, req, &mut buf).await {
                    Ok((200, _)) => ok += 1,
                    Ok((status, body)) => {
                        errors += 1;
                        if errors <= 3 {
                            eprintln!("status {status}: {}", String::from_utf8_lossy(&body));
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("connection error: {e}");
                        break;
                    }
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, ok, errors)
        }));
    }
    let mut latencies = Vec::new();
    let (mut ok, mut errors) = (0, 0);
    for t in tasks {
        let (l, o, e) = t.await.unwrap();
        latencies.extend(l);
        ok += o;
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let stored = store.submission_count().await.unwrap() - before;
    println!(
        "{}",
        serde_json::json!({
            "backend": backend, "connections": connections, "requests": ok + errors,
            "accepted": ok, "errors": errors, "seconds": elapsed,
            "submissions_per_s": ok as f64 / elapsed,
            "p50_ms": percentile(&latencies, 0.5), "p99_ms": percentile(&latencies, 0.99),
            "stored": stored, "lost_or_duplicated": stored - ok as i64,
        })
    );
    let _ = tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    store.close().await;
}

#[tokio::main]
async fn main() {
    let requests: usize = arg("--requests")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let only = arg("--only");
    let pg = arg("--pg").unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/test".into());
    let dir = tempfile::tempdir().expect("temp dir");
    for connections in [1usize, 16, 64] {
        if only.as_deref() != Some("postgres") {
            let path = dir.path().join(format!("bench-{connections}.sqlite3"));
            let mut options = StoreOptions::new(format!("sqlite:{}", path.display()));
            options.max_connections = 8;
            run_one("sqlite", options, connections, requests).await;
        }
        if only.as_deref() != Some("sqlite") {
            let mut options = StoreOptions::new(pg.clone());
            let schema = format!("bench_{}_{connections}", std::process::id());
            options.pg_schema = Some(schema.clone());
            options.max_connections = 32;
            run_one("postgres", options, connections, requests).await;
            let _ = Store::drop_pg_schema(&pg, &schema).await;
        }
    }
}

//! Test helpers: fresh SQLite/PostgreSQL databases, the sim binary, a tiny HTTP client.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assay_store::{Backend, Clock, Store, StoreOptions};

pub fn pg_url() -> String {
    std::env::var("ASSAY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

pub struct Db {
    pub store: Store,
    pub options: StoreOptions,
    pub clock: Clock,
    pub dir: tempfile::TempDir,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub async fn fresh(backend: Backend, clock: Clock) -> Db {
    let dir = tempfile::tempdir().unwrap();
    let options = match backend {
        Backend::Sqlite => StoreOptions::new(format!(
            "sqlite:{}",
            dir.path().join("assay.sqlite3").display()
        )),
        Backend::Postgres => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let mut o = StoreOptions::new(pg_url());
            o.pg_schema = Some(format!(
                "s_{}_{}_{}",
                std::process::id(),
                nanos,
                COUNTER.fetch_add(1, Ordering::SeqCst)
            ));
            o
        }
    };
    let store = Store::connect_with_clock(&options, clock.clone())
        .await
        .unwrap_or_else(|e| panic!("cannot open the test database {}: {e}", options.url));
    Db {
        store,
        options,
        clock,
        dir,
    }
}

impl Db {
    /// `--db` (and `--pg-schema`) arguments for the sim binary.
    pub fn args(&self) -> Vec<String> {
        let mut v = vec!["--db".to_string(), self.options.url.clone()];
        if let Some(s) = &self.options.pg_schema {
            v.push("--pg-schema".into());
            v.push(s.clone());
        }
        v
    }

    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(schema) = &self.options.pg_schema {
            Store::drop_pg_schema(&self.options.url, schema)
                .await
                .unwrap();
        }
    }
}

pub fn sim_exe() -> &'static str {
    env!("CARGO_BIN_EXE_assay-service-sim")
}

/// Waits until `f` is true, polling every 50 ms, up to `limit`.
pub async fn wait_for<F, Fut>(limit: Duration, mut f: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// One HTTP/1.1 request over a fresh connection: (status, body). Not every test binary that
/// includes this module sends requests over a socket.
#[allow(unused_imports)]
pub use assay_service::loopback::request as http;

//! The validator's store: one schema for submissions, jobs, results, nonces, rounds/epochs, chain
//! blocks and commitments, weights history and events, on **SQLite** (the embedded default: a file,
//! WAL, nothing to install) or **PostgreSQL** (`postgres://…`, for validators spread over machines).
//!
//! Machines coordinate only through this database. The job queue is plain SQL over `sqlx`:
//! - a job is claimed with one atomic statement: on PostgreSQL the candidate row is picked with
//!   `FOR UPDATE SKIP LOCKED`; on SQLite (one writer at a time) with the compare-and-swap PRISM uses
//!   (`UPDATE … WHERE id = (SELECT …) AND status = 'queued' RETURNING …`);
//! - a claim takes a lease (owner + expiry) that the worker extends by heartbeats; a sweeper puts
//!   jobs with expired leases back in the queue, or fails them after `max_attempts`;
//! - a result is written in the same transaction that marks the job done, keyed by
//!   `(job_id, attempt)`, and only if the writer still holds the lease of that attempt, so a job
//!   re-run after a crash never has two results.
//!
//! Times are Unix milliseconds passed in by the caller ([`Clock`]), so tests can move time.
#![warn(missing_docs)]

mod error;
mod jobs;
mod records;
mod schema;

pub use error::StoreError;
pub use jobs::{Claimed, FinishOutcome, JobSpec, JobState, JobSummary, SubmissionUpdate};
pub use records::{
    Block, Commitment, EpochRow, EventRow, NewSubmission, ResultRow, SubmissionRow, WeightsRow,
};

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions};

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (or `sqlite::memory:`).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// The backend a database URL names: `sqlite:` or `postgres://` / `postgresql://`.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::BadUrl {
                url: redact(url),
                reason: "expected sqlite:PATH or postgres://USER@HOST:PORT/DB".into(),
            })
        }
    }
}

/// Where "now" comes from: the system clock, or a settable one in tests.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Self { fixed: None }
    }

    /// A clock that reads `start_ms` until moved with [`Clock::advance`].
    pub fn manual(start_ms: i64) -> Self {
        Self {
            fixed: Some(Arc::new(AtomicI64::new(start_ms))),
        }
    }

    /// Moves a manual clock forward (no effect on the system clock).
    pub fn advance(&self, by: Duration) {
        if let Some(fixed) = &self.fixed {
            fixed.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
        }
    }

    /// Unix time in milliseconds.
    pub fn now_ms(&self) -> i64 {
        match &self.fixed {
            Some(fixed) => fixed.load(Ordering::SeqCst),
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        }
    }
}

/// Connection settings for [`Store::connect`].
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite:PATH` (created if missing) or `postgres://user@host:port/db`.
    pub url: String,
    /// On PostgreSQL, the schema to use (created if missing; `search_path` is set to it on every
    /// connection). Lets test runs share one database without colliding. `None`: `public`.
    pub pg_schema: Option<String>,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// How long an SQLite writer waits for the lock before failing.
    pub busy_timeout: Duration,
}

impl StoreOptions {
    /// Defaults for `url`: 8 connections, a 10 s SQLite busy timeout, the public schema.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            pg_schema: None,
            max_connections: 8,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The validator's database (cheap to clone: a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    clock: Clock,
}

/// Hides a password in a database URL before it goes into a message.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.find(':') {
                Some(colon) => {
                    format!(
                        "{}{}:***{}",
                        &url[..scheme + 3],
                        &userinfo[..colon],
                        &url[at..]
                    )
                }
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

impl Store {
    /// Opens (and creates, for SQLite) the database and brings its schema up to date.
    pub async fn connect(options: &StoreOptions) -> Result<Self, StoreError> {
        Self::connect_with_clock(options, Clock::system()).await
    }

    /// [`Store::connect`] with a given clock (tests move time with [`Clock::manual`]).
    pub async fn connect_with_clock(
        options: &StoreOptions,
        clock: Clock,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(&options.url)?;
        let url = match backend {
            Backend::Sqlite if !options.url.contains('?') && !options.url.contains(":memory:") => {
                format!("{}?mode=rwc", options.url)
            }
            _ => options.url.clone(),
        };
        let connect_err = |source: sqlx::Error| StoreError::Connect {
            url: redact(&options.url),
            source,
        };
        let connect_options = AnyConnectOptions::from_str(&url)
            .map_err(connect_err)?
            .disable_statement_logging();
        if let (Backend::Postgres, Some(schema)) = (backend, &options.pg_schema) {
            check_identifier(schema)?;
            // Create the schema once through a plain connection before the pool sets search_path.
            let mut conn = connect_options.connect().await.map_err(connect_err)?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await
                .map_err(connect_err)?;
        }
        let schema = options.pg_schema.clone();
        let busy_ms = options.busy_timeout.as_millis();
        let pool = AnyPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                let schema = schema.clone();
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            sqlx::query("PRAGMA journal_mode=WAL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA synchronous=FULL")
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query(&format!("PRAGMA busy_timeout={busy_ms}"))
                                .execute(&mut *conn)
                                .await?;
                            sqlx::query("PRAGMA foreign_keys=ON")
                                .execute(&mut *conn)
                                .await?;
                        }
                        Backend::Postgres => {
                            if let Some(schema) = schema {
                                sqlx::query(&format!("SET search_path TO {schema}"))
                                    .execute(&mut *conn)
                                    .await?;
                            }
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(connect_options)
            .await
            .map_err(connect_err)?;
        let store = Self {
            pool,
            backend,
            clock,
        };
        schema::migrate(&store).await?;
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The clock the store stamps rows with.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Unix milliseconds now, by [`Store::clock`].
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The connection pool, for callers that need their own SQL (tests, the fault harness).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Drops a PostgreSQL schema with everything in it (test clean-up).
    pub async fn drop_pg_schema(url: &str, schema: &str) -> Result<(), StoreError> {
        check_identifier(schema)?;
        sqlx::any::install_default_drivers();
        let connect_err = |source: sqlx::Error| StoreError::Connect {
            url: redact(url),
            source,
        };
        let mut conn = AnyConnectOptions::from_str(url)
            .map_err(connect_err)?
            .connect()
            .await
            .map_err(connect_err)?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut conn)
            .await
            .map_err(connect_err)?;
        Ok(())
    }
}

/// Schema names go into SQL text, so only `[a-z0-9_]` is allowed.
fn check_identifier(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadUrl {
            url: name.to_string(),
            reason: "a PostgreSQL schema name must be 1-63 characters of [a-z0-9_], not starting \
                     with a digit"
                .into(),
        })
    }
}

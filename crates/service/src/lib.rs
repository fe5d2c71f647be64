//! assay as an always-on validator: a signed HTTP intake with PRISM's public routes and
//! signature scheme, a job queue in the database ([`assay_store`]) drained by workers that run each
//! job in a child process, and schedules (SN37 sync blocks, Datacomp deadline blocks, PRISM
//! epochs) driven by blocks the operator's chain client posts or a block file.
//!
//! - [`api`]: the axum router ([`api::router`]) and [`api::serve`];
//! - [`auth`]: sr25519/SS58 signatures as PRISM checks them, the Bearer token;
//! - [`worker`]: the worker loop ([`worker::run_worker`]);
//! - [`handler`]: what runs in the child ([`handler::JobHandler`] per job kind);
//! - [`schedule`]: block-driven rounds and epochs;
//! - [`metrics`], [`openapi`]: `/metrics` and `/openapi.json`.
#![warn(missing_docs)]

pub mod api;
pub mod auth;
pub mod handler;
pub mod loopback;
pub mod metrics;
pub mod openapi;
pub mod schedule;
pub mod time;
pub mod worker;

use assay_errors::{Blame, Diagnose};
use assay_store::StoreError;

/// What can go wrong running the service or a worker.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The database.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A setting that cannot work.
    #[error("invalid service setting: {0}")]
    Config(String),
    /// Binding or serving the HTTP port.
    #[error("cannot serve HTTP on {addr}")]
    Serve {
        /// The address.
        addr: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Reading a file (the block file).
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Another I/O failure (a child process).
    #[error("I/O failure {what}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl Diagnose for ServiceError {
    fn blame(&self) -> Blame {
        match self {
            Self::Store(e) => e.blame(),
            Self::Config(_) | Self::Serve { .. } | Self::Read { .. } => Blame::Operator,
            Self::Io { source, .. } => assay_errors::io_blame(source),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::Store(e) => e.hint(),
            Self::Serve { .. } => Some("pick a free port with --addr, e.g. 127.0.0.1:8080".into()),
            _ => None,
        }
    }
}

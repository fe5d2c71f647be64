//! The store's errors.

use assay_errors::{Blame, Diagnose};

/// What went wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not one this store understands.
    #[error("database URL {url:?} is not usable: {reason}")]
    BadUrl {
        /// The URL, password hidden.
        url: String,
        /// Why.
        reason: String,
    },
    /// Opening the database failed.
    #[error("cannot connect to the database at {url}")]
    Connect {
        /// The URL, password hidden.
        url: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// Bringing the schema up to date failed.
    #[error("cannot apply schema migration {version} ({name})")]
    Migrate {
        /// The migration number.
        version: i64,
        /// What it does.
        name: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A query that reads failed.
    #[error("cannot read {what} from the database")]
    Read {
        /// What was being read.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement that writes failed.
    #[error("cannot write {what} to the database")]
    Write {
        /// What was being written.
        what: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A unique key already exists (a reused nonce, a duplicate job key).
    #[error("{what} already exists")]
    Duplicate {
        /// What was duplicated.
        what: &'static str,
    },
    /// A stored JSON column does not parse (a bug or a hand-edited database).
    #[error("stored {what} is not valid JSON")]
    Corrupt {
        /// Which column.
        what: &'static str,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
}

impl StoreError {
    pub(crate) fn read(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Read { what, source }
    }

    pub(crate) fn write(what: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| {
            if is_unique_violation(&source) {
                Self::Duplicate { what }
            } else {
                Self::Write { what, source }
            }
        }
    }
}

/// Whether a driver error is a unique-key violation (SQLite 2067/1555, PostgreSQL 23505).
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Database(db) => {
            matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation)
                || matches!(db.code().as_deref(), Some("23505" | "2067" | "1555"))
        }
        _ => false,
    }
}

fn sqlx_blame(error: &sqlx::Error) -> Blame {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => Blame::Transient,
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // SQLite busy/locked; PostgreSQL serialization, deadlock, admin shutdown, connection.
            Some("5" | "6" | "40001" | "40P01" | "57P01" | "57P02" | "57P03") => Blame::Transient,
            Some(code) if code.starts_with("08") => Blame::Transient,
            _ => Blame::Bug,
        },
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => Blame::Operator,
        _ => Blame::Bug,
    }
}

impl Diagnose for StoreError {
    fn blame(&self) -> Blame {
        match self {
            Self::BadUrl { .. } | Self::Migrate { .. } => Blame::Operator,
            Self::Connect { source, .. } => match sqlx_blame(source) {
                Blame::Bug => Blame::Operator,
                other => other,
            },
            Self::Read { source, .. } | Self::Write { source, .. } => sqlx_blame(source),
            Self::Duplicate { .. } => Blame::Miner,
            Self::Corrupt { .. } => Blame::Bug,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::BadUrl { .. } => Some(
                "pass --db sqlite:/path/to/assay.sqlite3 or --db postgres://user@host:5432/db"
                    .into(),
            ),
            Self::Connect { .. } => Some(
                "check that the database server is running and the URL, user and database exist \
                 (PostgreSQL: pg_ctlcluster <version> main start)"
                    .into(),
            ),
            _ => None,
        }
    }
}

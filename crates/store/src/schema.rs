//! The schema and its migrations: numbered, applied in order, each once, recorded in
//! `schema_migrations`. One SQL text serves both databases; `{ID}` becomes the dialect's
//! auto-increment key.

use crate::{Backend, Store, StoreError};

/// One schema change.
struct Migration {
    version: i64,
    name: &'static str,
    statements: &'static [&'static str],
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "initial schema",
    statements: &[
        // Submissions of every pipeline. `body` is what the miner sent (PRISM: the code; SN37:
        // the commitment; Datacomp: the data reference), `result` the evaluation's JSON.
        "CREATE TABLE IF NOT EXISTS submissions (
            id TEXT PRIMARY KEY,
            pipeline TEXT NOT NULL,
            hotkey TEXT NOT NULL,
            epoch_id BIGINT NOT NULL,
            status TEXT NOT NULL,
            code_hash TEXT NOT NULL,
            filename TEXT,
            body TEXT NOT NULL,
            metadata TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            final_score DOUBLE PRECISION,
            error TEXT,
            result TEXT
        )",
        "CREATE INDEX IF NOT EXISTS submissions_board ON submissions (pipeline, epoch_id, status)",
        "CREATE INDEX IF NOT EXISTS submissions_created ON submissions (created_at)",
        // The queue. status: queued | running | done | failed.
        "CREATE TABLE IF NOT EXISTS jobs (
            id {ID},
            kind TEXT NOT NULL,
            payload TEXT NOT NULL,
            priority BIGINT NOT NULL,
            status TEXT NOT NULL,
            attempts BIGINT NOT NULL,
            max_attempts BIGINT NOT NULL,
            ttl_ms BIGINT NOT NULL,
            lease_owner TEXT,
            lease_expires_at BIGINT,
            not_before BIGINT NOT NULL,
            submission_id TEXT,
            dedupe_key TEXT UNIQUE,
            error TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            started_at BIGINT,
            finished_at BIGINT
        )",
        "CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (status, priority, id)",
        "CREATE INDEX IF NOT EXISTS jobs_lease ON jobs (status, lease_expires_at)",
        // One result per job: keyed by (job, attempt), and unique per job besides.
        "CREATE TABLE IF NOT EXISTS results (
            job_id BIGINT NOT NULL,
            attempt BIGINT NOT NULL,
            worker TEXT NOT NULL,
            output TEXT NOT NULL,
            duration_ms BIGINT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (job_id, attempt)
        )",
        "CREATE UNIQUE INDEX IF NOT EXISTS results_one_per_job ON results (job_id)",
        "CREATE TABLE IF NOT EXISTS nonces (
            hotkey TEXT NOT NULL,
            nonce TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (hotkey, nonce)
        )",
        // Rounds (Datacomp), epochs (PRISM), sync blocks (SN37): one table, keyed by pipeline.
        "CREATE TABLE IF NOT EXISTS epochs (
            pipeline TEXT NOT NULL,
            id BIGINT NOT NULL,
            starts_at BIGINT NOT NULL,
            ends_at BIGINT NOT NULL,
            status TEXT NOT NULL,
            deadline_block BIGINT,
            seed TEXT,
            PRIMARY KEY (pipeline, id)
        )",
        "CREATE TABLE IF NOT EXISTS blocks (
            number BIGINT PRIMARY KEY,
            hash TEXT NOT NULL,
            received_at BIGINT NOT NULL
        )",
        "CREATE TABLE IF NOT EXISTS commitments (
            pipeline TEXT NOT NULL,
            hotkey TEXT NOT NULL,
            block BIGINT NOT NULL,
            data TEXT NOT NULL,
            received_at BIGINT NOT NULL,
            PRIMARY KEY (pipeline, hotkey, block)
        )",
        "CREATE TABLE IF NOT EXISTS weights (
            pipeline TEXT NOT NULL,
            epoch_id BIGINT NOT NULL,
            weights TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            PRIMARY KEY (pipeline, epoch_id)
        )",
        "CREATE TABLE IF NOT EXISTS events (
            id {ID},
            at BIGINT NOT NULL,
            kind TEXT NOT NULL,
            job_id BIGINT,
            submission_id TEXT,
            detail TEXT NOT NULL
        )",
        "CREATE INDEX IF NOT EXISTS events_job ON events (job_id)",
    ],
}];

/// Applies every migration not yet recorded, each in its own transaction.
pub(crate) async fn migrate(store: &Store) -> Result<(), StoreError> {
    let id = match store.backend {
        Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Backend::Postgres => "BIGSERIAL PRIMARY KEY",
    };
    let pool = &store.pool;
    let fail = |m: &Migration| {
        let (version, name) = (m.version, m.name);
        move |source| StoreError::Migrate {
            version,
            name,
            source,
        }
    };
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(pool)
    .await
    .map_err(fail(&MIGRATIONS[0]))?;
    for migration in MIGRATIONS {
        let mut tx = pool.begin().await.map_err(fail(migration))?;
        if store.backend == Backend::Postgres {
            // Two processes starting at once: the second waits here, then sees the row.
            sqlx::query("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(fail(migration))?;
        }
        let done: Option<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await
                .map_err(fail(migration))?;
        if done.is_some() {
            continue;
        }
        for statement in migration.statements {
            sqlx::query(&statement.replace("{ID}", id))
                .execute(&mut *tx)
                .await
                .map_err(fail(migration))?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(migration.version)
        .bind(migration.name)
        .bind(store.now_ms())
        .execute(&mut *tx)
        .await
        .map_err(fail(migration))?;
        tx.commit().await.map_err(fail(migration))?;
        tracing::info!(
            version = migration.version,
            name = migration.name,
            "schema migrated"
        );
    }
    Ok(())
}

//! The same store and queue tests on SQLite and on PostgreSQL.
//!
//! PostgreSQL: `ASSAY_TEST_PG` (default `postgres://postgres@127.0.0.1:5432/test`); each test
//! gets its own schema, dropped at the end, so concurrent runs don't collide.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use assay_store::{
    Backend, Clock, FinishOutcome, JobSpec, JobState, NewSubmission, Store, StoreError,
    StoreOptions, SubmissionUpdate,
};
use serde_json::json;

const LEASE: Duration = Duration::from_secs(30);

fn pg_url() -> String {
    std::env::var("ASSAY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A fresh database of the given backend; dropped (PG schema) by [`Db::cleanup`].
struct Db {
    store: Store,
    options: StoreOptions,
    clock: Clock,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

async fn fresh(backend: Backend) -> Db {
    let clock = Clock::manual(1_750_000_000_000);
    let (options, dir) = match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite:{}", dir.path().join("assay.sqlite3").display());
            (StoreOptions::new(url), Some(dir))
        }
        Backend::Postgres => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let schema = format!(
                "t_{}_{}_{}",
                std::process::id(),
                nanos,
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            let mut options = StoreOptions::new(pg_url());
            options.pg_schema = Some(schema);
            (options, None)
        }
    };
    let store = Store::connect_with_clock(&options, clock.clone())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot open the test database ({}); PostgreSQL must run on 127.0.0.1:5432 (see \
             crates/service/README.md): {e}",
                options.url
            )
        });
    Db {
        store,
        options,
        clock,
        _dir: dir,
    }
}

impl Db {
    async fn reopen(&self) -> Store {
        Store::connect_with_clock(&self.options, self.clock.clone())
            .await
            .unwrap()
    }

    async fn cleanup(self) {
        self.store.close().await;
        if let Some(schema) = &self.options.pg_schema {
            Store::drop_pg_schema(&self.options.url, schema)
                .await
                .unwrap();
        }
    }
}

/// Runs one test body against both backends.
macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let db = fresh(Backend::Sqlite).await;
                $body(&db).await;
                db.cleanup().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let db = fresh(Backend::Postgres).await;
                $body(&db).await;
                db.cleanup().await;
            }
        }
    };
}

fn sim(n: i64) -> JobSpec {
    JobSpec::new("sim", json!({ "n": n }))
}

async fn migrations_are_idempotent(db: &Db) {
    db.store.enqueue(&sim(1)).await.unwrap();
    let again = db.reopen().await;
    let versions: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(again.pool())
        .await
        .unwrap();
    assert_eq!(versions, vec![1]);
    // The data survived reopening.
    assert_eq!(again.job_counts().await.unwrap()[0], (JobState::Queued, 1));
    again.close().await;
}
both!(migrations, migrations_are_idempotent);

async fn claims_by_priority_then_age(db: &Db) {
    let s = &db.store;
    assert!(
        s.claim("w", LEASE).await.unwrap().is_none(),
        "empty queue claims nothing"
    );
    let low = s.enqueue(&sim(1)).await.unwrap().unwrap();
    let high = s
        .enqueue(&JobSpec {
            priority: 5,
            ..sim(2)
        })
        .await
        .unwrap()
        .unwrap();
    let low2 = s.enqueue(&sim(3)).await.unwrap().unwrap();
    let later = s
        .enqueue(&JobSpec {
            not_before_ms: Some(s.now_ms() + 60_000),
            priority: 9,
            ..sim(4)
        })
        .await
        .unwrap()
        .unwrap();
    let order: Vec<i64> = [
        s.claim("w", LEASE).await.unwrap().unwrap(),
        s.claim("w", LEASE).await.unwrap().unwrap(),
        s.claim("w", LEASE).await.unwrap().unwrap(),
    ]
    .iter()
    .map(|c| c.id)
    .collect();
    assert_eq!(order, vec![high, low, low2]);
    assert!(
        s.claim("w", LEASE).await.unwrap().is_none(),
        "a job not yet due is not claimed"
    );
    db.clock.advance(Duration::from_secs(61));
    let due = s.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(
        (due.id, due.attempt, due.payload.clone()),
        (later, 1, json!({"n": 4}))
    );
}
both!(priority, claims_by_priority_then_age);

async fn one_result_keyed_by_job_and_attempt(db: &Db) {
    let s = &db.store;
    let id = s.enqueue(&sim(1)).await.unwrap().unwrap();
    let job = s.claim("w1", LEASE).await.unwrap().unwrap();
    assert_eq!(
        s.complete(&job, &json!({"ok": 1}), 12, None).await.unwrap(),
        FinishOutcome::Recorded
    );
    // The same finish again (a retried RPC, a confused worker) writes nothing.
    assert_eq!(
        s.complete(&job, &json!({"ok": 2}), 12, None).await.unwrap(),
        FinishOutcome::LeaseLost
    );
    let results = s.results_for(id).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(
        (results[0].attempt, results[0].output.clone()),
        (1, json!({"ok": 1}))
    );
    assert_eq!(s.job(id).await.unwrap().unwrap().state, JobState::Done);
}
both!(one_result, one_result_keyed_by_job_and_attempt);

async fn expired_lease_requeues_and_old_owner_cannot_write(db: &Db) {
    let s = &db.store;
    let id = s.enqueue(&sim(1)).await.unwrap().unwrap();
    let first = s
        .claim("w1", Duration::from_secs(10))
        .await
        .unwrap()
        .unwrap();
    db.clock.advance(Duration::from_secs(5));
    assert!(s.heartbeat(&first, Duration::from_secs(10)).await.unwrap());
    assert_eq!(
        s.requeue_expired().await.unwrap(),
        (0, 0),
        "a live lease is not swept"
    );
    db.clock.advance(Duration::from_secs(11));
    assert_eq!(s.requeue_expired().await.unwrap(), (1, 0));
    assert!(
        !s.heartbeat(&first, LEASE).await.unwrap(),
        "a swept lease cannot be extended"
    );
    let second = s.claim("w2", LEASE).await.unwrap().unwrap();
    assert_eq!((second.id, second.attempt), (id, 2));
    // The first worker wakes up and tries to write: refused.
    assert_eq!(
        s.complete(&first, &json!("stale"), 1, None).await.unwrap(),
        FinishOutcome::LeaseLost
    );
    assert_eq!(
        s.fail(&first, "x", true, Duration::ZERO).await.unwrap(),
        FinishOutcome::LeaseLost
    );
    assert_eq!(
        s.complete(&second, &json!("fresh"), 1, None).await.unwrap(),
        FinishOutcome::Recorded
    );
    let results = s.results_for(id).await.unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!((results[0].attempt, results[0].worker.as_str()), (2, "w2"));
    let kinds: Vec<String> = s
        .job_events(id)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        ["enqueued", "claimed", "requeued", "claimed", "completed"]
    );
}
both!(
    lease_expiry,
    expired_lease_requeues_and_old_owner_cannot_write
);

async fn max_attempts_fail_the_job_and_its_submission(db: &Db) {
    let s = &db.store;
    let sub = s
        .insert_submission(&NewSubmission {
            id: "sub-1".into(),
            pipeline: "prism".into(),
            hotkey: "hk".into(),
            epoch_id: 7,
            code_hash: "ab".into(),
            filename: Some("model.py".into()),
            body: "print(1)".into(),
            metadata: json!({}),
            job: Some(sim(1)),
        })
        .await
        .unwrap();
    for attempt in 1..=3 {
        let job = s.claim("w", Duration::from_secs(1)).await.unwrap().unwrap();
        assert_eq!(job.attempt, attempt);
        assert_eq!(job.submission_id.as_deref(), Some("sub-1"));
        assert_eq!(
            s.submission(&sub.id).await.unwrap().unwrap().status,
            "running"
        );
        db.clock.advance(Duration::from_secs(2));
        let swept = s.requeue_expired().await.unwrap();
        assert_eq!(swept, if attempt < 3 { (1, 0) } else { (0, 1) });
    }
    assert!(s.claim("w", LEASE).await.unwrap().is_none());
    let job = s.recent_jobs(1).await.unwrap().remove(0);
    assert_eq!(job.state, JobState::Failed);
    assert!(job.error.unwrap().contains("3 of 3"));
    let sub = s.submission("sub-1").await.unwrap().unwrap();
    assert_eq!(sub.status, "failed");
    assert_eq!(s.result_count().await.unwrap(), 0);
}
both!(max_attempts, max_attempts_fail_the_job_and_its_submission);

async fn failures_retry_or_reject(db: &Db) {
    let s = &db.store;
    let id = s.enqueue(&sim(1)).await.unwrap().unwrap();
    let job = s.claim("w", LEASE).await.unwrap().unwrap();
    let outcome = s
        .fail(&job, "CUDA out of memory", true, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(outcome, FinishOutcome::Requeued);
    assert!(
        s.claim("w", LEASE).await.unwrap().is_none(),
        "the retry waits its delay"
    );
    db.clock.advance(Duration::from_secs(31));
    let job = s.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!((job.id, job.attempt), (id, 2));
    let outcome = s
        .fail(&job, "bundle imports socket", false, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        FinishOutcome::Failed,
        "a miner's fault is not retried"
    );
    let summary = s.job(id).await.unwrap().unwrap();
    assert_eq!(
        (summary.state, summary.error.as_deref()),
        (JobState::Failed, Some("bundle imports socket"))
    );

    // A submission whose job is rejected says why.
    s.insert_submission(&NewSubmission {
        id: "sub-r".into(),
        pipeline: "prism".into(),
        hotkey: "hk".into(),
        epoch_id: 1,
        code_hash: "cd".into(),
        filename: None,
        body: "x".into(),
        metadata: json!({"a": 1}),
        job: Some(sim(2)),
    })
    .await
    .unwrap();
    let job = s.claim("w", LEASE).await.unwrap().unwrap();
    s.fail(
        &job,
        "sandbox: import of os is forbidden",
        false,
        Duration::ZERO,
    )
    .await
    .unwrap();
    let sub = s.submission("sub-r").await.unwrap().unwrap();
    assert_eq!(sub.status, "rejected");
    assert_eq!(
        sub.error.as_deref(),
        Some("sandbox: import of os is forbidden")
    );
    assert_eq!(sub.metadata, json!({"a": 1}));
}
both!(failures, failures_retry_or_reject);

async fn release_gives_the_attempt_back(db: &Db) {
    let s = &db.store;
    s.enqueue(&sim(1)).await.unwrap();
    let job = s.claim("w", LEASE).await.unwrap().unwrap();
    assert_eq!(s.release(&job).await.unwrap(), FinishOutcome::Requeued);
    let again = s.claim("w2", LEASE).await.unwrap().unwrap();
    assert_eq!(again.attempt, 1, "a drained attempt is not charged");
}
both!(release, release_gives_the_attempt_back);

async fn dedupe_keys_and_nonces(db: &Db) {
    let s = &db.store;
    let spec = JobSpec {
        dedupe_key: Some("sn37:1:3138971".into()),
        ..sim(1)
    };
    assert!(s.enqueue(&spec).await.unwrap().is_some());
    assert!(
        s.enqueue(&spec).await.unwrap().is_none(),
        "one job per schedule key"
    );
    s.use_nonce("hk", "n-1").await.unwrap();
    s.use_nonce("other", "n-1").await.unwrap();
    match s.use_nonce("hk", "n-1").await {
        Err(StoreError::Duplicate { .. }) => {}
        other => panic!("a reused nonce must be a Duplicate, got {other:?}"),
    }
}
both!(dedupe, dedupe_keys_and_nonces);

async fn submission_and_job_commit_together_and_leaderboard(db: &Db) {
    let s = &db.store;
    let scores = [("a", 0.5), ("b", 0.9), ("a", 0.8), ("c", 0.1)];
    for (i, (hotkey, score)) in scores.iter().enumerate() {
        s.insert_submission(&NewSubmission {
            id: format!("s{i}"),
            pipeline: "prism".into(),
            hotkey: hotkey.to_string(),
            epoch_id: 3,
            code_hash: format!("h{i}"),
            filename: None,
            body: "b".into(),
            metadata: json!({}),
            job: Some(JobSpec::new("sim", json!({"score": score}))),
        })
        .await
        .unwrap();
    }
    // Duplicate id: neither the submission nor a second job is written.
    let dup = NewSubmission {
        id: "s0".into(),
        pipeline: "prism".into(),
        hotkey: "z".into(),
        epoch_id: 3,
        code_hash: "h".into(),
        filename: None,
        body: "b".into(),
        metadata: json!({}),
        job: Some(sim(9)),
    };
    assert!(matches!(
        s.insert_submission(&dup).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(s.job_counts().await.unwrap()[0], (JobState::Queued, 4));
    while let Some(job) = s.claim("w", LEASE).await.unwrap() {
        let score = job.payload["score"].as_f64().unwrap();
        let update = SubmissionUpdate {
            status: "completed".into(),
            final_score: Some(score),
            result: Some(json!({"final_score": score})),
            ..Default::default()
        };
        s.complete(&job, &json!({}), 1, Some(&update))
            .await
            .unwrap();
    }
    let board: Vec<(String, f64)> = s
        .leaderboard("prism", 3, 50)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.hotkey, r.final_score.unwrap()))
        .collect();
    assert_eq!(
        board,
        vec![("b".into(), 0.9), ("a".into(), 0.8), ("c".into(), 0.1)]
    );
    assert_eq!(s.leaderboard("prism", 3, 2).await.unwrap().len(), 2);
    assert!(s.leaderboard("prism", 4, 50).await.unwrap().is_empty());
}
both!(
    submissions,
    submission_and_job_commit_together_and_leaderboard
);

/// Many claimers at once (separate pools, as separate machines would be): every job is claimed
/// exactly once.
async fn concurrent_claimers_never_share_a_job(db: &Db) {
    const JOBS: i64 = 60;
    for n in 0..JOBS {
        db.store.enqueue(&sim(n)).await.unwrap();
    }
    let mut handles = Vec::new();
    for w in 0..4 {
        let store = db.reopen().await;
        handles.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                match store.claim(&format!("w{w}"), LEASE).await {
                    Ok(Some(job)) => {
                        store.complete(&job, &json!(w), 1, None).await.unwrap();
                        mine.push(job.id);
                    }
                    Ok(None) => break,
                    Err(e) => panic!("claim failed: {e:?}"),
                }
            }
            store.close().await;
            mine
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len() as i64, JOBS, "each job claimed once");
    assert_eq!(unique.len() as i64, JOBS);
    assert_eq!(db.store.result_count().await.unwrap(), JOBS);
    let attempts: Vec<i64> = sqlx::query_scalar("SELECT attempts FROM jobs")
        .fetch_all(db.store.pool())
        .await
        .unwrap();
    assert!(
        attempts.iter().all(|&a| a == 1),
        "no job ran twice: {attempts:?}"
    );
}
both!(concurrent, concurrent_claimers_never_share_a_job);

async fn chain_records_and_weights(db: &Db) {
    let s = &db.store;
    assert!(
        s.insert_block(&assay_store::Block {
            number: 10,
            hash: "0xaa".into()
        })
        .await
        .unwrap()
    );
    assert!(
        !s.insert_block(&assay_store::Block {
            number: 10,
            hash: "0xaa".into()
        })
        .await
        .unwrap()
    );
    s.insert_block(&assay_store::Block {
        number: 12,
        hash: "0xbb".into(),
    })
    .await
    .unwrap();
    assert_eq!(s.latest_block().await.unwrap().unwrap().number, 12);
    for (hotkey, block, rev) in [
        ("a", 5, "r1"),
        ("a", 9, "r2"),
        ("a", 20, "r3"),
        ("b", 7, "q"),
    ] {
        let c = assay_store::Commitment {
            pipeline: "sn37".into(),
            hotkey: hotkey.into(),
            block,
            data: json!({"revision": rev}),
        };
        s.insert_commitment(&c).await.unwrap();
    }
    let at: Vec<(String, String)> = s
        .commitments_at("sn37", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.hotkey, c.data["revision"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(
        at,
        vec![("a".into(), "r2".into()), ("b".into(), "q".into())]
    );
    s.put_weights("prism", 1, &json!({"a": 1.0})).await.unwrap();
    s.put_weights("prism", 2, &json!({"b": 1.0})).await.unwrap();
    s.put_weights("prism", 2, &json!({"b": 0.5, "a": 0.5}))
        .await
        .unwrap();
    let latest = s.latest_weights("prism").await.unwrap().unwrap();
    assert_eq!(
        (latest.epoch_id, latest.weights),
        (2, json!({"b": 0.5, "a": 0.5}))
    );
}
both!(chain, chain_records_and_weights);

/// The database connection drops in the middle of a claim (before commit): the claim is rolled
/// back, the job is still queued, and it completes exactly once.
async fn dropped_connection_mid_claim(db: &Db) {
    let s = &db.store;
    let id = s.enqueue(&sim(1)).await.unwrap().unwrap();
    let victim = db.reopen().await;
    let mut tx = victim.pool().begin().await.unwrap();
    let claimed: Option<i64> = sqlx::query_scalar(
        "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = 'victim'
         WHERE id = $1 AND status = 'queued' RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .unwrap();
    assert_eq!(claimed, Some(id));
    match s.backend() {
        Backend::Postgres => {
            let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
                .fetch_one(&mut *tx)
                .await
                .unwrap();
            let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
                .bind(pid)
                .fetch_one(s.pool())
                .await
                .unwrap();
            assert!(killed);
            assert!(
                tx.commit().await.is_err(),
                "the commit on a dead connection fails"
            );
        }
        Backend::Sqlite => drop(tx), // the connection goes away without COMMIT
    }
    victim.close().await;
    let job = s
        .claim("survivor", LEASE)
        .await
        .unwrap()
        .expect("the job is still claimable");
    assert_eq!(
        (job.id, job.attempt),
        (id, 1),
        "the dropped claim left no trace"
    );
    s.complete(&job, &json!("once"), 1, None).await.unwrap();
    assert_eq!(s.results_for(id).await.unwrap().len(), 1);
}
both!(dropped_connection, dropped_connection_mid_claim);

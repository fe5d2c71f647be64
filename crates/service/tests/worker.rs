//! Workers running jobs in child processes: outcomes, TTL, memory limit, scale over W workers,
//! and the fault tests (kill -9 of a worker mid-job, SIGTERM drain, two workers on PostgreSQL).

mod common;

use std::ffi::OsString;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assay_service::worker::{WorkerSettings, run_worker};
use assay_store::{Backend, Clock, JobSpec, JobState, NewSubmission, Store};
use common::{Db, fresh, sim_exe, wait_for};
use serde_json::json;

fn settings(id: &str) -> WorkerSettings {
    let mut s = WorkerSettings::new(vec![OsString::from(sim_exe()), "child".into()]);
    s.id = id.into();
    s.lease = Duration::from_secs(5);
    s.heartbeat = Duration::from_millis(500);
    s.poll = Duration::from_millis(50);
    s.retry_delay = Duration::ZERO;
    s.exit_when_idle = true;
    s
}

fn never() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    rx
}

fn job(payload: serde_json::Value, attempts: i64, ttl_ms: i64) -> JobSpec {
    JobSpec {
        max_attempts: attempts,
        ttl_ms,
        ..JobSpec::new("sim", payload)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_ttl_and_memory_limit() {
    let db = fresh(Backend::Sqlite, Clock::system()).await;
    let s = &db.store;
    s.insert_submission(&NewSubmission {
        id: "good".into(),
        pipeline: "prism".into(),
        hotkey: "hk".into(),
        epoch_id: 1,
        code_hash: "h".into(),
        filename: None,
        body: "b".into(),
        metadata: json!({}),
        job: Some(job(json!({ "score": 0.75 }), 3, 10_000)),
    })
    .await
    .unwrap();
    let flaky = s
        .enqueue(&job(json!({ "fail_attempts": 1 }), 3, 10_000))
        .await
        .unwrap()
        .unwrap();
    let miner = s
        .enqueue(&job(json!({ "fail": "miner" }), 3, 10_000))
        .await
        .unwrap()
        .unwrap();
    let slow = s
        .enqueue(&job(json!({ "ms": 5_000 }), 1, 300))
        .await
        .unwrap()
        .unwrap();
    let hungry = s
        .enqueue(&job(json!({ "alloc_mb": 1024 }), 1, 10_000))
        .await
        .unwrap()
        .unwrap();
    let unknown = s
        .enqueue(&JobSpec::new("no.such.kind", json!({})))
        .await
        .unwrap()
        .unwrap();
    let mut settings = settings("w");
    settings.memory_limit = Some(256 << 20);
    let report = run_worker(s, &settings, never()).await.unwrap();
    assert_eq!(report.completed, 2, "{report:?}");

    let sub = s.submission("good").await.unwrap().unwrap();
    assert_eq!(
        (sub.status.as_str(), sub.final_score),
        ("completed", Some(0.75))
    );
    let flaky_job = s.job(flaky).await.unwrap().unwrap();
    assert_eq!(
        (flaky_job.state, flaky_job.attempts),
        (JobState::Done, 2),
        "a transient failure is retried"
    );
    assert_eq!(s.results_for(flaky).await.unwrap()[0].attempt, 2);
    let miner_job = s.job(miner).await.unwrap().unwrap();
    assert_eq!(
        (miner_job.state, miner_job.attempts),
        (JobState::Failed, 1),
        "a miner's fault is not retried"
    );
    assert_eq!(miner_job.error.as_deref(), Some("simulated miner fault"));
    let slow_job = s.job(slow).await.unwrap().unwrap();
    assert_eq!(slow_job.state, JobState::Failed);
    assert!(
        slow_job
            .error
            .unwrap()
            .contains("wall-clock limit of 0.3 s"),
        "TTL kill"
    );
    let hungry_job = s.job(hungry).await.unwrap().unwrap();
    assert_eq!(hungry_job.state, JobState::Failed);
    assert!(
        hungry_job
            .error
            .unwrap()
            .contains("cannot allocate 1024 MiB"),
        "memory limit applies to the child"
    );
    let unknown_job = s.job(unknown).await.unwrap().unwrap();
    assert_eq!(
        unknown_job.state,
        JobState::Failed,
        "no handler: an operator error, not retried"
    );
    assert!(
        unknown_job
            .error
            .unwrap()
            .contains("no handler for job kind")
    );
    // The same hungry job without a limit completes: the limit, not the machine, stopped it.
    let again = s
        .enqueue(&job(json!({ "alloc_mb": 300 }), 1, 10_000))
        .await
        .unwrap()
        .unwrap();
    let report = run_worker(s, &self::settings("w2"), never()).await.unwrap();
    assert_eq!(report.completed, 1);
    assert_eq!(s.job(again).await.unwrap().unwrap().state, JobState::Done);
    db.cleanup().await;
}

/// K jobs over W workers take about K/W of one worker's time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_over_workers() {
    const K: usize = 16;
    const MS: u64 = 400;
    let mut times = Vec::new();
    for workers in [1usize, 2, 4, 8] {
        let db = fresh(Backend::Sqlite, Clock::system()).await;
        for _ in 0..K {
            db.store
                .enqueue(&job(json!({ "ms": MS }), 3, 60_000))
                .await
                .unwrap();
        }
        let start = Instant::now();
        let mut handles = Vec::new();
        for w in 0..workers {
            let store = db.store.clone();
            handles.push(tokio::spawn(async move {
                run_worker(&store, &settings(&format!("w{w}")), never())
                    .await
                    .unwrap()
            }));
        }
        let mut done = 0;
        for h in handles {
            done += h.await.unwrap().completed;
        }
        assert_eq!(done, K);
        assert_eq!(db.store.result_count().await.unwrap(), K as i64);
        times.push((workers, start.elapsed().as_secs_f64()));
        db.cleanup().await;
    }
    let t1 = times[0].1;
    for (w, t) in &times {
        eprintln!("scale: W={w} {t:.2} s, speed-up {:.2} (ideal {w})", t1 / t);
    }
    // Ideal speed-up is W; allow for process start-up on a loaded 2-core machine.
    assert!(t1 / times[1].1 > 1.6, "{times:?}");
    assert!(t1 / times[2].1 > 2.8, "{times:?}");
    assert!(t1 / times[3].1 > 4.0, "{times:?}");
}

fn spawn_worker(db: &Db, id: &str, extra: &[&str]) -> Child {
    Command::new(sim_exe())
        .arg("worker")
        .args(db.args())
        .args([
            "--id",
            id,
            "--lease-ms",
            "1500",
            "--heartbeat-ms",
            "300",
            "--poll-ms",
            "50",
            "--retry-ms",
            "0",
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn marker_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn sigterm(child: &Child) {
    // SAFETY: plain syscall on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
}

async fn kill9_worker_mid_job(backend: Backend) {
    let db = fresh(backend, Clock::system()).await;
    let marker = db.dir.path().join("marker");
    let id = db
        .store
        .enqueue(&job(
            json!({ "ms": 2500, "marker": marker.to_str().unwrap() }),
            3,
            60_000,
        ))
        .await
        .unwrap()
        .unwrap();
    let mut first = spawn_worker(&db, "doomed", &[]);
    assert!(
        wait_for(Duration::from_secs(20), || async {
            !marker_lines(&marker).is_empty()
        })
        .await,
        "job never started"
    );
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let mut second = spawn_worker(&db, "survivor", &[]);
    let store = db.store.clone();
    let done = wait_for(Duration::from_secs(30), || {
        let store = store.clone();
        async move { store.job(id).await.unwrap().unwrap().state == JobState::Done }
    })
    .await;
    sigterm(&second);
    second.wait().unwrap();
    assert!(done, "the job was not finished by the second worker");
    let results = db.store.results_for(id).await.unwrap();
    assert_eq!(results.len(), 1, "exactly one result");
    assert_eq!(
        (results[0].attempt, results[0].worker.as_str()),
        (2, "survivor")
    );
    // The killed worker's child died with it: attempt 1 never reached its end.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let lines = marker_lines(&marker);
    assert_eq!(
        lines,
        vec![
            format!("{id} 1 start"),
            format!("{id} 2 start"),
            format!("{id} 2 end")
        ]
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_worker_mid_job_sqlite() {
    kill9_worker_mid_job(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_worker_mid_job_postgres() {
    kill9_worker_mid_job(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_job_in_hand() {
    let db = fresh(Backend::Sqlite, Clock::system()).await;
    let marker = db.dir.path().join("marker");
    let m = marker.to_str().unwrap();
    let a = db
        .store
        .enqueue(&job(json!({ "ms": 1500, "marker": m }), 3, 60_000))
        .await
        .unwrap()
        .unwrap();
    let b = db
        .store
        .enqueue(&job(json!({ "ms": 10, "marker": m }), 3, 60_000))
        .await
        .unwrap()
        .unwrap();
    let worker = spawn_worker(&db, "drainer", &[]);
    assert!(
        wait_for(Duration::from_secs(20), || async {
            !marker_lines(&marker).is_empty()
        })
        .await
    );
    sigterm(&worker);
    let output = worker.wait_with_output().unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["completed"], 1, "the job in hand finished");
    assert_eq!(
        db.store.job(a).await.unwrap().unwrap().state,
        JobState::Done
    );
    assert_eq!(
        db.store.job(b).await.unwrap().unwrap().state,
        JobState::Queued,
        "nothing new claimed after SIGTERM"
    );

    // A drain deadline shorter than the job: the job is released, attempt not charged.
    let c = db
        .store
        .enqueue(&JobSpec {
            priority: 9,
            ..job(json!({ "ms": 5000, "marker": m }), 3, 60_000)
        })
        .await
        .unwrap()
        .unwrap();
    let before = marker_lines(&marker).len();
    let worker = spawn_worker(&db, "impatient", &["--drain-ms", "200"]);
    assert!(
        wait_for(Duration::from_secs(20), || async {
            marker_lines(&marker).len() > before
        })
        .await
    );
    sigterm(&worker);
    let output = worker.wait_with_output().unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["released"], 1);
    let job_c = db.store.job(c).await.unwrap().unwrap();
    assert_eq!((job_c.state, job_c.attempts), (JobState::Queued, 0));
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_postgres_never_run_one_job_twice() {
    const JOBS: usize = 24;
    let db = fresh(Backend::Postgres, Clock::system()).await;
    let marker = db.dir.path().join("marker");
    for _ in 0..JOBS {
        db.store
            .enqueue(&job(
                json!({ "ms": 50, "marker": marker.to_str().unwrap() }),
                3,
                60_000,
            ))
            .await
            .unwrap();
    }
    let workers = [
        spawn_worker(&db, "a", &["--exit-when-idle"]),
        spawn_worker(&db, "b", &["--exit-when-idle"]),
    ];
    let mut completed = 0;
    for w in workers {
        let out = w.wait_with_output().unwrap();
        assert!(out.status.success());
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        completed += report["completed"].as_u64().unwrap();
    }
    assert_eq!(completed, JOBS as u64);
    let starts: Vec<String> = marker_lines(&marker)
        .into_iter()
        .filter(|l| l.ends_with("start"))
        .collect();
    assert_eq!(starts.len(), JOBS, "each job started exactly once");
    let unique: std::collections::HashSet<_> = starts.iter().collect();
    assert_eq!(unique.len(), JOBS);
    assert!(
        starts.iter().all(|l| l.split(' ').nth(1) == Some("1")),
        "all first attempts"
    );
    assert_eq!(db.store.result_count().await.unwrap(), JOBS as i64);
    let by_worker: Vec<(String, i64)> =
        sqlx::query_as("SELECT worker, COUNT(*) FROM results GROUP BY worker ORDER BY worker")
            .fetch_all(db.store.pool())
            .await
            .unwrap();
    eprintln!("jobs per worker: {by_worker:?}");
    db.cleanup().await;
}

/// Keeps `Store` in scope for the helper module's users.
#[allow(dead_code)]
fn _uses(_: &Store) {}

//! The validator service with the pipelines' real job handlers, run by the `assay` binary:
//! submissions go in through the signed HTTP API, a worker runs each job in an `assay job-child`
//! process, and each result and each round's weights appear exactly once.
//!
//! - Datacomp: two example miners (the honest one and the one copying it) scored by really
//!   fine-tuning the embedded SmolLM2-135M-Instruct on a tiny budget (SQLite);
//! - SN37: the example models of TINY_DEMO evaluated at a sync block (SQLite and PostgreSQL);
//! - `assay serve --demo` in one command, polled until its leaderboards hold the examples;
//! - the pages in Debian's headless chromium against the real `assay serve` (see
//!   [`the_served_pages_work_in_a_real_browser`]).

#[path = "../../pages/tests/support/browser.rs"]
mod harness;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use assay_service::api::{AppState, ServiceConfig, serve};
use assay_service::auth::Signer;
use assay_service::schedule;
use assay_service::worker::{WorkerSettings, run_worker};
use assay_store::{Store, StoreOptions};
use harness::{Browser, Res, axe, shot, text};
use serde_json::{Value, json};

const TOKEN: &str = "test-internal-token";

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn pg_url() -> String {
    std::env::var("ASSAY_TEST_PG")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// One HTTP/1.1 request over a fresh connection: (status, body).
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    assay_service::loopback::request(addr, method, path, headers, body)
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
}

fn miner(name: &str) -> Signer {
    let mut seed = [7u8; 32];
    for (i, b) in name.bytes().enumerate() {
        seed[i % 32] ^= b;
    }
    Signer::from_seed(seed)
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A signed submission; returns the submission's id.
fn submit(addr: SocketAddr, signer: &Signer, scope: &str, path: &str, body: &Value) -> String {
    let body = body.to_string();
    let nonce = format!("n-{scope}-{}", signer.address());
    let headers = signer.headers(scope, &nonce, now_s(), body.as_bytes());
    let (status, text) = http(addr, "POST", path, &headers, body.as_bytes());
    assert_eq!(status, 200, "{path}: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    v["submission_id"]
        .as_str()
        .or_else(|| v["id"].as_str())
        .unwrap_or_else(|| panic!("no submission id in {text}"))
        .to_string()
}

fn post_block(addr: SocketAddr, number: i64) {
    let body = json!({ "number": number, "hash": format!("0x{number:064x}") }).to_string();
    let auth = [("authorization", format!("Bearer {TOKEN}"))];
    let (status, text) = http(
        addr,
        "POST",
        "/internal/v1/chain/blocks",
        &auth,
        body.as_bytes(),
    );
    assert_eq!(status, 200, "{text}");
}

/// The service in this process on a loopback port, over `store`.
struct Service {
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

async fn start_service(store: &Store, config: ServiceConfig) -> Service {
    let state = AppState::new(store.clone(), config);
    let (stop, rx) = tokio::sync::watch::channel(false);
    let (tx, bound) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        serve(state, "127.0.0.1:0".parse().unwrap(), rx, Some(tx))
            .await
            .unwrap();
    });
    Service {
        addr: bound.await.unwrap(),
        stop,
        task,
    }
}

impl Service {
    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

fn config() -> ServiceConfig {
    let mut c = ServiceConfig {
        internal_token: TOKEN.into(),
        rate_per_minute: None,
        ..ServiceConfig::default()
    };
    c.schedule.prism_weights = false;
    c
}

/// A worker running jobs in `assay job-child` until the queue is empty.
fn worker(env: Vec<(OsString, OsString)>) -> WorkerSettings {
    let mut s = WorkerSettings::new(vec![env!("CARGO_BIN_EXE_assay").into(), "job-child".into()]);
    s.id = "test-worker".into();
    s.poll = Duration::from_millis(50);
    s.retry_delay = Duration::ZERO;
    s.exit_when_idle = true;
    s.device = Some("cpu".into());
    s.env = env;
    s
}

fn never() -> tokio::sync::watch::Receiver<bool> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::mem::forget(tx);
    rx
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Every job finished with exactly one result (keyed by job and attempt).
async fn one_result_per_job(store: &Store) {
    for job in store.recent_jobs(1000).await.unwrap() {
        let results = store.results_for(job.id).await.unwrap();
        assert_eq!(
            results.len(),
            1,
            "job {} ({}) in state {:?}: {:?}",
            job.id,
            job.kind,
            job.state,
            job.error
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datacomp_miners_are_fine_tuned_and_weighted_once() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("assay.sqlite3").display());
    let store = Store::connect(&StoreOptions::new(&url)).await.unwrap();
    let mut config = config();
    config.schedule.datacomp_round_blocks = 10;
    config.schedule.datacomp.token_budget = 120;
    config.schedule.datacomp.eval_problems = 2;
    config.schedule.datacomp.max_new_tokens = 0;
    config.schedule.datacomp.generate = false;
    let service = start_service(&store, config.clone()).await;
    let addr = service.addr;

    let (honest, copier) = (miner("honest"), miner("copier"));
    let read =
        |name: &str| std::fs::read_to_string(examples().join("datacomp").join(name)).unwrap();
    let (honest_data, copier_data) = (read("honest.jsonl"), read("copier.jsonl"));
    let (honest_key, copier_key) = (honest.address().to_string(), copier.address().to_string());
    let ids = blocking(move || {
        post_block(addr, 1000);
        let a = submit(
            addr,
            &honest,
            "datacomp",
            "/v1/datacomp/submissions",
            // The miner's own `block` claim is ignored: priority is the validator's block.
            &json!({ "filename": "honest.jsonl", "data": honest_data, "metadata": { "block": 1 } }),
        );
        let b = submit(
            addr,
            &copier,
            "datacomp",
            "/v1/datacomp/submissions",
            &json!({ "filename": "copier.jsonl", "data": copier_data, "metadata": { "block": 1 } }),
        );
        post_block(addr, 1010);
        (a, b)
    })
    .await;

    let report = run_worker(&store, &worker(vec![]), never()).await.unwrap();
    assert_eq!((report.completed, report.failed), (2, 0), "{report:?}");
    let honest_row = store.submission(&ids.0).await.unwrap().unwrap();
    let copier_row = store.submission(&ids.1).await.unwrap().unwrap();
    assert_eq!(honest_row.status, "completed", "{:?}", honest_row.error);
    assert_eq!(honest_row.metadata["block"], 1000);
    let h = honest_row.result.clone().unwrap();
    let kept = |r: &Value| r["kept_rows"].as_f64().unwrap() / r["rows"].as_f64().unwrap();
    assert!(kept(&h) > 0.5, "the first submitter keeps its rows: {h}");
    assert!(
        h["curve"]["online_loss"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{h}"
    );
    assert!(h["tasks"]["reference_loss"]["score"].as_f64().unwrap() > 0.0);
    // The copier's rows were the honest miner's first: the copies are rejected.
    let c = copier_row.result.clone().unwrap();
    assert!(kept(&c) < kept(&h), "copier {c}\nhonest {h}");

    // The round's weights: queued once by the schedule (the server's own tick may get there
    // first; a second tick queues nothing more), computed once.
    schedule::tick(&store, &config).await.unwrap();
    assert_eq!(schedule::tick(&store, &config).await.unwrap(), 0);
    let weight_jobs = store
        .recent_jobs(1000)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == "weights")
        .count();
    assert_eq!(weight_jobs, 1);
    let report = run_worker(&store, &worker(vec![]), never()).await.unwrap();
    assert_eq!(report.completed, 1, "{report:?}");
    let weights = store.latest_weights("datacomp").await.unwrap().unwrap();
    assert_eq!(weights.epoch_id, 100);
    let w = weights.weights.as_object().unwrap();
    // A disqualified copier is off the leaderboard and so out of the weights.
    assert!(w.contains_key(&honest_key), "{w:?}");
    let h = w[&honest_key].as_f64().unwrap();
    let c = w.get(&copier_key).and_then(Value::as_f64).unwrap_or(0.0);
    assert!(
        h >= c,
        "the honest miner never weighs less than its copier: {w:?}"
    );
    one_result_per_job(&store).await;
    assert_eq!(store.result_count().await.unwrap(), 3);

    // The API reports the outcome.
    let id = ids.0.clone();
    let (status, text) =
        blocking(move || http(addr, "GET", &format!("/v1/submissions/{id}"), &[], b"")).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("completed"), "{text}");
    service.stop().await;
}

async fn sn37_round(url: &str, schema: Option<String>) {
    let mut options = StoreOptions::new(url);
    options.pg_schema = schema.clone();
    let store = Store::connect(&options).await.unwrap();
    let mut config = config();
    config.schedule.sn37_competitions = vec![100];
    config.schedule.sn37_genesis_block = 0;
    let service = start_service(&store, config).await;
    let addr = service.addr;
    let names = ["alice", "bob", "mallory"];
    let ids = blocking(move || {
        post_block(addr, 1000);
        let mut ids = Vec::new();
        for name in names {
            let folder = examples().join("sn37/models").join(name);
            let meta: Value =
                serde_json::from_str(&std::fs::read_to_string(folder.join("sn37.json")).unwrap())
                    .unwrap();
            ids.push(submit(
                addr,
                &miner(name),
                "sn37",
                "/v1/sn37/submissions",
                &json!({
                    "competition_id": 100, "repo": format!("examples/{name}"),
                    "revision": "main", "hash": meta["content_hash"],
                }),
            ));
        }
        // Sync block 1440: the models committed at 1000 are past TINY_DEMO's delay.
        post_block(addr, 1440);
        // The same block again queues nothing more.
        post_block(addr, 1440);
        ids
    })
    .await;
    let state = tempfile::tempdir().unwrap();
    let env = vec![
        (
            "ASSAY_SN37_MODELS".into(),
            examples().join("sn37/models").into(),
        ),
        (
            "ASSAY_SN37_DATA".into(),
            examples().join("sn37/data").into(),
        ),
        ("ASSAY_SN37_STATE".into(), state.path().into()),
    ];
    let report = run_worker(&store, &worker(env), never()).await.unwrap();
    assert_eq!((report.completed, report.failed), (1, 0), "{report:?}");
    let mut rows = Vec::new();
    for id in &ids {
        rows.push(store.submission(id).await.unwrap().unwrap());
    }
    assert_eq!(rows[0].status, "completed", "{:?}", rows[0].error);
    assert_eq!(rows[1].status, "completed", "{:?}", rows[1].error);
    assert!(rows[0].final_score.is_some() && rows[1].final_score.is_some());
    assert_eq!(rows[2].status, "rejected");
    assert!(
        rows[2].error.as_deref().unwrap_or("").contains("norm"),
        "{:?}",
        rows[2].error
    );
    let weights = store.latest_weights("sn37").await.unwrap().unwrap();
    assert_eq!(weights.epoch_id, 1440);
    let total: f64 = weights
        .weights
        .as_object()
        .unwrap()
        .values()
        .filter_map(Value::as_f64)
        .sum();
    assert!((total - 1.0).abs() < 1e-9, "{:?}", weights.weights);
    assert!(
        weights.weights[miner("mallory").address()]
            .as_f64()
            .unwrap_or(0.0)
            == 0.0,
        "the rejected model earns nothing: {:?}",
        weights.weights
    );
    one_result_per_job(&store).await;
    assert_eq!(store.result_count().await.unwrap(), 1);
    service.stop().await;
    store.close().await;
    if let Some(schema) = schema {
        Store::drop_pg_schema(url, &schema).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sn37_models_are_evaluated_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    sn37_round(
        &format!("sqlite:{}", dir.path().join("assay.sqlite3").display()),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sn37_models_are_evaluated_once_on_postgres() {
    let schema = format!("cli_sn37_{}", std::process::id());
    sn37_round(&pg_url(), Some(schema)).await;
}

/// `assay serve …`, ended (by its own id) when dropped; its stdout and stderr go to a log.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `assay serve ARGS --addr 127.0.0.1:0` in `cwd` and waits for its listening line.
fn start_server(cwd: &Path, args: &[&str]) -> Server {
    let log = cwd.join("serve.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .arg("serve")
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let addr = loop {
        let Some(Ok(line)) = lines.next() else {
            let _ = child.kill();
            panic!(
                "assay serve stopped before listening: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        };
        if let Some(rest) = line.strip_prefix("assay serve: listening on http://") {
            break rest.trim_end_matches('/').parse().unwrap();
        }
    };
    // Keep reading stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, addr, log }
}

/// Polls the board of `pipeline` until `n` rows are scored (or rejected), at most `limit`.
fn wait_for_board(server: &Server, pipeline: &str, n: usize, limit: Duration) -> String {
    let start = Instant::now();
    loop {
        let (status, html) = http(server.addr, "GET", &format!("/board/{pipeline}"), &[], b"");
        if status == 200 {
            let rows = html.matches("<tr").count().saturating_sub(1);
            let busy = html.contains("st-queued") || html.contains("st-running");
            if rows >= n && !busy {
                return html;
            }
        }
        if start.elapsed() > limit {
            panic!(
                "the {pipeline} board did not fill with {n} finished rows within {limit:?}; \
                 last page:\n{html}\nserver log:\n{}",
                std::fs::read_to_string(&server.log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn serve_demo_scores_the_shipped_examples_in_one_command() {
    let dir = tempfile::tempdir().unwrap();
    let examples = examples();
    let server = start_server(
        dir.path(),
        &[
            "--demo",
            "--examples",
            examples.to_str().unwrap(),
            "--datacomp-token-budget",
            "100",
            "--datacomp-eval-problems",
            "2",
        ],
    );
    let html = wait_for_board(&server, "datacomp", 5, Duration::from_secs(600));
    assert!(
        html.contains("rejected"),
        "the cheater is rejected:\n{html}"
    );
    let html = wait_for_board(&server, "sn37", 6, Duration::from_secs(300));
    assert!(html.contains("rejected"), "mallory is rejected:\n{html}");
    assert!(
        dir.path().join("assay-demo/assay.sqlite3").is_file(),
        "the demo's database lives under its data folder"
    );
}

/// The page's bytes over the wire (what the browser downloaded for the document, the
/// stylesheet and the script), from the Resource Timing API.
async fn page_weight(c: &fantoccini::Client) -> Res<u64> {
    let v = c
        .execute(
            "const nav = performance.getEntriesByType('navigation')[0];
             const rest = performance.getEntriesByType('resource');
             return [nav].concat(rest).reduce((n, e) => n + (e.encodedBodySize || 0), 0);",
            vec![],
        )
        .await?;
    Ok(v.as_f64().map_or(u64::MAX, |n| n as u64))
}

/// #21 end to end: the real `assay serve` (SQLite, one worker), example submissions signed and
/// posted over HTTP, the board filled by the worker, then Debian's chromium through chromedriver:
/// board → submission page (status, scores, the loss chart's SVG), axe-core on every page, page
/// weight under 100 KB, screenshots in `$CARGO_TARGET_TMPDIR/serve-browser/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_pages_work_in_a_real_browser() -> Res {
    let Some((chromium, driver)) = harness::find()? else {
        return Ok(());
    };
    let out =
        harness::output_folder(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve-browser"))?;
    let dir = tempfile::tempdir()?;
    let db = format!("sqlite:{}", dir.path().join("assay.sqlite3").display());
    let server = start_server(
        dir.path(),
        &[
            "--db",
            db.as_str(),
            "--token",
            TOKEN,
            "--workers",
            "1",
            "--no-rate-limit",
            "--datacomp-round-blocks",
            "10",
            "--datacomp-token-budget",
            "100",
            "--datacomp-eval-problems",
            "2",
            "--datacomp-max-new-tokens",
            "0",
        ],
    );
    let addr = server.addr;
    let names = ["honest", "cheater", "copier"];
    let keys: Vec<String> = names
        .iter()
        .map(|n| miner(n).address().to_string())
        .collect();
    let server = blocking(move || {
        post_block(addr, 1000);
        for name in names {
            let data =
                std::fs::read_to_string(examples().join(format!("datacomp/{name}.jsonl"))).unwrap();
            submit(
                addr,
                &miner(name),
                "datacomp",
                "/v1/datacomp/submissions",
                &json!({ "filename": format!("{name}.jsonl"), "data": data }),
            );
        }
        post_block(addr, 1010);
        wait_for_board(&server, "datacomp", 3, Duration::from_secs(600));
        server
    })
    .await;
    let base = format!("http://{}", server.addr);

    let browser = Browser::launch(&chromium, &driver, &out).await?;
    let result = browse(&browser.client, &base, &out, &keys).await;
    drop(server);
    browser.finish(result).await
}

async fn browse(c: &fantoccini::Client, base: &str, out: &Path, keys: &[String]) -> Res {
    use fantoccini::Locator;
    let weights = |name: &'static str| async move {
        let w = page_weight(c).await?;
        if w >= 100_000 {
            return Err::<(), Box<dyn std::error::Error + Send + Sync>>(
                format!("{name}: {w} bytes over the wire, more than 100 KB").into(),
            );
        }
        Ok(())
    };
    c.goto(&format!("{base}/")).await?;
    assert_eq!(text(c, "h1").await?, "Leaderboards");
    axe(c, out, "index").await?;
    weights("index").await?;
    shot(c, out, "index").await?;

    c.goto(&format!("{base}/board/datacomp")).await?;
    let board = text(c, "table.board").await?;
    for key in keys {
        let short: String = key.chars().take(8).collect();
        assert!(board.contains(&short), "{short} not on the board:\n{board}");
    }
    assert!(
        board.contains("rejected"),
        "the cheater is rejected:\n{board}"
    );
    axe(c, out, "board").await?;
    weights("board").await?;
    shot(c, out, "board").await?;

    // Board → the honest miner's submission (its row's link).
    c.find(Locator::XPath(&format!(
        "//table[contains(@class, 'board')]//tr[.//*[@title='{}']]//a",
        keys[0]
    )))
    .await?
    .click()
    .await?;
    let start = Instant::now();
    while !text(c, "h1").await?.starts_with("Submission") {
        if start.elapsed() > Duration::from_secs(10) {
            return Err("the submission page never opened".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(text(c, "#status").await?, "scored");
    let body = text(c, "main").await?;
    assert!(body.contains("reference loss"), "{body}");
    let svg = c.find(Locator::Css("figure.chart svg[role='img']")).await?;
    let label = svg.attr("aria-label").await?.unwrap_or_default();
    assert!(label.contains("online loss"), "{label}");
    axe(c, out, "submission").await?;
    weights("submission").await?;
    shot(c, out, "submission").await?;

    c.goto(&format!("{base}/operator")).await?;
    axe(c, out, "operator").await?;
    weights("operator").await?;
    shot(c, out, "operator").await?;
    Ok(())
}

//! The HTTP API in process: PRISM's signature vector and status codes, the internal token,
//! the routes' JSON, schedules driven by posted blocks; on SQLite and PostgreSQL.

mod common;

use std::sync::Arc;
use std::time::Duration;

use assay_service::api::{AppState, ROUTES, ServiceConfig, router};
use assay_service::auth::{Signer, canonical_message};
use assay_store::{Backend, Clock, SubmissionUpdate};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{Db, fresh};
use serde_json::{Value, json};
use tower::ServiceExt as _;

// PRISM's known-good vector (PlatformNetwork/prism tests/test_real_signature_auth.py @24aca0b).
const ALICE: &str = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const NONCE: &str = "test-nonce-13";
const TIMESTAMP: &str = "1750000000";
const BODY: &str = r#"{"code":"print(1)","filename":"model.py"}"#;
const SIG: &str = "bc88793cb7dbcd7148c5592da54cee8d3b40956c36a6f367281d4341bedfce144b43bf85a664fa108faf9d1ec97da027f144e67e47aea3a955de4e0d2069dc89";
const FORGED: &str = "1e6c877697c7adc1a2fe951a462883bfd76658f01a875748dade03c83d45be68890a819de4f7500e2eac539019c6832f3031a7823cecb367b09e9842f2701885";
const T0_MS: i64 = 1_750_000_000_000;
const TOKEN: &str = "internal-secret";

fn config() -> ServiceConfig {
    ServiceConfig {
        internal_token: TOKEN.into(),
        ..ServiceConfig::default()
    }
}

async fn setup(backend: Backend, config: ServiceConfig) -> (Db, Arc<AppState>) {
    let db = fresh(backend, Clock::manual(T0_MS)).await;
    let state = AppState::new(db.store.clone(), config);
    (db, state)
}

async fn send(state: &Arc<AppState>, request: Request<Body>) -> (StatusCode, Value) {
    let response = router(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
    (status, value)
}

fn signed(path: &str, hotkey: &str, sig: &str, nonce: &str, ts: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .header("x-hotkey", hotkey)
        .header("x-signature", sig)
        .header("x-nonce", nonce)
        .header("x-timestamp", ts)
        .body(Body::from(body.to_string()))
        .unwrap()
}

fn vector() -> Request<Body> {
    signed("/v1/submissions", ALICE, SIG, NONCE, TIMESTAMP, BODY)
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn internal_get(path: &str, token: Option<&str>) -> Request<Body> {
    let mut r = Request::get(path);
    if let Some(t) = token {
        r = r.header("authorization", format!("Bearer {t}"));
    }
    r.body(Body::empty()).unwrap()
}

fn own_request(
    signer: &Signer,
    scope: &str,
    path: &str,
    nonce: &str,
    ts: i64,
    body: &Value,
) -> Request<Body> {
    let body = body.to_string();
    let mut r = Request::post(path).header("content-type", "application/json");
    for (k, v) in signer.headers(scope, nonce, ts, body.as_bytes()) {
        r = r.header(k, v);
    }
    r.body(Body::from(body)).unwrap()
}

macro_rules! both {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $body(Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $body(Backend::Postgres).await;
            }
        }
    };
}

async fn prism_vector_is_accepted_once(backend: Backend) {
    let (db, state) = setup(backend, config()).await;
    let (status, body) = send(&state, vector()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["hotkey"], ALICE);
    assert_eq!(body["status"], "pending");
    assert_eq!(body["epoch_id"], 1_750_000_000 / 21_600);
    assert_eq!(
        body["code_hash"],
        "d287bb7f9d15abdc5b6e98536263815744b6ef21c8f3c839fc434ca70d8efe99"
    );
    let id = body["id"].as_str().unwrap().to_string();
    // The same request again: the nonce is spent.
    let (status, body) = send(&state, vector()).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::CONFLICT, Some("nonce already used"))
    );
    let (status, body) = send(&state, get(&format!("/v1/submissions/{id}"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["status"].as_str(), body["final_score"].clone()),
        (Some("pending"), Value::Null)
    );
    let jobs = db.store.recent_jobs(10).await.unwrap();
    assert_eq!(
        jobs.len(),
        1,
        "one evaluation job queued with the submission"
    );
    assert_eq!(
        (jobs[0].kind.as_str(), jobs[0].submission_id.as_deref()),
        ("prism.bundle", Some(id.as_str()))
    );
    assert_eq!(
        db.store.submission_body(&id).await.unwrap().as_deref(),
        Some("print(1)")
    );
    db.cleanup().await;
}
both!(prism_vector, prism_vector_is_accepted_once);

async fn prism_status_codes(backend: Backend) {
    let (db, state) = setup(backend, config()).await;
    let codes = [
        (
            "tampered body",
            signed(
                "/v1/submissions",
                ALICE,
                SIG,
                NONCE,
                TIMESTAMP,
                r#"{"code":"print(2)","filename":"model.py"}"#,
            ),
            401,
            "invalid signature",
        ),
        (
            "forged",
            signed("/v1/submissions", ALICE, FORGED, NONCE, TIMESTAMP, BODY),
            401,
            "invalid signature",
        ),
        (
            "not hex",
            signed(
                "/v1/submissions",
                ALICE,
                "not-a-real-signature",
                NONCE,
                TIMESTAMP,
                BODY,
            ),
            401,
            "invalid signature",
        ),
        (
            "tampered nonce",
            signed(
                "/v1/submissions",
                ALICE,
                SIG,
                "tampered-nonce",
                TIMESTAMP,
                BODY,
            ),
            401,
            "invalid signature",
        ),
        (
            "bad timestamp",
            signed("/v1/submissions", ALICE, SIG, NONCE, "soon", BODY),
            400,
            "invalid timestamp",
        ),
        (
            "stale",
            signed("/v1/submissions", ALICE, SIG, NONCE, "1749999699", BODY),
            401,
            "stale signature",
        ),
        (
            "future",
            signed("/v1/submissions", ALICE, SIG, NONCE, "1750000301", BODY),
            401,
            "stale signature",
        ),
    ];
    for (what, request, code, detail) in codes {
        let (status, body) = send(&state, request).await;
        assert_eq!(
            (status.as_u16(), body["detail"].as_str()),
            (code, Some(detail)),
            "{what}: {body}"
        );
    }
    // A missing header is FastAPI's 422.
    let r = Request::post("/v1/submissions")
        .header("x-hotkey", ALICE)
        .body(Body::from(BODY))
        .unwrap();
    let (status, body) = send(&state, r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["header", "x-signature"]));
    let long = "n".repeat(129);
    let (status, _) = send(
        &state,
        signed("/v1/submissions", ALICE, SIG, &long, TIMESTAMP, BODY),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    // None of the refused requests spent the nonce: the real one still goes through.
    let (status, _) = send(&state, vector()).await;
    assert_eq!(status, StatusCode::OK);
    // The clock 300 s after the timestamp is still inside the window; 301 s is not.
    db.clock.advance(Duration::from_secs(300));
    let (status, body) = send(&state, vector()).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::CONFLICT, Some("nonce already used"))
    );
    db.clock.advance(Duration::from_secs(1));
    let (status, body) = send(&state, vector()).await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("stale signature"))
    );
    assert_eq!(db.store.submission_count().await.unwrap(), 1);
    db.cleanup().await;
}
both!(status_codes, prism_status_codes);

#[tokio::test]
async fn a_refused_body_spends_the_nonce_as_in_prism() {
    let (db, state) = setup(Backend::Sqlite, config()).await;
    let signer = Signer::from_seed([5; 32]);
    let ts = T0_MS / 1000;
    let bad = json!({ "filename": "model.py" });
    let (status, _) = send(
        &state,
        own_request(&signer, "prism", "/v1/submissions", "k", ts, &bad),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let good = json!({ "code": "print(1)" });
    let (status, body) = send(
        &state,
        own_request(&signer, "prism", "/v1/submissions", "k", ts, &good),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::CONFLICT, Some("nonce already used"))
    );
    // A reused nonce is 409 before the body is looked at.
    let (status, _) = send(
        &state,
        own_request(&signer, "prism", "/v1/submissions", "k", ts, &bad),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(db.store.submission_count().await.unwrap(), 0);
    db.cleanup().await;
}

#[tokio::test]
async fn validator_hotkey_is_refused_before_the_signature() {
    let mut c = config();
    c.validator_hotkeys.insert(ALICE.into());
    let (db, state) = setup(Backend::Sqlite, c).await;
    for sig in [SIG, FORGED] {
        let (status, body) = send(
            &state,
            signed("/v1/submissions", ALICE, sig, NONCE, TIMESTAMP, BODY),
        )
        .await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (
                StatusCode::FORBIDDEN,
                Some("validator hotkey is not allowed to submit")
            )
        );
    }
    db.cleanup().await;
}

#[tokio::test]
async fn disabled_route_limits_and_body_checks() {
    let mut c = config();
    c.public_submissions_enabled = false;
    let (db, state) = setup(Backend::Sqlite, c).await;
    assert_eq!(send(&state, vector()).await.0, StatusCode::NOT_FOUND);
    db.cleanup().await;

    let mut c = config();
    c.rate_per_minute = Some(1);
    c.rate_burst = 2;
    c.max_code_bytes = 64;
    c.max_body_bytes = 4096;
    let (db, state) = setup(Backend::Sqlite, c).await;
    let signer = Signer::from_seed([1; 32]);
    let ts = T0_MS / 1000;
    let big = json!({ "code": "x".repeat(65), "filename": "model.py" });
    let (status, body) = send(
        &state,
        own_request(&signer, "prism", "/v1/submissions", "a", ts, &big),
    )
    .await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("submission too large"))
    );
    let bad_name = json!({ "code": "print(1)", "filename": "../etc/passwd" });
    let (status, _) = send(
        &state,
        own_request(&signer, "prism", "/v1/submissions", "b", ts, &bad_name),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = send(
        &state,
        own_request(
            &signer,
            "prism",
            "/v1/submissions",
            "c",
            ts,
            &json!({"code": "print(1)"}),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the burst of 2 is spent: {body}"
    );
    // Another hotkey has its own bucket; an oversized body is refused before any work.
    let other = Signer::from_seed([2; 32]);
    let huge = json!({ "code": "x".repeat(5000) });
    let (status, _) = send(
        &state,
        own_request(&other, "prism", "/v1/submissions", "d", ts, &huge),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let ok = json!({ "code": "print(1)" });
    let (status, body) = send(
        &state,
        own_request(&other, "prism", "/v1/submissions", "e", ts, &ok),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A signature over the <Bytes>-wrapped message (polkadot.js) is accepted, as by bittensor.
    let third = Signer::from_seed([3; 32]);
    let body = json!({ "code": "print(3)" }).to_string();
    let message = canonical_message(
        "prism",
        third.address(),
        "w",
        &ts.to_string(),
        body.as_bytes(),
    );
    let mut wrapped = b"<Bytes>".to_vec();
    wrapped.extend_from_slice(&message);
    wrapped.extend_from_slice(b"</Bytes>");
    let request = signed(
        "/v1/submissions",
        third.address(),
        &format!("0x{}", third.sign_hex(&wrapped)),
        "w",
        &ts.to_string(),
        &body,
    );
    assert_eq!(send(&state, request).await.0, StatusCode::OK);
    // A PRISM signature is not valid on the SN37 route (scopes differ).
    let sn37 = json!({ "competition_id": 4, "repo": "org/model", "revision": "abc", "hash": "h" });
    let mut request = own_request(&third, "prism", "/v1/sn37/submissions", "x", ts, &sn37);
    *request.uri_mut() = "/v1/sn37/submissions".parse().unwrap();
    assert_eq!(send(&state, request).await.0, StatusCode::UNAUTHORIZED);
    db.cleanup().await;
}

async fn internal_routes_and_results(backend: Backend) {
    let (db, state) = setup(backend, config()).await;
    for token in [None, Some("wrong"), Some("internal-secre")] {
        let (status, body) = send(&state, internal_get("/internal/v1/get_weights", token)).await;
        assert_eq!(
            (status, body["detail"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("invalid internal token"))
        );
    }
    let (status, body) = send(
        &state,
        internal_get("/internal/v1/get_weights", Some(TOKEN)),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["challenge_slug"].as_str(), body["weights"].clone()),
        (Some("prism"), json!({}))
    );

    // Two miners submit; their jobs complete with scores and a curve.
    let ts = T0_MS / 1000;
    let mut ids = Vec::new();
    for (seed, score) in [(10u8, 0.4), (11u8, 0.7)] {
        let signer = Signer::from_seed([seed; 32]);
        let (status, body) = send(
            &state,
            own_request(
                &signer,
                "prism",
                "/v1/submissions",
                "n",
                ts,
                &json!({"code": "print(1)"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        ids.push((
            body["id"].as_str().unwrap().to_string(),
            signer.address().to_string(),
            score,
        ));
    }
    while let Some(job) = db.store.claim("w", Duration::from_secs(60)).await.unwrap() {
        let (_, _, score) = ids
            .iter()
            .find(|(id, ..)| Some(id) == job.submission_id.as_ref())
            .unwrap();
        let loss: Vec<f64> = (0..1200).map(|i| 5.0 - i as f64 / 1000.0).collect();
        let bytes: Vec<f64> = (0..1200).map(|i| (i * 100) as f64).collect();
        let update = SubmissionUpdate {
            status: "completed".into(),
            final_score: Some(*score),
            error: None,
            result: Some(json!({
                "final_score": score, "anti_cheat_multiplier": 1.0, "prequential_bpb": 1.25,
                "curve": { "online_loss": loss, "covered_bytes_cumulative": bytes, "step0_loss": 5.0 },
                "compute": { "device": "cpu", "model_params": 1000 },
            })),
        };
        db.store
            .complete(&job, &json!({}), 5, Some(&update))
            .await
            .unwrap();
    }
    let (status, body) = send(&state, get("/v1/leaderboard")).await;
    assert_eq!(status, StatusCode::OK);
    let entries = body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        (
            entries[0]["rank"].as_i64(),
            entries[0]["hotkey"].as_str(),
            entries[0]["score"].as_f64()
        ),
        (Some(1), Some(ids[1].1.as_str()), Some(0.7))
    );
    let (_, body) = send(&state, get(&format!("/v1/submissions/{}", ids[0].0))).await;
    assert_eq!(
        (
            body["status"].as_str(),
            body["final_score"].as_f64(),
            body["anti_cheat_multiplier"].as_f64()
        ),
        (Some("completed"), Some(0.4), Some(1.0))
    );
    assert_eq!(body["q_arch"], Value::Null);
    let (status, curve) = send(&state, get(&format!("/v1/submissions/{}/curve", ids[0].0))).await;
    assert_eq!(status, StatusCode::OK);
    let points = curve["loss_curve"]["online_loss"].as_array().unwrap();
    assert_eq!(
        (points.len(), curve["loss_curve"]["downsampled"].as_bool()),
        (500, Some(true))
    );
    assert_eq!(
        (points[0].as_f64(), points[499].as_f64()),
        (Some(5.0), Some(5.0 - 1199.0 / 1000.0)),
        "first and last kept"
    );
    assert_eq!(curve["bpb"]["prequential_bpb"].as_f64(), Some(1.25));
    assert_eq!(curve["compute"]["device"], "cpu");
    assert_eq!(
        send(&state, get("/v1/submissions/nope")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        send(&state, get("/v1/submissions/nope/curve")).await.0,
        StatusCode::NOT_FOUND
    );
    let (_, history) = send(&state, get("/v1/submissions/history?days=7")).await;
    assert_eq!(history, json!([{ "date": "2025-06-15", "count": 2 }]));
    assert_eq!(
        send(&state, get("/v1/submissions/history?days=0")).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, epochs) = send(&state, get("/v1/epochs")).await;
    assert_eq!(epochs[0]["id"].as_i64(), Some(1_750_000_000 / 21_600));
    assert_eq!(epochs[0]["status"], "open");
    let (_, current) = send(&state, get("/v1/epochs/current")).await;
    assert_eq!(
        current,
        json!({ "epoch_id": 1_750_000_000 / 21_600, "epoch_seconds": 21_600 })
    );
    let (_, jobs) = send(&state, get("/v1/health/eval-jobs")).await;
    assert_eq!(jobs.as_array().unwrap().len(), 2);
    assert_eq!(jobs[0]["status"], "completed");

    // The epoch ends: the schedule queues its weights job once; running it records weights that
    // get_weights returns.
    db.clock.advance(Duration::from_secs(21_600));
    assert_eq!(
        assay_service::schedule::tick(&db.store, &state.config)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        assay_service::schedule::tick(&db.store, &state.config)
            .await
            .unwrap(),
        0
    );
    let job = db
        .store
        .claim("w", Duration::from_secs(60))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.kind, "weights");
    let input = assay_service::handler::JobInput {
        job_id: job.id,
        kind: job.kind.clone(),
        payload: job.payload.clone(),
        attempt: 1,
        device: None,
        submission_body: None,
        submission_filename: None,
        peers: Vec::new(),
    };
    let out = assay_service::handler::Handlers::builtin()
        .run(&input)
        .unwrap();
    let w = out.weights.unwrap();
    db.store
        .put_weights(
            &w.pipeline,
            w.epoch_id,
            &serde_json::to_value(&w.weights).unwrap(),
        )
        .await
        .unwrap();
    let (_, body) = send(
        &state,
        internal_get("/internal/v1/get_weights", Some(TOKEN)),
    )
    .await;
    let weights = body["weights"].as_object().unwrap();
    assert!((weights[&ids[1].1].as_f64().unwrap() - 0.7 / 1.1).abs() < 1e-12);
    assert!((weights[&ids[0].1].as_f64().unwrap() - 0.4 / 1.1).abs() < 1e-12);
    db.cleanup().await;
}
both!(internal_and_results, internal_routes_and_results);

async fn chain_schedules(backend: Backend) {
    let mut c = config();
    c.schedule.sn37_competitions = vec![4, 3];
    c.schedule.datacomp_round_blocks = 100;
    let (db, state) = setup(backend, c).await;
    let post = |path: &str, body: Value, token: &str| {
        Request::post(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body.to_string()))
            .unwrap()
    };
    let genesis = 3_138_611i64;
    assert_eq!(
        send(
            &state,
            post(
                "/internal/v1/chain/blocks",
                json!({"number": genesis, "hash": "0xg"}),
                "bad"
            )
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    let (status, body) = send(
        &state,
        post(
            "/internal/v1/chain/blocks",
            json!({"number": genesis, "hash": "0xg0"}),
            TOKEN,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["jobs_enqueued"], 0,
        "no model committed yet: no SN37 evaluation is queued"
    );
    // A miner commits a model to competition 4; the next sync block evaluates it.
    let ts = T0_MS / 1000;
    let miner = Signer::from_seed([20; 32]);
    let commit =
        json!({ "competition_id": 4, "repo": "org/model", "revision": "0123abcd", "hash": "sha" });
    let (status, body) = send(
        &state,
        own_request(&miner, "sn37", "/v1/sn37/submissions", "c1", ts, &commit),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let blocks =
        json!([{"number": genesis + 1, "hash": "0x1"}, {"number": genesis + 360, "hash": "0xs1"}]);
    let (_, body) = send(&state, post("/internal/v1/chain/blocks", blocks, TOKEN)).await;
    assert_eq!(
        body["jobs_enqueued"], 2,
        "only the new sync block adds jobs"
    );
    let mut jobs = db.store.recent_jobs(10).await.unwrap();
    jobs.retain(|j| j.kind == "sn37.eval");
    assert_eq!(
        jobs.len(),
        2,
        "the sync block after the commitment queues the round's evaluations"
    );
    let newest = &jobs[..2];
    let comp4 = newest
        .iter()
        .find(|j| j.payload["competition_id"] == 4)
        .unwrap();
    assert_eq!(comp4.payload["sync_block"], genesis + 360);
    assert_eq!(comp4.payload["block_hash"], "0xs1");
    assert_eq!(
        comp4.payload["models"][0]["commitment"]["repo"],
        "org/model"
    );

    // Datacomp: a submission joins the open round; the deadline block closes it.
    let data = json!({ "filename": "cot.jsonl", "data": "{\"prompt\": \"1+1\", \"completion\": \"2\"}\n" });
    let (status, body) = send(
        &state,
        own_request(
            &miner,
            "datacomp",
            "/v1/datacomp/submissions",
            "d1",
            ts,
            &data,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let round = (genesis + 360) / 100;
    assert_eq!(body["epoch_id"], round);
    let deadline = (round + 1) * 100;
    let (_, body) = send(
        &state,
        post(
            "/internal/v1/chain/blocks",
            json!({"number": deadline - 1, "hash": "0xd"}),
            TOKEN,
        ),
    )
    .await;
    assert_eq!(body["jobs_enqueued"], 0);
    let (_, body) = send(
        &state,
        post(
            "/internal/v1/chain/blocks",
            json!({"number": deadline, "hash": "0xe"}),
            TOKEN,
        ),
    )
    .await;
    assert!(body["jobs_enqueued"].as_i64().unwrap() >= 1, "{body}");
    let dc: Vec<_> = db
        .store
        .recent_jobs(20)
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.kind == "datacomp.miner")
        .collect();
    assert_eq!(dc.len(), 1);
    // Posting the deadline block again queues nothing more.
    let (_, body) = send(
        &state,
        post(
            "/internal/v1/chain/blocks",
            json!({"number": deadline, "hash": "0xe"}),
            TOKEN,
        ),
    )
    .await;
    assert_eq!(body["new"], 0);
    let (status, queue) = send(&state, internal_get("/internal/v1/queue", Some(TOKEN))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        queue["jobs_by_state"]["queued"].as_i64().unwrap() >= 3,
        "{queue}"
    );
    db.cleanup().await;
}
both!(schedules, chain_schedules);

#[tokio::test]
async fn openapi_metrics_request_ids() {
    let (db, state) = setup(Backend::Sqlite, config()).await;
    let (status, doc) = send(&state, get("/openapi.json")).await;
    assert_eq!(status, StatusCode::OK);
    for (method, path, _) in ROUTES {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing from OpenAPI"
        );
    }
    assert_eq!(
        doc["paths"].as_object().unwrap().len(),
        ROUTES
            .iter()
            .map(|r| r.1)
            .collect::<std::collections::HashSet<_>>()
            .len()
    );
    let (_, health) = send(&state, get("/health")).await;
    assert_eq!(health["status"], "ok");
    send(&state, vector()).await;
    let response = router(state.clone())
        .oneshot(
            Request::get("/metrics")
                .header("x-request-id", "abc-123")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "abc-123");
    let text = String::from_utf8(
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(text.contains("assay_jobs{state=\"queued\"} 1"), "{text}");
    assert!(text.contains("assay_queue_depth 1"));
    assert!(
        text.contains("assay_http_requests_total{route=\"/v1/submissions\",status=\"200\"} 1"),
        "{text}"
    );
    let response = router(state.clone()).oneshot(get("/health")).await.unwrap();
    assert!(
        !response.headers()["x-request-id"].is_empty(),
        "a request id is made when none is sent"
    );
    db.cleanup().await;
}

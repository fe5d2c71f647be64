//! The HTTP API: PRISM's public routes (same paths, status codes and JSON fields), the internal
//! routes behind a Bearer token, signed SN37 and Datacomp submissions, the operator's chain
//! routes, `/metrics` and `/openapi.json`.
//!
//! PRISM's order of checks on a signed submission is kept exactly: route disabled (404), missing
//! or over-long headers (422), timestamp not an integer (400), stale beyond ±TTL (401), validator
//! hotkey (403), bad signature (401), reused nonce (409); then the body (422, 413). Our additions
//! come after the signature: the per-hotkey rate limit (429).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use assay_store::{
    Block, Commitment, EpochRow, JobSpec, NewSubmission, Store, StoreError, SubmissionRow,
};

use crate::ServiceError;
use crate::auth::{bearer_matches, canonical_message, verify_hotkey_signature};
use crate::metrics::Metrics;
use crate::schedule::{self, ScheduleSettings};
use crate::time::{date, iso8601};

/// PRISM's cap on points in `/curve`.
pub const CURVE_MAX_POINTS: usize = 500;

/// The service's settings (PRISM's defaults where PRISM has one).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceConfig {
    /// Challenge slug in `/health` and `get_weights`.
    pub slug: String,
    /// Challenge version in `/health` and `/version`.
    pub version: String,
    /// Hotkeys of validators: refused as miners (403).
    pub validator_hotkeys: HashSet<String>,
    /// The internal routes' Bearer token; empty: internal routes refuse everything.
    pub internal_token: String,
    /// Accepted clock skew of `X-Timestamp`, seconds (PRISM: 300).
    pub signature_ttl_seconds: i64,
    /// PRISM epoch length, seconds (PRISM: 21,600).
    pub epoch_seconds: i64,
    /// Largest accepted `code`, bytes (PRISM: 7,500,000).
    pub max_code_bytes: usize,
    /// Largest accepted request body, bytes (base64 of the largest code plus the JSON around it).
    pub max_body_bytes: usize,
    /// Whether `POST /v1/submissions` is open (PRISM's `public_submissions_enabled`).
    pub public_submissions_enabled: bool,
    /// Signed submissions a hotkey may make per minute (sustained); `None`: unlimited.
    pub rate_per_minute: Option<u32>,
    /// Burst above the sustained rate.
    pub rate_burst: u32,
    /// The job a PRISM submission becomes (kind, TTL, attempts).
    pub prism_job: JobSpec,
    /// Block-driven schedules.
    pub schedule: ScheduleSettings,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        let mut prism_job = JobSpec::new("prism.bundle", Value::Null);
        // PRISM's outer cap: max(1800, budget 1200 + grace 120 + 60) plus 300 s orchestration grace.
        prism_job.ttl_ms = 2_100_000;
        Self {
            slug: "prism".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            validator_hotkeys: HashSet::new(),
            internal_token: String::new(),
            signature_ttl_seconds: 300,
            epoch_seconds: 21_600,
            max_code_bytes: 7_500_000,
            max_body_bytes: 10_500_000,
            public_submissions_enabled: true,
            rate_per_minute: Some(60),
            rate_burst: 20,
            prism_job,
            schedule: ScheduleSettings::default(),
        }
    }
}

/// Shared state of the HTTP handlers.
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Settings.
    pub config: ServiceConfig,
    /// Request counters.
    pub metrics: Metrics,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
    /// The last PRISM epoch known to exist in the database (saves a write per submission).
    ensured_epoch: AtomicI64,
}

impl AppState {
    /// State over a store and settings.
    pub fn new(store: Store, config: ServiceConfig) -> Arc<Self> {
        Arc::new(Self {
            store,
            config,
            metrics: Metrics::default(),
            buckets: Mutex::new(HashMap::new()),
            ensured_epoch: AtomicI64::new(i64::MIN),
        })
    }

    fn now_s(&self) -> i64 {
        self.store.now_ms().div_euclid(1000)
    }

    fn epoch_id(&self) -> i64 {
        self.now_s().div_euclid(self.config.epoch_seconds.max(1))
    }

    /// Takes one token from `hotkey`'s bucket; `false` when it is empty.
    fn allow(&self, hotkey: &str) -> bool {
        let Some(per_minute) = self.config.rate_per_minute else {
            return true;
        };
        let capacity = f64::from(self.config.rate_burst.max(1));
        let rate = f64::from(per_minute) / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, (_, at)| now.duration_since(*at) < Duration::from_secs(600));
        }
        let (tokens, at) = buckets.entry(hotkey.to_string()).or_insert((capacity, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// An error response: `{"detail": ...}` as FastAPI writes it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    detail: Value,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            status,
            detail: Value::String(detail.into()),
        }
    }

    fn missing_header(name: &str) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{ "type": "missing", "loc": ["header", name], "msg": "Field required" }]),
        }
    }

    fn invalid(loc: &[&str], msg: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            detail: json!([{ "type": "value_error", "loc": loc, "msg": msg.into() }]),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %assay_errors::chain(&e), "database error");
        let status = match assay_errors::Diagnose::blame(&e) {
            assay_errors::Blame::Transient => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        Self::new(status, "database unavailable; try again")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "detail": self.detail }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Every route: (method, path, summary). The OpenAPI document and its test are built from it.
pub const ROUTES: &[(&str, &str, &str)] = &[
    ("get", "/health", "Liveness: status, slug, version"),
    (
        "get",
        "/version",
        "API, challenge and SDK versions, capabilities",
    ),
    ("post", "/v1/submissions", "Submit a PRISM bundle (signed)"),
    ("get", "/v1/submissions/history", "Submissions per day"),
    (
        "get",
        "/v1/submissions/{submission_id}",
        "A submission's status and score",
    ),
    (
        "get",
        "/v1/submissions/{submission_id}/curve",
        "A submission's loss curve (<= 500 points)",
    ),
    (
        "get",
        "/v1/leaderboard",
        "Best submission per hotkey of an epoch",
    ),
    ("get", "/v1/epochs/current", "The current epoch"),
    ("get", "/v1/epochs", "Recent epochs"),
    ("get", "/v1/health/eval-jobs", "Recent evaluation jobs"),
    (
        "post",
        "/v1/sn37/submissions",
        "Submit an SN37 model commitment (signed)",
    ),
    (
        "post",
        "/v1/datacomp/submissions",
        "Submit Datacomp training data (signed)",
    ),
    (
        "get",
        "/internal/v1/get_weights",
        "Current weights (Bearer)",
    ),
    (
        "post",
        "/internal/v1/chain/blocks",
        "Report chain blocks (Bearer)",
    ),
    (
        "post",
        "/internal/v1/chain/commitments",
        "Report miners' chain commitments (Bearer)",
    ),
    (
        "get",
        "/internal/v1/queue",
        "Queue depth, jobs by state, recent jobs (Bearer)",
    ),
    ("get", "/metrics", "Prometheus metrics"),
    ("get", "/openapi.json", "This API's OpenAPI 3.1 document"),
];

/// The router over `state`, with body limits, request ids and request logging.
pub fn router(state: Arc<AppState>) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/version", get(version))
        .route("/v1/submissions", post(submit_prism))
        .route("/v1/submissions/history", get(history))
        .route("/v1/submissions/{submission_id}", get(submission_status))
        .route(
            "/v1/submissions/{submission_id}/curve",
            get(submission_curve),
        )
        .route("/v1/leaderboard", get(leaderboard))
        .route("/v1/epochs/current", get(current_epoch))
        .route("/v1/epochs", get(list_epochs))
        .route("/v1/health/eval-jobs", get(eval_jobs))
        .route("/v1/sn37/submissions", post(submit_sn37))
        .route("/v1/datacomp/submissions", post(submit_datacomp))
        .route("/internal/v1/get_weights", get(get_weights))
        .route("/internal/v1/chain/blocks", post(post_blocks))
        .route("/internal/v1/chain/commitments", post(post_commitments))
        .route("/internal/v1/queue", get(queue))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

static REQUEST_SEQ: AtomicU64 = AtomicU64::new(0);

/// Request ids (`X-Request-Id`, kept if the client sent a sane one), one JSON-able log line per
/// request, and the request counters.
async fn observe(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id_header = HeaderName::from_static("x-request-id");
    let id = request
        .headers()
        .get(&id_header)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| {
            format!(
                "{:x}-{:x}",
                std::process::id(),
                REQUEST_SEQ.fetch_add(1, Ordering::Relaxed)
            )
        });
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(id_header.clone(), value);
    }
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    state.metrics.record(&route, status, elapsed);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(id_header, value);
    }
    tracing::info!(
        request_id = %id, method = %method, route = %route, status,
        ms = elapsed.as_secs_f64() * 1000.0, "request"
    );
    response
}

async fn health(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({ "status": "ok", "slug": state.config.slug, "version": state.config.version }))
}

async fn version(State(state): State<Arc<AppState>>) -> Json<Value> {
    let backend = match state.store.backend() {
        assay_store::Backend::Sqlite => "sqlite",
        assay_store::Backend::Postgres => "postgres",
    };
    Json(json!({
        "api_version": "1",
        "challenge_version": state.config.version,
        "sdk_version": concat!("assay-service ", env!("CARGO_PKG_VERSION")),
        "capabilities": ["get_weights", backend, "child_process_executor"],
    }))
}

/// Runs PRISM's signed-request checks in PRISM's order.
async fn authenticate(
    state: &AppState,
    scope: &str,
    headers: &HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Signed> {
    let header = |name: &'static str, max: Option<usize>| -> ApiResult<String> {
        let value = headers
            .get(name)
            .ok_or_else(|| ApiError::missing_header(name))?
            .to_str()
            .map_err(|_| ApiError::invalid(&["header", name], "not visible ASCII"))?
            .to_string();
        if value.is_empty() {
            return Err(ApiError::invalid(
                &["header", name],
                "String should have at least 1 character",
            ));
        }
        if max.is_some_and(|max| value.chars().count() > max) {
            return Err(ApiError::invalid(
                &["header", name],
                "String should have at most 128 characters",
            ));
        }
        Ok(value)
    };
    let hotkey = header("x-hotkey", Some(128))?;
    let signature = header("x-signature", None)?;
    let nonce = header("x-nonce", Some(128))?;
    let timestamp_text = header("x-timestamp", None)?;
    let timestamp: i64 = timestamp_text
        .trim()
        .parse()
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "invalid timestamp"))?;
    if (state.now_s() - timestamp).abs() > state.config.signature_ttl_seconds {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "stale signature"));
    }
    if state.config.validator_hotkeys.contains(&hotkey) {
        tracing::warn!(hotkey = %hotkey, "rejected self-submission from a validator hotkey");
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "validator hotkey is not allowed to submit",
        ));
    }
    let body = axum::body::to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"))?;
    let message = canonical_message(scope, &hotkey, &nonce, &timestamp_text, &body);
    if !verify_hotkey_signature(&hotkey, &message, &signature) {
        tracing::warn!(hotkey = %hotkey, nonce = %nonce, "signature rejected");
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid signature"));
    }
    if !state.allow(&hotkey) {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate limit exceeded for this hotkey; retry later",
        ));
    }
    if state.store.nonce_used(&hotkey, &nonce).await? {
        return Err(ApiError::new(StatusCode::CONFLICT, "nonce already used"));
    }
    Ok(Signed {
        hotkey,
        nonce,
        body,
    })
}

/// An authenticated request whose nonce is not spent yet: spent with the submission (one
/// transaction), or by [`Signed::refuse`] when the body is refused (as PRISM, which spends it
/// before reading the body).
struct Signed {
    hotkey: String,
    nonce: String,
    body: Bytes,
}

impl Signed {
    async fn refuse(&self, state: &AppState, error: ApiError) -> ApiError {
        match state.store.use_nonce(&self.hotkey, &self.nonce).await {
            Ok(()) | Err(StoreError::Duplicate { .. }) => error,
            Err(e) => e.into(),
        }
    }
}

/// Maps a failed submission insert: a nonce spent meanwhile by a concurrent request is 409.
fn insert_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Duplicate { .. } => ApiError::new(StatusCode::CONFLICT, "nonce already used"),
        other => other.into(),
    }
}

/// A stable UUID-shaped id from the hotkey and its single-use nonce.
fn submission_id(scope: &str, hotkey: &str, nonce: &str) -> String {
    let h = hex::encode(&Sha256::digest(format!("{scope}\0{hotkey}\0{nonce}").as_bytes())[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn submission_response(row: &SubmissionRow) -> Value {
    json!({
        "id": row.id,
        "hotkey": row.hotkey,
        "epoch_id": row.epoch_id,
        "status": row.status,
        "code_hash": row.code_hash,
        "created_at": iso8601(row.created_at),
    })
}

#[derive(Deserialize)]
struct PrismBody {
    code: String,
    #[serde(default = "default_filename")]
    filename: String,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

fn default_filename() -> String {
    "model.py".into()
}

fn valid_filename(name: &str, extensions: &[&str]) -> bool {
    let Some((stem, ext)) = name.rsplit_once('.') else {
        return false;
    };
    !stem.is_empty()
        && extensions.contains(&ext)
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

async fn submit_prism(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> ApiResult<Json<Value>> {
    if !state.config.public_submissions_enabled {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "submission route disabled",
        ));
    }
    let (parts, body) = request.into_parts();
    let signed = authenticate(&state, "prism", &parts.headers, body).await?;
    let parsed = match parse_prism(&state, &parts.headers, &signed.body) {
        Ok(parsed) => parsed,
        Err(e) => return Err(signed.refuse(&state, e).await),
    };
    let code_hash = hex::encode(Sha256::digest(parsed.code.as_bytes()));
    let epoch_id = state.epoch_id();
    ensure_prism_epoch(&state, epoch_id).await?;
    let Signed { hotkey, nonce, .. } = signed;
    let id = submission_id("prism", &hotkey, &nonce);
    let job = JobSpec {
        payload: json!({ "submission_id": id, "filename": parsed.filename, "epoch_id": epoch_id }),
        ..state.config.prism_job.clone()
    };
    let row = state
        .store
        .insert_submission(&NewSubmission {
            id,
            pipeline: "prism".into(),
            hotkey,
            epoch_id,
            code_hash,
            filename: Some(parsed.filename),
            body: parsed.code,
            metadata: Value::Object(parsed.metadata),
            job: Some(job),
            nonce: Some(nonce),
        })
        .await
        .map_err(insert_error)?;
    Ok(Json(submission_response(&row)))
}

/// PRISM's body checks: JSON `{code, filename, metadata}` (or a raw ZIP), 422 / 413.
fn parse_prism(state: &AppState, headers: &HeaderMap, body: &Bytes) -> ApiResult<PrismBody> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed: PrismBody = if content_type.starts_with("application/zip")
        || content_type.starts_with("application/octet-stream")
    {
        let filename = headers
            .get("x-submission-filename")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("submission.zip")
            .to_string();
        PrismBody {
            code: base64::engine::general_purpose::STANDARD.encode(body),
            filename,
            metadata: Default::default(),
        }
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::invalid(&["body"], format!("not a submission object: {e}")))?
    };
    if parsed.code.is_empty() {
        return Err(ApiError::invalid(
            &["body", "code"],
            "String should have at least 1 character",
        ));
    }
    if !valid_filename(&parsed.filename, &["py", "zip"]) {
        return Err(ApiError::invalid(
            &["body", "filename"],
            "String should match pattern '^[A-Za-z0-9_.-]+\\.(py|zip)$'",
        ));
    }
    if parsed.code.len() > state.config.max_code_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "submission too large",
        ));
    }
    Ok(parsed)
}

async fn ensure_prism_epoch(state: &AppState, epoch_id: i64) -> ApiResult<()> {
    if state.ensured_epoch.load(Ordering::Relaxed) == epoch_id {
        return Ok(());
    }
    let len = state.config.epoch_seconds * 1000;
    state
        .store
        .ensure_epoch(&EpochRow {
            pipeline: "prism".into(),
            id: epoch_id,
            starts_at: epoch_id * len,
            ends_at: (epoch_id + 1) * len,
            status: "open".into(),
            deadline_block: None,
            seed: None,
        })
        .await?;
    state.ensured_epoch.store(epoch_id, Ordering::Relaxed);
    Ok(())
}

#[derive(Deserialize)]
struct HistoryQuery {
    days: Option<i64>,
}

async fn history(
    State(state): State<Arc<AppState>>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    let days = q.days.unwrap_or(90);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid(
            &["query", "days"],
            "Input should be between 1 and 366",
        ));
    }
    let now = state.store.now_ms();
    let first_day = (now.div_euclid(86_400_000) - days) * 86_400_000;
    let mut counts: BTreeMap<String, i64> = BTreeMap::new();
    for at in state.store.submission_times("prism", first_day).await? {
        *counts.entry(date(at)).or_default() += 1;
    }
    Ok(Json(Value::Array(
        counts
            .into_iter()
            .map(|(d, n)| json!({ "date": d, "count": n }))
            .collect(),
    )))
}

async fn submission_status(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let row = state
        .store
        .submission(&id)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "submission not found"))?;
    let mut out = submission_response(&row);
    let result = row.result.clone().unwrap_or(Value::Null);
    let field = |name: &str| {
        result
            .get(name)
            .filter(|v| v.is_number())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let map = out.as_object_mut().expect("an object");
    map.insert("error".into(), json!(row.error));
    map.insert("final_score".into(), json!(row.final_score));
    for name in [
        "q_arch",
        "q_recipe",
        "anti_cheat_multiplier",
        "diversity_bonus",
        "penalty",
    ] {
        map.insert(name.into(), field(name));
    }
    Ok(Json(out))
}

/// Even-stride indices keeping the first and last point, as PRISM's `_downsample_indices`
/// (Python's `round`: ties to even).
pub fn downsample_indices(n: usize, cap: usize) -> Vec<usize> {
    if n <= cap {
        return (0..n).collect();
    }
    (0..cap)
        .map(|i| ((i * (n - 1)) as f64 / (cap - 1) as f64).round_ties_even() as usize)
        .collect()
}

async fn submission_curve(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, "submission curve not found");
    let row = state.store.submission(&id).await?.ok_or_else(not_found)?;
    let result = row.result.ok_or_else(not_found)?;
    let curve = result.get("curve").ok_or_else(not_found)?;
    let floats = |key: &str| -> Vec<f64> {
        curve
            .get(key)
            .and_then(Value::as_array)
            .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
            .unwrap_or_default()
    };
    let loss = floats("online_loss");
    let bytes = floats("covered_bytes_cumulative");
    let n = loss.len().min(bytes.len());
    let idx = downsample_indices(n, CURVE_MAX_POINTS);
    let num = |v: Option<&Value>| v.filter(|v| v.is_number()).cloned().unwrap_or(Value::Null);
    let compute = result.get("compute").cloned().unwrap_or(json!({}));
    let c = |k: &str| num(compute.get(k));
    let text = |k: &str| {
        compute
            .get(k)
            .filter(|v| v.is_string())
            .cloned()
            .unwrap_or(Value::Null)
    };
    Ok(Json(json!({
        "submission_id": row.id,
        "loss_curve": {
            "online_loss": idx.iter().map(|&i| loss[i]).collect::<Vec<_>>(),
            "covered_bytes_cumulative": idx.iter().map(|&i| bytes[i]).collect::<Vec<_>>(),
            "step0_loss": num(curve.get("step0_loss")),
            "baseline_nats": num(curve.get("baseline_nats")),
            "points": idx.len(),
            "downsampled": n > CURVE_MAX_POINTS,
        },
        "bpb": {
            "prequential_bpb": num(result.get("prequential_bpb")),
            "bits_per_byte": num(result.get("bits_per_byte")),
        },
        "compute": {
            "gpu_count": c("gpu_count"), "device": text("device"), "gpu_tier": text("gpu_tier"),
            "model_params": c("model_params"), "tokens_consumed": c("tokens_consumed"),
            "estimated_flops": c("estimated_flops"), "wall_clock_seconds": c("wall_clock_seconds"),
            "gpu_hours": c("gpu_hours"), "peak_vram_bytes": c("peak_vram_bytes"),
            "peak_rss_bytes": c("peak_rss_bytes"),
        },
    })))
}

#[derive(Deserialize)]
struct EpochQuery {
    epoch_id: Option<i64>,
}

async fn leaderboard(
    State(state): State<Arc<AppState>>,
    Query(q): Query<EpochQuery>,
) -> ApiResult<Json<Value>> {
    if q.epoch_id.is_some_and(|e| e < 0) {
        return Err(ApiError::invalid(
            &["query", "epoch_id"],
            "Input should be greater than or equal to 0",
        ));
    }
    let epoch_id = q.epoch_id.unwrap_or_else(|| state.epoch_id());
    let rows = state.store.leaderboard("prism", epoch_id, 50).await?;
    let entries: Vec<Value> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| json!({ "rank": i + 1, "hotkey": r.hotkey, "score": r.final_score, "submission_id": r.id }))
        .collect();
    Ok(Json(json!({ "epoch_id": epoch_id, "entries": entries })))
}

async fn current_epoch(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(json!({ "epoch_id": state.epoch_id(), "epoch_seconds": state.config.epoch_seconds }))
}

#[derive(Deserialize)]
struct LimitQuery {
    limit: Option<i64>,
}

fn check_limit(limit: Option<i64>) -> ApiResult<i64> {
    let limit = limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::invalid(
            &["query", "limit"],
            "Input should be between 1 and 200",
        ));
    }
    Ok(limit)
}

async fn list_epochs(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Value>> {
    let limit = check_limit(q.limit)?;
    let rows = state.store.epochs("prism", limit).await?;
    Ok(Json(Value::Array(
        rows.iter()
            .map(|e| json!({ "id": e.id, "starts_at": iso8601(e.starts_at), "ends_at": iso8601(e.ends_at), "status": e.status }))
            .collect(),
    )))
}

async fn eval_jobs(
    State(state): State<Arc<AppState>>,
    Query(q): Query<LimitQuery>,
) -> ApiResult<Json<Value>> {
    let limit = check_limit(q.limit)?;
    let jobs = state.store.recent_jobs(limit).await?;
    Ok(Json(Value::Array(
        jobs.iter()
            .filter(|j| j.submission_id.is_some())
            .map(|j| {
                json!({
                    "id": j.id.to_string(), "submission_id": j.submission_id, "level": j.kind,
                    "status": match j.state {
                        assay_store::JobState::Queued => "pending",
                        assay_store::JobState::Running => "running",
                        assay_store::JobState::Done => "completed",
                        assay_store::JobState::Failed => "failed",
                    },
                    "attempts": j.attempts, "created_at": iso8601(j.created_at), "updated_at": iso8601(j.updated_at),
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
struct Sn37Body {
    competition_id: i64,
    repo: String,
    revision: String,
    hash: String,
}

fn parse_sn37(body: &Bytes) -> ApiResult<Sn37Body> {
    let parsed: Sn37Body = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            &["body"],
            format!("expected {{competition_id, repo, revision, hash}}: {e}"),
        )
    })?;
    let repo_ok = parsed.repo.split('/').count() == 2
        && parsed.repo.len() <= 200
        && !parsed.repo.contains("..");
    if !repo_ok
        || parsed.revision.is_empty()
        || parsed.revision.len() > 64
        || parsed.hash.is_empty()
        || parsed.hash.len() > 128
    {
        return Err(ApiError::invalid(
            &["body"],
            "repo must be `org/name`, revision 1-64 and hash 1-128 characters",
        ));
    }
    Ok(parsed)
}

async fn submit_sn37(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let (parts, body) = request.into_parts();
    let signed = authenticate(&state, "sn37", &parts.headers, body).await?;
    let parsed = match parse_sn37(&signed.body) {
        Ok(parsed) => parsed,
        Err(e) => return Err(signed.refuse(&state, e).await),
    };
    let Signed { hotkey, nonce, .. } = signed;
    let block = state.store.latest_block().await?.map_or(0, |b| b.number);
    let data = json!({ "competition_id": parsed.competition_id, "repo": parsed.repo, "revision": parsed.revision, "hash": parsed.hash });
    let row = state
        .store
        .insert_submission(&NewSubmission {
            id: submission_id("sn37", &hotkey, &nonce),
            pipeline: "sn37".into(),
            hotkey: hotkey.clone(),
            epoch_id: schedule::sn37_sync_block(block, &state.config.schedule),
            code_hash: parsed.hash,
            filename: None,
            body: data.to_string(),
            metadata: json!({ "block": block }),
            job: None,
            nonce: Some(nonce),
        })
        .await
        .map_err(insert_error)?;
    state
        .store
        .insert_commitment(&Commitment {
            pipeline: "sn37".into(),
            hotkey,
            block,
            data,
        })
        .await?;
    Ok(Json(submission_response(&row)))
}

#[derive(Deserialize)]
struct DatacompBody {
    #[serde(default = "default_jsonl")]
    filename: String,
    data: String,
    #[serde(default)]
    metadata: serde_json::Map<String, Value>,
}

fn default_jsonl() -> String {
    "data.jsonl".into()
}

fn parse_datacomp(body: &Bytes) -> ApiResult<DatacompBody> {
    let parsed: DatacompBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid(
            &["body"],
            format!("expected {{filename, data, metadata}}: {e}"),
        )
    })?;
    if parsed.data.is_empty() || !valid_filename(&parsed.filename, &["jsonl"]) {
        return Err(ApiError::invalid(
            &["body"],
            "data must be non-empty JSONL text and filename end in .jsonl",
        ));
    }
    Ok(parsed)
}

async fn submit_datacomp(
    State(state): State<Arc<AppState>>,
    request: Request,
) -> ApiResult<Json<Value>> {
    let (parts, body) = request.into_parts();
    let signed = authenticate(&state, "datacomp", &parts.headers, body).await?;
    let parsed = match parse_datacomp(&signed.body) {
        Ok(parsed) => parsed,
        Err(e) => return Err(signed.refuse(&state, e).await),
    };
    let Signed { hotkey, nonce, .. } = signed;
    let block = state.store.latest_block().await?.map_or(0, |b| b.number);
    let round = schedule::datacomp_round(block, &state.config.schedule);
    schedule::ensure_datacomp_round(&state.store, round, &state.config.schedule).await?;
    // Priority between miners comes from the block the validator saw, never from the miner's
    // own metadata: a `block` the miner sent is replaced.
    let mut metadata = parsed.metadata;
    metadata.insert("block".into(), json!(block));
    let row = state
        .store
        .insert_submission(&NewSubmission {
            id: submission_id("datacomp", &hotkey, &nonce),
            pipeline: "datacomp".into(),
            hotkey,
            epoch_id: round,
            code_hash: hex::encode(Sha256::digest(parsed.data.as_bytes())),
            filename: Some(parsed.filename),
            body: parsed.data,
            metadata: Value::Object(metadata),
            job: None,
            nonce: Some(nonce),
        })
        .await
        .map_err(insert_error)?;
    Ok(Json(submission_response(&row)))
}

fn internal(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if bearer_matches(given, &state.config.internal_token) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid internal token",
        ))
    }
}

#[derive(Deserialize)]
struct WeightsQuery {
    pipeline: Option<String>,
}

async fn get_weights(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<WeightsQuery>,
) -> ApiResult<Json<Value>> {
    internal(&state, &headers)?;
    let pipeline = q.pipeline.unwrap_or_else(|| "prism".into());
    let latest = state.store.latest_weights(&pipeline).await?;
    let (epoch, weights, at) = match latest {
        Some(w) => (Some(w.epoch_id), w.weights, w.created_at),
        None => (None, json!({}), state.store.now_ms()),
    };
    Ok(Json(json!({
        "challenge_slug": state.config.slug,
        "epoch": epoch,
        "weights": weights,
        "metadata": { "computed_at": iso8601(at), "pipeline": pipeline },
    })))
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Blocks {
    One(Block),
    Many(Vec<Block>),
}

async fn post_blocks(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(blocks): Json<Blocks>,
) -> ApiResult<Json<Value>> {
    internal(&state, &headers)?;
    let blocks = match blocks {
        Blocks::One(b) => vec![b],
        Blocks::Many(v) => v,
    };
    let mut new = 0;
    let mut enqueued = 0;
    for block in &blocks {
        if block.number < 0 || block.hash.is_empty() || block.hash.len() > 130 {
            return Err(ApiError::invalid(
                &["body"],
                "a block is {number >= 0, hash (0x…)}",
            ));
        }
        if state.store.insert_block(block).await? {
            new += 1;
        }
        enqueued += schedule::on_block(&state.store, &state.config.schedule, block).await?;
    }
    Ok(Json(
        json!({ "received": blocks.len(), "new": new, "jobs_enqueued": enqueued }),
    ))
}

async fn post_commitments(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Json(commitments): Json<Vec<Commitment>>,
) -> ApiResult<Json<Value>> {
    internal(&state, &headers)?;
    let mut new = 0;
    for c in &commitments {
        if !["sn37", "datacomp"].contains(&c.pipeline.as_str())
            || c.hotkey.is_empty()
            || c.hotkey.len() > 128
        {
            return Err(ApiError::invalid(
                &["body"],
                "pipeline must be sn37 or datacomp and hotkey 1-128 characters",
            ));
        }
        if state.store.insert_commitment(c).await? {
            new += 1;
        }
    }
    Ok(Json(json!({ "received": commitments.len(), "new": new })))
}

async fn queue(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Json<Value>> {
    internal(&state, &headers)?;
    let counts: serde_json::Map<String, Value> = state
        .store
        .job_counts()
        .await?
        .into_iter()
        .map(|(s, n)| (s.as_str().to_string(), json!(n)))
        .collect();
    let recent = state.store.recent_jobs(50).await?;
    Ok(Json(json!({ "jobs_by_state": counts, "recent": recent })))
}

async fn metrics(State(state): State<Arc<AppState>>) -> ApiResult<Response> {
    let text = state.metrics.render(&state.store).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response())
}

async fn openapi(State(state): State<Arc<AppState>>) -> Json<Value> {
    Json(crate::openapi::document(&state.config.version))
}

/// Serves the API on `addr` until `shutdown` turns true, with the schedules' periodic tick
/// (PRISM epochs, nonce pruning) running beside it. Returns the bound address through `bound`.
pub async fn serve(
    state: Arc<AppState>,
    addr: SocketAddr,
    mut shutdown: watch::Receiver<bool>,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), ServiceError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServiceError::Serve {
            addr: addr.to_string(),
            source,
        })?;
    let local = listener
        .local_addr()
        .map_err(|source| ServiceError::Serve {
            addr: addr.to_string(),
            source,
        })?;
    tracing::info!(addr = %local, "serving");
    if let Some(tx) = bound {
        let _ = tx.send(local);
    }
    let ticker_state = state.clone();
    let mut ticker_shutdown = shutdown.clone();
    let ticker = tokio::spawn(async move {
        loop {
            if let Err(e) = schedule::tick(&ticker_state.store, &ticker_state.config).await {
                tracing::warn!(error = %assay_errors::chain(&e), "schedule tick failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                _ = ticker_shutdown.changed() => break,
            }
        }
    });
    // The pages for people (leaderboards, submissions, rounds, the operator's queue) are served by
    // the same process, from the same store, beside the JSON API.
    let pages = assay_pages::router(
        Arc::new(assay_pages::store::StoreSource::new(state.store.clone())),
        assay_pages::PagesConfig::default(),
    );
    let app = router(state).merge(pages);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            while !*shutdown.borrow() {
                if shutdown.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
        .map_err(|source| ServiceError::Serve {
            addr: local.to_string(),
            source,
        })?;
    ticker.abort();
    Ok(())
}

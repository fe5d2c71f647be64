//! assay's web pages for miners and operators, rendered on the server from the same process as
//! the validator's API: per-pipeline leaderboards (sortable, with PRISM's two-tier crown),
//! submission pages (progress through the pipeline, integrity findings in plain words, scores
//! per task, the curve as SVG, downloads), round pages (winner, weights, how they moved,
//! exploit findings) and the operator's page (queue, workers, recent failures).
//!
//! The pages read their data through a [`PageSource`] (async methods returning plain view
//! models from [`model`]), so they know nothing of SQL; [`router`] builds the axum routes.
//! Running jobs, the boards and the operator's page update live through server-sent events and a
//! small script (the pages work without it). No external fonts, scripts or styles are loaded;
//! every value is HTML-escaped, and free text (errors, findings) is scrubbed of filesystem
//! paths, secrets and database URLs ([`text::scrub`]).
//!
//! Routes (all `GET`):
//! - `/`: the pipelines; `/board/{pipeline}` (`?sort=rank|hotkey|score|weight|block|status&order=asc|desc`)
//! - `/submission/{id}`, `/submission/{id}/files/{name}`
//! - `/round/{pipeline}` (the latest), `/round/{pipeline}/{epoch}`
//! - `/operator`
//! - `…/events` beside the board, submission and operator pages: their server-sent events
//! - `/assets/style.css`, `/assets/live.js`
#![warn(missing_docs)]

pub mod charts;
pub mod model;
pub mod render;
mod source;
#[cfg(feature = "store")]
pub mod store;
pub mod text;

pub use source::{PageSource, SourceError};

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use assay_errors::{Blame, Diagnose};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::Stream;
use maud::Markup;

use crate::render::Sort;

/// The stylesheet every page links.
pub const STYLE_CSS: &str = include_str!("../assets/style.css");
/// The live-update script (server-sent events into the page's live region).
pub const LIVE_JS: &str = include_str!("../assets/live.js");

/// Settings of the pages.
#[derive(Debug, Clone)]
pub struct PagesConfig {
    /// How often a live page's stream looks for changes.
    pub live_interval: Duration,
}

impl Default for PagesConfig {
    /// A look every two seconds.
    fn default() -> Self {
        Self {
            live_interval: Duration::from_secs(2),
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// Nothing by that name.
    #[error("{what} not found")]
    NotFound {
        /// What was asked for ("submission", "leaderboard").
        what: &'static str,
    },
    /// The data source failed; its message is logged, never shown.
    #[error("the page's data could not be read")]
    Source {
        /// The source's error.
        #[source]
        source: SourceError,
    },
}

impl Diagnose for PageError {
    fn blame(&self) -> Blame {
        match self {
            // A request for something that is not there is the asker's doing.
            Self::NotFound { .. } => Blame::Miner,
            Self::Source { .. } => Blame::Transient,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::NotFound { .. } => Some("check the link; ids are case-sensitive".into()),
            Self::Source { .. } => Some("the validator's database may be busy; try again".into()),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match &self {
            Self::NotFound { what } => {
                let title = format!("No such {what}");
                let page = render::error_page(
                    &title,
                    &format!("This validator has no {what} at this address."),
                );
                (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
            }
            Self::Source { .. } => {
                tracing::error!(error = %assay_errors::chain(&self), "a page's data could not be read");
                let page = render::error_page(
                    "Data unavailable",
                    "The validator's data could not be read just now. Try again in a moment.",
                );
                (StatusCode::SERVICE_UNAVAILABLE, Html(page.into_string())).into_response()
            }
        }
    }
}

fn source_err(source: SourceError) -> PageError {
    PageError::Source { source }
}

struct Pages<S> {
    source: Arc<S>,
    config: PagesConfig,
}

type St<S> = State<Arc<Pages<S>>>;

/// The pages' routes over `source`, ready to serve or to merge into the API's router.
pub fn router<S: PageSource>(source: Arc<S>, config: PagesConfig) -> Router {
    let state = Arc::new(Pages { source, config });
    Router::new()
        .route("/", get(index::<S>))
        .route("/board/{pipeline}", get(board::<S>))
        .route("/board/{pipeline}/events", get(board_events::<S>))
        .route("/submission/{id}", get(submission::<S>))
        .route("/submission/{id}/events", get(submission_events::<S>))
        .route("/submission/{id}/files/{name}", get(download::<S>))
        .route("/round/{pipeline}", get(latest_round::<S>))
        .route("/round/{pipeline}/{epoch}", get(round::<S>))
        .route("/operator", get(operator::<S>))
        .route("/operator/events", get(operator_events::<S>))
        .route("/assets/style.css", get(style))
        .route("/assets/live.js", get(script))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The content security policy: nothing from elsewhere, no inline script or style.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        h.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::CACHE_CONTROL, "no-cache");
    res
}

fn html(m: Markup) -> Response {
    Html(m.into_string()).into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        LIVE_JS,
    )
        .into_response()
}

fn check_id(id: &str, what: &'static str) -> Result<(), PageError> {
    if text::is_safe_id(id) {
        Ok(())
    } else {
        Err(PageError::NotFound { what })
    }
}

async fn index<S: PageSource>(State(p): St<S>) -> Result<Response, PageError> {
    let list = p.source.pipelines().await.map_err(source_err)?;
    Ok(html(render::index_page(&list)))
}

fn sort_of(q: &HashMap<String, String>, higher_is_better: bool) -> Sort {
    Sort::parse(
        q.get("sort").map(String::as_str),
        q.get("order").map(String::as_str),
        higher_is_better,
    )
}

async fn board<S: PageSource>(
    State(p): St<S>,
    Path(pipeline): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    check_id(&pipeline, "leaderboard")?;
    let lb = p.source.leaderboard(&pipeline).await.map_err(source_err)?;
    let lb = lb.ok_or(PageError::NotFound {
        what: "leaderboard",
    })?;
    Ok(html(render::leaderboard_page(
        &lb,
        sort_of(&q, lb.higher_is_better),
    )))
}

async fn submission<S: PageSource>(
    State(p): St<S>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    check_id(&id, "submission")?;
    let s = p.source.submission(&id).await.map_err(source_err)?;
    let s = s.ok_or(PageError::NotFound { what: "submission" })?;
    Ok(html(render::submission_page(&s)))
}

async fn latest_round<S: PageSource>(
    State(p): St<S>,
    Path(pipeline): Path<String>,
) -> Result<Response, PageError> {
    check_id(&pipeline, "round")?;
    let r = p.source.round(&pipeline, None).await.map_err(source_err)?;
    let r = r.ok_or(PageError::NotFound { what: "round" })?;
    Ok(html(render::round_page(&r)))
}

async fn round<S: PageSource>(
    State(p): St<S>,
    Path((pipeline, epoch)): Path<(String, String)>,
) -> Result<Response, PageError> {
    check_id(&pipeline, "round")?;
    let epoch: i64 = epoch
        .parse()
        .map_err(|_| PageError::NotFound { what: "round" })?;
    let r = p
        .source
        .round(&pipeline, Some(epoch))
        .await
        .map_err(source_err)?;
    let r = r.ok_or(PageError::NotFound { what: "round" })?;
    Ok(html(render::round_page(&r)))
}

async fn operator<S: PageSource>(State(p): St<S>) -> Result<Response, PageError> {
    let o = p.source.operator().await.map_err(source_err)?;
    Ok(html(render::operator_page(&o)))
}

/// `name` made safe for a quoted `Content-Disposition` filename (ASCII, no quotes).
fn disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        render::seg(name)
    )
}

/// A MIME type made of plain characters, or `application/octet-stream`.
fn content_type(t: &str) -> String {
    let ok = !t.is_empty()
        && t.len() < 128
        && t.contains('/')
        && t.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'/' | b'+' | b'.' | b'-' | b';' | b'=' | b' ')
        });
    if ok {
        t.to_string()
    } else {
        "application/octet-stream".into()
    }
}

async fn download<S: PageSource>(
    State(p): St<S>,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, PageError> {
    check_id(&id, "submission")?;
    if !text::is_plain_file_name(&name) {
        return Err(PageError::NotFound { what: "file" });
    }
    let s = p.source.submission(&id).await.map_err(source_err)?;
    let s = s.ok_or(PageError::NotFound { what: "submission" })?;
    // Only files the submission page lists may be fetched.
    if !s.files.iter().any(|f| f.name == name) {
        return Err(PageError::NotFound { what: "file" });
    }
    let file = p.source.file(&id, &name).await.map_err(source_err)?;
    let file = file.ok_or(PageError::NotFound { what: "file" })?;
    let headers = [
        (header::CONTENT_TYPE, content_type(&file.content_type)),
        (header::CONTENT_DISPOSITION, disposition(&name)),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; sandbox".into(),
        ),
    ];
    Ok((headers, file.bytes).into_response())
}

/// One look at a live region.
enum Tick {
    /// The region's HTML now, and whether it will not change again.
    Region(String, bool),
    /// Not there any more: end the stream.
    Gone,
    /// The source failed this time: try again next time.
    Skip,
}

/// A server-sent event stream that re-renders a region every `interval` and sends it as an
/// `update` event when its version differs from the last one sent (first: `since`, the page's);
/// a final region is followed by an `end` event and the stream closes.
fn live_stream<F, Fut>(
    interval: Duration,
    since: Option<String>,
    look: F,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Tick> + Send,
{
    struct Live<F> {
        look: F,
        last: Option<String>,
        queue: VecDeque<Event>,
        first: bool,
        ended: bool,
    }
    let state = Live {
        look,
        last: since,
        queue: VecDeque::new(),
        first: true,
        ended: false,
    };
    let stream = futures_util::stream::unfold(state, move |mut s| async move {
        loop {
            if let Some(e) = s.queue.pop_front() {
                return Some((Ok(e), s));
            }
            if s.ended {
                return None;
            }
            if !s.first {
                tokio::time::sleep(interval).await;
            }
            s.first = false;
            match (s.look)().await {
                Tick::Region(html, done) => {
                    let v = render::version(&html);
                    if s.last.as_deref() != Some(v.as_str()) {
                        s.queue
                            .push_back(Event::default().event("update").data(html));
                        s.last = Some(v);
                    }
                    if done {
                        s.queue
                            .push_back(Event::default().event("end").data("final"));
                        s.ended = true;
                    }
                }
                Tick::Gone => {
                    s.queue
                        .push_back(Event::default().event("end").data("gone"));
                    s.ended = true;
                }
                Tick::Skip => {}
            }
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

async fn board_events<S: PageSource>(
    State(p): St<S>,
    Path(pipeline): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    check_id(&pipeline, "leaderboard")?;
    let interval = p.config.live_interval;
    let since = q.get("v").cloned();
    let look = move || {
        let (p, pipeline, q) = (p.clone(), pipeline.clone(), q.clone());
        async move {
            match p.source.leaderboard(&pipeline).await {
                Ok(Some(lb)) => {
                    let sort = sort_of(&q, lb.higher_is_better);
                    Tick::Region(render::leaderboard_region(&lb, sort).into_string(), false)
                }
                Ok(None) => Tick::Gone,
                Err(_) => Tick::Skip,
            }
        }
    };
    Ok(live_stream(interval, since, look).into_response())
}

async fn submission_events<S: PageSource>(
    State(p): St<S>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    check_id(&id, "submission")?;
    let interval = p.config.live_interval;
    let since = q.get("v").cloned();
    let look = move || {
        let (p, id) = (p.clone(), id.clone());
        async move {
            match p.source.submission(&id).await {
                Ok(Some(s)) => Tick::Region(
                    render::submission_region(&s).into_string(),
                    s.status.is_final(),
                ),
                Ok(None) => Tick::Gone,
                Err(_) => Tick::Skip,
            }
        }
    };
    Ok(live_stream(interval, since, look).into_response())
}

async fn operator_events<S: PageSource>(
    State(p): St<S>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, PageError> {
    let interval = p.config.live_interval;
    let since = q.get("v").cloned();
    let look = move || {
        let p = p.clone();
        async move {
            match p.source.operator().await {
                Ok(o) => Tick::Region(render::operator_region(&o).into_string(), false),
                Err(_) => Tick::Skip,
            }
        }
    };
    Ok(live_stream(interval, since, look).into_response())
}

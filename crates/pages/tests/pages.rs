//! The pages through their router on fixture view models: every page renders, stays under
//! 100 KB, escapes what miners control, leaks no path, secret or internal route, sorts, serves
//! only listed files, streams live updates, and hides a failing source's message.

mod common;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use assay_pages::{PagesConfig, render, router};
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Fixture, HOSTILE, SECRETS, hotkey};
use futures_util::StreamExt;
use tower::ServiceExt;

fn app(fixture: &Arc<Fixture>) -> axum::Router {
    router(
        fixture.clone(),
        PagesConfig {
            live_interval: Duration::from_millis(20),
        },
    )
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, String) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 10 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

const PAGES: &[&str] = &[
    "/",
    "/board/prism",
    "/board/prism?sort=score&order=asc",
    "/board/sn37",
    "/submission/sub-00",
    "/submission/sub-02",
    "/submission/sub-08",
    "/submission/sub-run",
    "/submission/sub-rej",
    "/round/prism",
    "/round/prism/10",
    "/operator",
];

#[tokio::test]
async fn every_page_renders_small_and_well_formed() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    for uri in PAGES {
        let (status, headers, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(
            headers[header::CONTENT_TYPE],
            "text/html; charset=utf-8",
            "{uri}"
        );
        assert!(body.len() < 100_000, "{uri}: {} bytes", body.len());
        assert!(
            body.starts_with("<!DOCTYPE html><html lang=\"en\">"),
            "{uri}"
        );
        for landmark in [
            "<main id=\"main\"",
            "<nav aria-label=\"Main\">",
            "<footer>",
            "<h1>",
            "<title>",
        ] {
            assert!(body.contains(landmark), "{uri} lacks {landmark}");
        }
        // Nothing is loaded from elsewhere (the SVG namespace is a name, not a fetch).
        let outside = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
        assert!(
            !outside.contains("http://") && !outside.contains("https://"),
            "{uri}"
        );
        assert!(
            !body.contains("<script>") && !body.contains("style=\""),
            "{uri}: inline script or style"
        );
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }
    // With the stylesheet and script the heaviest page is still far below 100 KB.
    let (_, _, css) = get(&app, "/assets/style.css").await;
    let (_, _, js) = get(&app, "/assets/live.js").await;
    let (_, _, sub) = get(&app, "/submission/sub-00").await;
    assert!(sub.len() + css.len() + js.len() < 100_000);
}

#[tokio::test]
async fn miner_text_is_escaped_and_nothing_leaks() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    for uri in PAGES {
        let (_, _, body) = get(&app, uri).await;
        assert!(!body.contains(HOSTILE), "{uri}: raw hostile hotkey");
        assert!(!body.contains("<img"), "{uri}: an injected element");
        for secret in SECRETS {
            assert!(!body.contains(secret), "{uri} leaks {secret}");
        }
    }
    let (_, _, board) = get(&app, "/board/prism").await;
    assert!(board.contains("5Hx&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;"));
    // Scrubbed messages keep what helps: the file name, whose fault, what happened.
    let (_, _, op) = get(&app, "/operator").await;
    assert!(
        op.contains("cannot write …/report.json: No space left on device"),
        "{op}"
    );
    assert!(op.contains("(a URL with credentials)"));
    let (_, _, rej) = get(&app, "/submission/sub-rej").await;
    assert!(rej.contains("…/private-code.py (token=…)"));
    assert!(rej.contains("97 % similar to submission sub-00"));
}

fn row_order(body: &str) -> Vec<String> {
    body.split("<tbody>")
        .nth(1)
        .unwrap()
        .split("href=\"/submission/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_board_sorts_on_the_server_and_shows_the_crowns() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    let (_, _, body) = get(&app, "/board/prism").await;
    let by_rank = row_order(&body);
    assert_eq!(by_rank[0], "sub-00");
    assert_eq!(&by_rank[10..], ["sub-run", "sub-rej"], "unranked rows last");
    assert!(body.contains("<th scope=\"col\" aria-sort=\"ascending\"><a href=\"/board/prism?sort=rank&amp;order=desc\">Rank"));
    // A first click on score sorts best first (higher is better on PRISM).
    assert!(body.contains("href=\"/board/prism?sort=score&amp;order=desc\">Score"));
    assert!(body.contains("Architecture crown</strong> (60.0 %)"));
    assert!(body.contains("Training crown</strong> (40.0 %)"));
    assert!(body.contains("<span class=\"badge\">architecture crown</span>"));
    assert!(body.contains("0.9100</span> <span class=\"unc\">± 0.0020</span>"));
    assert!(body.contains("60.0 %</span> <span class=\"unc\">(u16 65535)</span>"));

    let (_, _, asc) = get(&app, "/board/prism?sort=score&order=asc").await;
    let worst_first = row_order(&asc);
    assert_eq!(worst_first[0], "sub-09");
    assert_eq!(worst_first[9], "sub-00");
    assert!(asc.contains(
        "aria-sort=\"ascending\"><a href=\"/board/prism?sort=score&amp;order=desc\">Score"
    ));
    let (_, _, by_hotkey) = get(&app, "/board/prism?sort=hotkey").await;
    let mut keys: Vec<String> = (0..10).map(hotkey).collect();
    keys[8] = HOSTILE.into();
    keys.extend([hotkey(20), hotkey(21)]);
    let mut ids: Vec<(String, String)> = keys.into_iter().zip(row_order(&body)).collect();
    ids.sort();
    assert_eq!(
        row_order(&by_hotkey),
        ids.into_iter().map(|p| p.1).collect::<Vec<_>>()
    );
    // Unknown or hostile parameters fall back to the rank order.
    let (status, _, odd) = get(&app, "/board/prism?sort=%3Cscript%3E&order=sideways&sort=x").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(row_order(&odd), by_rank);
    // SN37: lower is better, so a first click on score sorts ascending.
    let (_, _, sn37) = get(&app, "/board/sn37").await;
    assert!(sn37.contains("href=\"/board/sn37?sort=score&amp;order=asc\">Score"));
    assert!(sn37.contains("lower is better"));
}

#[tokio::test]
async fn the_submission_page_tells_the_whole_story() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    let (_, _, s) = get(&app, "/submission/sub-00").await;
    assert!(s.contains("<span class=\"st st-done\">scored</span>"));
    assert!(s.contains("gpu-1 on NVIDIA H100 80GB HBM3"));
    assert!(s.contains("held-out bits per byte"));
    assert!(s.contains(
        "<svg role=\"img\" aria-label=\"Bits per byte: bits per byte against step, 100 points\""
    ));
    assert_eq!(
        s.matches("<circle").count(),
        100,
        "the 500-point curve is thinned"
    );
    assert!(s.contains("href=\"/submission/sub-00/files/adapter%20model.safetensors\" download=\"adapter model.safetensors\""));
    assert!(s.contains("12.6 MB"));
    assert!(s.contains("41 % similar"));
    assert!(
        !s.contains("data-live"),
        "a finished submission is not streamed"
    );
    let (_, _, run) = get(&app, "/submission/sub-run").await;
    assert!(run.contains("data-live=\"/submission/sub-run/events?v="));
    assert!(run.contains("<script src=\"/assets/live.js\" defer>"));
    assert!(run.contains("stage stage-current"));
    assert!(run.contains("gpu-2 on NVIDIA H200"));
    let (_, _, rej) = get(&app, "/submission/sub-rej").await;
    assert!(rej.contains("st-rejected"));
    assert!(rej.contains("<strong>Reason for rejection: </strong>"));
    assert!(rej.contains("stage stage-failed"));
}

#[tokio::test]
async fn the_round_and_operator_pages_show_movement_and_failures() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    let (_, _, r) = get(&app, "/round/prism/10").await;
    assert!(r.contains("PRISM, round 10"));
    assert!(r.contains("rel=\"prev\">← round 9") && r.contains("rel=\"next\">round 11 →"));
    assert!(r.contains("aria-label=\"Change of weight share since the round before\""));
    assert!(r.contains("aria-label=\"Weight share over recent rounds\""));
    assert!(r.contains("Copied the code of sub-00"));
    // Round 10: hotkey 0 went from 30 % to 40 %.
    assert!(r.contains("<td class=\"num\">40.0 %</td><td class=\"num\">26214</td><td class=\"num\">30.0 %</td><td class=\"num\">+10.0 pp</td>"), "{r}");
    let (_, _, o) = get(&app, "/operator").await;
    assert!(o.contains("<dd id=\"queue-depth\">4</dd>"));
    assert!(o.contains("2× NVIDIA H200"));
    assert!(o.contains("Jobs failed</dt><dd>3</dd>"));
    assert!(o.contains("operator</td>"));
}

#[tokio::test]
async fn unknown_and_hostile_addresses_are_not_found() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    for uri in [
        "/board/nope",
        "/board/a%20b",
        "/submission/nope",
        "/submission/..",
        "/submission/%3Cscript%3E",
        "/round/prism/99",
        "/round/prism/x",
        "/round/sn37/1",
        "/submission/sub-00/files/missing.bin",
        "/submission/sub-00/files/..%2F..%2Fetc%2Fpasswd",
        "/submission/sub-02/files/adapter%20model.safetensors",
        "/submission/sub-rej/files/private-code.py",
    ] {
        let (status, _, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert!(body.contains("<h1>No such "), "{uri}");
        assert!(
            !body.contains("<script") && !body.contains("passwd"),
            "{uri}"
        );
    }
}

#[tokio::test]
async fn listed_files_download_as_attachments() {
    let f = Fixture::new(usize::MAX);
    let app = app(&f);
    let (status, h, body) = get(&app, "/submission/sub-00/files/report.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h[header::CONTENT_TYPE], "application/json");
    assert_eq!(
        h[header::CONTENT_DISPOSITION],
        "attachment; filename=\"report.json\"; filename*=UTF-8''report.json"
    );
    assert!(
        h[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("sandbox")
    );
    assert_eq!(body, "{\"submission\":\"sub-00\",\"score\":0.91}");
    let (status, h, _) = get(&app, "/submission/sub-00/files/adapter%20model.safetensors").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        h[header::CONTENT_DISPOSITION],
        "attachment; filename=\"adapter model.safetensors\"; filename*=UTF-8''adapter%20model.safetensors"
    );
}

#[tokio::test]
async fn a_failing_source_shows_no_detail() {
    let f = Fixture::new(usize::MAX);
    f.broken.store(true, Ordering::SeqCst);
    let app = app(&f);
    for uri in [
        "/",
        "/board/prism",
        "/submission/sub-00",
        "/round/prism",
        "/operator",
    ] {
        let (status, _, body) = get(&app, uri).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(body.contains("could not be read just now"));
        for secret in SECRETS.iter().chain(&["locked", "sqlite"]) {
            assert!(!body.contains(secret), "{uri} leaks {secret}");
        }
    }
}

/// Reads server-sent events from `body` until `end` or `limit`, as (event, data) pairs.
async fn events(body: Body, limit: Duration) -> Vec<(String, String)> {
    let mut stream = body.into_data_stream();
    let mut text = String::new();
    let _ = tokio::time::timeout(limit, async {
        while let Some(Ok(chunk)) = stream.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            if text.contains("event: end") && text.ends_with("\n\n") {
                break;
            }
        }
    })
    .await;
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty() && !e.starts_with(':'))
        .map(|e| {
            let mut name = String::new();
            let mut data = Vec::new();
            for line in e.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.into();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            (name, data.join("\n"))
        })
        .collect()
}

#[tokio::test]
async fn a_running_submission_streams_its_change_then_ends() {
    // Scored from the 4th look on: the page is the 1st, the stream's first looks see no change.
    let f = Fixture::new(4);
    let app = app(&f);
    let (_, _, page) = get(&app, "/submission/sub-run").await;
    let v = page
        .split("events?v=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let res = app
        .clone()
        .oneshot(
            Request::get(format!("/submission/sub-run/events?v={v}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let got = events(res.into_body(), Duration::from_secs(5)).await;
    let names: Vec<&str> = got.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(
        names,
        ["update", "end"],
        "one change, then the end: {got:?}"
    );
    assert!(got[0].1.contains("st-done") && got[0].1.contains("0.5500"));
    assert_eq!(got[1].1, "final");
    // The region sent is exactly what a fresh page holds.
    let (_, _, fresh) = get(&app, "/submission/sub-run").await;
    assert!(fresh.contains(&got[0].1));

    // A stale version gets the current region at once; the board stream stays open.
    let res = app
        .clone()
        .oneshot(
            Request::get("/board/prism/events?sort=score&v=stale")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let got = events(res.into_body(), Duration::from_millis(300)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let region = render::leaderboard_region(
        &assay_pages::PageSource::leaderboard(&*f, "prism")
            .await
            .unwrap()
            .unwrap(),
        render::Sort::parse(Some("score"), None, true),
    );
    assert_eq!(got[0].1, region.into_string());
}

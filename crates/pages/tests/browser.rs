//! The pages in a real browser: Debian's headless `chromium` driven through `chromedriver` by
//! fantoccini, against the router served on 127.0.0.1 with the fixture source. Clicks from the
//! index to a board, sorts it, follows a hotkey to its submission (text, SVG chart), watches a
//! running submission turn scored without a reload, checks keyboard access and a phone-sized
//! layout, and runs axe-core (vendored in tests/fixtures/axe) on every page: no serious or
//! critical violation. Screenshots and axe reports go to `$CARGO_TARGET_TMPDIR/pages-browser/`.
//!
//! Skips (with a message) when `chromium` or `chromedriver` is not installed, unless
//! `ASSAY_REQUIRE_BROWSER` is set (CI sets it after installing them), where it fails instead.

mod common;
#[path = "support/browser.rs"]
mod harness;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use assay_pages::{PagesConfig, router};
use fantoccini::{Client, Locator};
use harness::{Browser, Res, axe, shot, text};
use serde_json::json;

async fn wait_text(c: &Client, css: &str, want: &str, limit: Duration) -> Res {
    let start = Instant::now();
    loop {
        if let Ok(e) = c.find(Locator::Css(css)).await
            && e.text().await.is_ok_and(|t| t.contains(want))
        {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(format!("{css} never read {want:?} within {limit:?}").into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn first_row_link(c: &Client) -> Res<String> {
    let a = c.find(Locator::Css("table.board tbody tr a")).await?;
    Ok(a.attr("href").await?.unwrap_or_default())
}

async fn scenario(c: &Client, base: &str, out: &Path) -> Res {
    // Index → board.
    c.goto(&format!("{base}/")).await?;
    assert_eq!(text(c, "h1").await?, "Leaderboards");
    axe(c, out, "index").await?;
    shot(c, out, "index").await?;
    c.find(Locator::Css(".card h2 a")).await?.click().await?;
    wait_text(c, "h1", "PRISM leaderboard", Duration::from_secs(10)).await?;
    let rows = c.find_all(Locator::Css("table.board tbody tr")).await?;
    assert_eq!(rows.len(), 12);
    let crowns = text(c, "section.crowns").await?;
    assert!(crowns.contains("Architecture crown") && crowns.contains("Training crown"));
    // The hostile hotkey is shown as text and ran nothing.
    assert_eq!(
        c.execute("return typeof window.__pwned;", vec![]).await?,
        json!("undefined")
    );
    assert!(text(c, "table.board").await?.contains("<img src=x"));
    axe(c, out, "board").await?;
    shot(c, out, "board").await?;

    // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    c.execute(
        "document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0);",
        vec![],
    )
    .await?;
    c.find(Locator::Css("body"))
        .await?
        .send_keys("\u{e004}")
        .await?;
    let focused = c.active_element().await?;
    assert_eq!(focused.text().await?, "Skip to content");

    // Sorting: score (best first), then again (worst first).
    c.find(Locator::Css("th a[href*='sort=score']"))
        .await?
        .click()
        .await?;
    wait_text(
        c,
        "caption",
        "sorted by score, descending",
        Duration::from_secs(10),
    )
    .await?;
    assert!(first_row_link(c).await?.ends_with("/submission/sub-00"));
    c.find(Locator::Css("th a[href*='sort=score']"))
        .await?
        .click()
        .await?;
    wait_text(
        c,
        "caption",
        "sorted by score, ascending",
        Duration::from_secs(10),
    )
    .await?;
    assert!(first_row_link(c).await?.ends_with("/submission/sub-09"));
    shot(c, out, "board-by-score").await?;

    // Board → the best submission.
    c.goto(&format!("{base}/board/prism")).await?;
    c.find(Locator::Css("table.board tbody tr a"))
        .await?
        .click()
        .await?;
    wait_text(c, "h1", "Submission sub-00", Duration::from_secs(10)).await?;
    assert_eq!(text(c, "#status").await?, "scored");
    assert!(text(c, "#score").await?.starts_with("0.9100"));
    let svg = c.find(Locator::Css("figure.chart svg[role='img']")).await?;
    let label = svg.attr("aria-label").await?.unwrap_or_default();
    assert!(label.contains("bits per byte against step"), "{label}");
    let circles = c.find_all(Locator::Css("figure.chart svg circle")).await?;
    assert_eq!(circles.len(), 100);
    let files = text(c, "ul.files").await?;
    assert!(files.contains("report.json") && files.contains("adapter model.safetensors"));
    axe(c, out, "submission").await?;
    shot(c, out, "submission").await?;

    // Phone width: nothing wider than the screen except inside the scroll boxes.
    c.set_window_size(390, 844).await?;
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await?;
    assert!(
        overflow.as_i64().unwrap_or(999) <= 0,
        "page overflows a phone by {overflow}"
    );
    shot(c, out, "submission-phone").await?;
    c.goto(&format!("{base}/board/prism")).await?;
    let overflow = c
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await?;
    assert!(
        overflow.as_i64().unwrap_or(999) <= 0,
        "board overflows a phone by {overflow}"
    );
    shot(c, out, "board-phone").await?;
    c.set_window_size(1280, 1000).await?;

    // A running submission turns scored without a reload.
    c.goto(&format!("{base}/submission/sub-run")).await?;
    assert_eq!(text(c, "#status").await?, "running");
    c.execute("window.__sameDocument = true;", vec![]).await?;
    shot(c, out, "submission-running").await?;
    wait_text(c, "#status", "scored", Duration::from_secs(20)).await?;
    wait_text(
        c,
        "#live-status",
        "Final result shown.",
        Duration::from_secs(5),
    )
    .await?;
    assert_eq!(
        c.execute("return window.__sameDocument === true;", vec![])
            .await?,
        json!(true)
    );
    assert!(text(c, "#score").await?.starts_with("0.5500"));
    axe(c, out, "submission-live").await?;
    shot(c, out, "submission-live").await?;

    // A rejected submission explains itself.
    c.goto(&format!("{base}/submission/sub-rej")).await?;
    let why = text(c, "section.failure").await?;
    assert!(why.contains("…/private-code.py") && !why.contains("/srv/"));
    assert!(text(c, "ul.findings").await?.contains("97 % similar"));
    axe(c, out, "submission-rejected").await?;
    shot(c, out, "submission-rejected").await?;

    // Round and operator.
    c.goto(&format!("{base}/round/prism/10")).await?;
    assert_eq!(
        c.find_all(Locator::Css("figure.chart svg[role='img']"))
            .await?
            .len(),
        2
    );
    axe(c, out, "round").await?;
    shot(c, out, "round").await?;
    c.goto(&format!("{base}/operator")).await?;
    assert_eq!(text(c, "#queue-depth").await?, "4");
    axe(c, out, "operator").await?;
    shot(c, out, "operator").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pages_work_in_a_real_browser() -> Res {
    let Some((chromium, driver)) = harness::find()? else {
        return Ok(());
    };
    let out = harness::output_folder(Path::new(env!("CARGO_TARGET_TMPDIR")).join("pages-browser"))?;

    // The sixth look at the running submission finds it scored: the page is one, the stream
    // (every 300 ms) the rest, so the browser sees it change after about 1.5 s.
    let fixture = common::Fixture::new(6);
    let app = router(
        Arc::clone(&fixture),
        PagesConfig {
            live_interval: Duration::from_millis(300),
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let browser = Browser::launch(&chromium, &driver, &out).await?;
    let result = scenario(&browser.client, &base, &out).await;
    server.abort();
    browser.finish(result).await
}

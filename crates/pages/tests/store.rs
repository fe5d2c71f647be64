//! The pages over a real SQLite store (feature `store`): submissions go through the queue
//! (claimed, completed, rejected, one left running), weights are recorded, and the board,
//! submission, round and operator pages show them; the miner's uploaded code is never shown
//! nor downloadable.
#![cfg(feature = "store")]

use std::sync::Arc;
use std::time::Duration;

use assay_pages::store::StoreSource;
use assay_pages::{PagesConfig, router};
use assay_store::{Clock, EpochRow, JobSpec, NewSubmission, Store, StoreOptions, SubmissionUpdate};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::json;
use tower::ServiceExt;

const T0: i64 = 1_796_660_000_000;
const CODE: &str = "import torch  # SECRET-CODE of the miner";

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, String) {
    let res = app
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

fn hk(c: char) -> String {
    format!("5{}", c.to_string().repeat(47))
}

#[tokio::test]
async fn pages_over_a_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("assay.sqlite").display());
    let clock = Clock::manual(T0);
    let store = Store::connect_with_clock(&StoreOptions::new(url), clock.clone())
        .await
        .unwrap();
    store
        .ensure_epoch(&EpochRow {
            pipeline: "prism".into(),
            id: 7,
            starts_at: T0,
            ends_at: 0,
            status: "open".into(),
            deadline_block: None,
            seed: None,
        })
        .await
        .unwrap();
    for (id, key) in [
        ("sub-a", 'a'),
        ("sub-b", 'b'),
        ("sub-c", 'c'),
        ("sub-d", 'd'),
    ] {
        clock.advance(Duration::from_secs(60));
        store
            .insert_submission(&NewSubmission {
                id: id.into(),
                pipeline: "prism".into(),
                hotkey: hk(key),
                epoch_id: 7,
                code_hash: "00".repeat(32),
                filename: Some("model.py".into()),
                body: CODE.into(),
                metadata: json!({}),
                job: Some(JobSpec::new("prism.eval", json!({}))),
                nonce: None,
            })
            .await
            .unwrap();
    }
    let lease = Duration::from_secs(60);
    let curve = json!({
        "online_loss": (0..300).map(|i| 3.0 - f64::from(i) / 200.0).collect::<Vec<_>>(),
        "covered_bytes_cumulative": (0..300).map(|i| 4096 * (i + 1)).collect::<Vec<_>>(),
    });
    for (score, flags) in [(0.8, json!(["slow start"])), (0.9, json!([]))] {
        let job = store.claim("gpu-1", lease).await.unwrap().unwrap();
        let update = SubmissionUpdate {
            status: "completed".into(),
            final_score: Some(score),
            error: None,
            result: Some(json!({
                "final_score": score, "bits_per_byte": 1.25, "flags": flags, "curve": curve,
            })),
        };
        store
            .complete(&job, &json!({}), 1000, Some(&update))
            .await
            .unwrap();
    }
    let job = store.claim("gpu-1", lease).await.unwrap().unwrap();
    let rejected = SubmissionUpdate {
        status: "rejected".into(),
        final_score: None,
        error: Some(
            "rejected by PRISM's static gates: the code copies sub-a; it imports os at \
             /tmp/assay-job-3/model.py"
                .into(),
        ),
        result: None,
    };
    store
        .complete(&job, &json!({}), 10, Some(&rejected))
        .await
        .unwrap();
    let _running = store.claim("gpu-7", lease).await.unwrap().unwrap();
    store
        .put_weights("prism", 7, &json!({ hk('b'): 0.6, hk('a'): 0.4 }))
        .await
        .unwrap();

    let app = router(
        Arc::new(StoreSource::new(store.clone())),
        PagesConfig::default(),
    );
    let (status, board) = get(&app, "/board/prism").await;
    assert_eq!(status, StatusCode::OK, "{board}");
    let order: Vec<&str> = board
        .split("<tbody>")
        .nth(1)
        .unwrap()
        .split("href=\"/submission/")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    assert_eq!(order, ["sub-b", "sub-a", "sub-d", "sub-c"]);
    assert!(board.contains("60.0 %</span> <span class=\"unc\">(u16 65535)</span>"));
    assert!(board.contains("40.0 %</span> <span class=\"unc\">(u16 43690)</span>"));
    assert!(board.contains("st-running") && board.contains("st-rejected"));

    let (_, a) = get(&app, "/submission/sub-a").await;
    assert!(a.contains("<dt>Rank</dt><dd>2</dd>"), "{a}");
    assert!(
        a.contains("<svg role=\"img\" aria-label=\"Online loss: online loss against bytes seen")
    );
    assert!(a.contains("slow start"));
    assert!(a.contains("bits per byte"));
    assert!(a.contains("href=\"/submission/sub-a/files/result.json\""));
    let (status, file) = get(&app, "/submission/sub-a/files/result.json").await;
    assert_eq!(status, StatusCode::OK);
    assert!(file.contains("\"final_score\": 0.8"));
    for private in ["model.py", "body", "code"] {
        let (status, _) = get(&app, &format!("/submission/sub-a/files/{private}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{private}");
    }

    let (_, c) = get(&app, "/submission/sub-c").await;
    assert!(c.contains("st-rejected"));
    assert!(c.contains("Reason for rejection: </strong>the code copies sub-a"));
    assert!(c.contains("…/model.py") && !c.contains("/tmp/assay-job"));

    let (_, d) = get(&app, "/submission/sub-d").await;
    assert!(d.contains("st-running") && d.contains("on worker gpu-7"));
    assert!(d.contains("data-live=\"/submission/sub-d/events?v="));

    let (_, round) = get(&app, "/round/prism").await;
    assert!(round.contains("PRISM, round 7"));
    assert!(round.contains("href=\"/submission/sub-b\""));
    assert!(round.contains("the code copies sub-a"));

    let (_, op) = get(&app, "/operator").await;
    assert!(op.contains("<dd id=\"queue-depth\">0</dd>"));
    assert!(op.contains("Jobs running</dt><dd>1</dd>"));
    assert!(op.contains("<th scope=\"row\">gpu-7</th>"));

    let (_, index) = get(&app, "/").await;
    assert!(index.contains("4 on the board"));
    for page in [&board, &a, &c, &d, &round, &op, &index] {
        assert!(!page.contains("SECRET-CODE"));
    }
}

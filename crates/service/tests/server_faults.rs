//! `kill -9` of the server in the middle of an upload: every submission it acknowledged is
//! still there after a restart, the half-sent one left no trace (its nonce is still usable), and
//! each accepted submission has exactly one job.

mod common;

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use assay_service::auth::Signer;
use assay_store::{Backend, Clock};
use common::{Db, fresh, http, sim_exe, wait_for};
use serde_json::json;

fn start_server(db: &Db, port_file: &std::path::Path) -> (Child, String) {
    let _ = std::fs::remove_file(port_file);
    let child = Command::new(sim_exe())
        .arg("serve")
        .args(db.args())
        .args([
            "--addr",
            "127.0.0.1:0",
            "--token",
            "t",
            "--no-rate-limit",
            "--port-file",
            port_file.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while !port_file.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let addr = std::fs::read_to_string(port_file).unwrap();
    (child, addr)
}

fn signed_headers(signer: &Signer, nonce: &str, body: &[u8]) -> Vec<(&'static str, String)> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut headers: Vec<(&'static str, String)> = signer
        .headers("prism", nonce, now, body)
        .into_iter()
        .collect();
    headers.push(("content-type", "application/json".into()));
    headers
}

async fn server_killed_mid_upload(backend: Backend) {
    let db = fresh(backend, Clock::system()).await;
    let port_file = db.dir.path().join("port");
    let (mut server, addr) = start_server(&db, &port_file);
    let signer = Signer::from_seed([42; 32]);
    let mut accepted = Vec::new();
    for i in 0..5 {
        let body = json!({ "code": format!("print({i})"), "filename": "model.py" }).to_string();
        let (status, text) = http(
            &addr,
            "POST",
            "/v1/submissions",
            &signed_headers(&signer, &format!("n{i}"), body.as_bytes()),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(status, 200, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        accepted.push(v["id"].as_str().unwrap().to_string());
    }
    // Half an upload: headers and part of the body, then the server dies.
    let body = json!({ "code": "print('half')", "filename": "model.py" }).to_string();
    let headers = signed_headers(&signer, "half", body.as_bytes());
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    let mut head = format!(
        "POST /v1/submissions HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    drop(stream);

    let (mut server, addr) = start_server(&db, &port_file);
    for id in &accepted {
        let (status, text) =
            http(&addr, "GET", &format!("/v1/submissions/{id}"), &[], b"").unwrap();
        assert_eq!(status, 200, "acknowledged submission {id} lost: {text}");
    }
    assert_eq!(
        db.store.submission_count().await.unwrap(),
        5,
        "the half upload left nothing"
    );
    let jobs = db.store.recent_jobs(100).await.unwrap();
    assert_eq!(jobs.len(), 5, "one job per accepted submission");
    // The half upload's nonce was never spent: the miner can retry it.
    let (status, text) = http(&addr, "POST", "/v1/submissions", &headers, body.as_bytes()).unwrap();
    assert_eq!(status, 200, "{text}");
    let (status, _) = http(&addr, "POST", "/v1/submissions", &headers, body.as_bytes()).unwrap();
    assert_eq!(status, 409);
    server.kill().unwrap();
    server.wait().unwrap();
    let store = db.store.clone();
    assert!(
        wait_for(Duration::from_secs(1), || {
            let s = store.clone();
            async move { s.submission_count().await.unwrap() == 6 }
        })
        .await
    );
    db.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_upload_sqlite() {
    server_killed_mid_upload(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_upload_postgres() {
    server_killed_mid_upload(Backend::Postgres).await;
}

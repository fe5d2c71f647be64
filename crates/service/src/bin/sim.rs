//! `assay-service-sim`: the service with only the built-in job handlers (simulated jobs and
//! weights), for the fault and scale tests and the benchmark, which kill and restart real
//! processes. Operators run `assay serve` / `assay worker` instead.
//!
//! ```text
//! assay-service-sim child
//! assay-service-sim worker --db URL [--pg-schema S] [--lease-ms N] [--heartbeat-ms N] [--poll-ms N]
//!                          [--memory-mb N] [--id NAME] [--exit-when-idle]
//! assay-service-sim serve  --db URL [--pg-schema S] [--addr HOST:PORT] [--token T] [--port-file F]
//!                          [--no-rate-limit] [--validator HOTKEY]...
//! ```

use std::ffi::OsString;
use std::time::Duration;

use assay_service::api::{AppState, ServiceConfig, serve};
use assay_service::handler::{Handlers, child_main};
use assay_service::worker::{WorkerSettings, run_worker};
use assay_store::{Store, StoreOptions};

fn usage(message: &str) -> ! {
    eprintln!(
        "assay-service-sim: {message}\nusage: assay-service-sim child | worker --db URL [...] | serve --db URL [...]"
    );
    std::process::exit(2)
}

struct Args {
    rest: Vec<String>,
}

impl Args {
    fn value(&mut self, flag: &str) -> Option<String> {
        let i = self.rest.iter().position(|a| a == flag)?;
        if i + 1 >= self.rest.len() {
            usage(&format!("{flag} needs a value"));
        }
        let v = self.rest.remove(i + 1);
        self.rest.remove(i);
        Some(v)
    }

    fn values(&mut self, flag: &str) -> Vec<String> {
        std::iter::from_fn(|| self.value(flag)).collect()
    }

    fn flag(&mut self, flag: &str) -> bool {
        match self.rest.iter().position(|a| a == flag) {
            Some(i) => {
                self.rest.remove(i);
                true
            }
            None => false,
        }
    }

    fn number(&mut self, flag: &str) -> Option<u64> {
        self.value(flag).map(|v| {
            v.parse()
                .unwrap_or_else(|_| usage(&format!("{flag} takes a number")))
        })
    }
}

fn main() {
    let mut all: Vec<String> = std::env::args().skip(1).collect();
    if all.is_empty() {
        usage("missing command");
    }
    let command = all.remove(0);
    if command == "child" {
        std::process::exit(child_main(&Handlers::builtin()));
    }
    let mut args = Args { rest: all };
    let db = args
        .value("--db")
        .unwrap_or_else(|| usage("--db is required"));
    let mut options = StoreOptions::new(db);
    options.pg_schema = args.value("--pg-schema");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let code = runtime.block_on(async move {
        let store = match Store::connect(&options).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}", assay_errors::chain(&e));
                return 1;
            }
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .expect("SIGTERM handler");
            term.recv().await;
            let _ = tx.send(true);
        });
        match command.as_str() {
            "worker" => {
                let exe: OsString = std::env::current_exe().expect("own path").into();
                let mut settings = WorkerSettings::new(vec![exe, "child".into()]);
                if let Some(ms) = args.number("--lease-ms") {
                    settings.lease = Duration::from_millis(ms);
                }
                settings.heartbeat = args
                    .number("--heartbeat-ms")
                    .map_or(settings.lease / 3, Duration::from_millis);
                if let Some(ms) = args.number("--poll-ms") {
                    settings.poll = Duration::from_millis(ms);
                }
                if let Some(ms) = args.number("--retry-ms") {
                    settings.retry_delay = Duration::from_millis(ms);
                }
                settings.memory_limit = args.number("--memory-mb").map(|mb| mb << 20);
                if let Some(id) = args.value("--id") {
                    settings.id = id;
                }
                settings.exit_when_idle = args.flag("--exit-when-idle");
                if let Some(ms) = args.number("--drain-ms") {
                    settings.drain_timeout = Duration::from_millis(ms);
                }
                match run_worker(&store, &settings, rx).await {
                    Ok(report) => {
                        println!(
                            "{}",
                            serde_json::json!({
                                "completed": report.completed, "failed": report.failed,
                                "lease_lost": report.lease_lost, "released": report.released,
                            })
                        );
                        0
                    }
                    Err(e) => {
                        eprintln!("{}", assay_errors::chain(&e));
                        1
                    }
                }
            }
            "serve" => {
                let addr = args.value("--addr").unwrap_or_else(|| "127.0.0.1:0".into());
                let addr = addr
                    .parse()
                    .unwrap_or_else(|_| usage("--addr takes HOST:PORT"));
                let mut config = ServiceConfig {
                    internal_token: args.value("--token").unwrap_or_default(),
                    ..ServiceConfig::default()
                };
                config.prism_job.kind = "sim".into();
                if args.flag("--no-rate-limit") {
                    config.rate_per_minute = None;
                }
                config.validator_hotkeys = args.values("--validator").into_iter().collect();
                let port_file = args.value("--port-file");
                let (bound_tx, bound_rx) = tokio::sync::oneshot::channel::<std::net::SocketAddr>();
                tokio::spawn(async move {
                    if let Ok(addr) = bound_rx.await
                        && let Some(path) = port_file
                    {
                        let tmp = format!("{path}.tmp");
                        let _ = std::fs::write(&tmp, addr.to_string())
                            .and_then(|()| std::fs::rename(&tmp, &path));
                    }
                });
                match serve(AppState::new(store, config), addr, rx, Some(bound_tx)).await {
                    Ok(()) => 0,
                    Err(e) => {
                        eprintln!("{}", assay_errors::chain(&e));
                        1
                    }
                }
            }
            other => usage(&format!("unknown command {other:?}")),
        }
    });
    std::process::exit(code);
}

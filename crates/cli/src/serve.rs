//! NOT YET WIRED: registered in main.rs by the lead after `cargo check -p assay-cli` (see the
//! service helper's report); needs assay-service, assay-store, assay-errors and tokio in
//! crates/cli/Cargo.toml.
//!
//! `assay serve`: the validator's HTTP intake, schedules and (optionally) local workers.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use assay_service::api::{AppState, ServiceConfig, serve};
use assay_service::schedule::{self, BlockFile};
use assay_service::worker::{WorkerSettings, run_worker};
use assay_store::{Store, StoreOptions};

/// `assay serve` arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  assay serve --token $TOKEN                                   # SQLite under ./assay-data, port 8080
  assay serve --db postgres://postgres@127.0.0.1:5432/assay --token $TOKEN --addr 0.0.0.0:8080
  assay serve --block-file blocks.jsonl --sn37-competition 4 --datacomp-round-blocks 7200 --workers 1

Miners sign requests as for PRISM (X-Hotkey, X-Signature, X-Nonce, X-Timestamp). The operator's
chain client posts blocks and commitments to /internal/v1/chain/* with `Authorization: Bearer
TOKEN` (or appends blocks to --block-file). Run `assay worker --db ...` on each GPU host; the API
is described at /openapi.json, metrics at /metrics.")]
pub struct ServeArgs {
    /// The database: `sqlite:PATH` or `postgres://user@host:port/db`. Default: SQLite in
    /// ./assay-data/assay.sqlite3 (created).
    #[arg(long, env = "ASSAY_DB")]
    pub db: Option<String>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Bearer token of the internal routes (empty: internal routes refuse every request).
    #[arg(
        long,
        env = "ASSAY_INTERNAL_TOKEN",
        default_value = "",
        hide_env_values = true
    )]
    pub token: String,
    /// A validator hotkey (refused as a miner); repeat for several.
    #[arg(long = "validator")]
    pub validators: Vec<String>,
    /// PRISM epoch length in seconds.
    #[arg(long, default_value_t = 21_600)]
    pub epoch_seconds: i64,
    /// A JSONL file of blocks (`{"number": N, "hash": "0x…"}` a line), polled every second.
    #[arg(long)]
    pub block_file: Option<PathBuf>,
    /// An SN37 competition id evaluated every sync block; repeat for several.
    #[arg(long = "sn37-competition")]
    pub sn37_competitions: Vec<i64>,
    /// Datacomp round length in blocks (0: no Datacomp rounds).
    #[arg(long, default_value_t = 0)]
    pub datacomp_round_blocks: i64,
    /// Signed submissions one hotkey may make per minute.
    #[arg(long, default_value_t = 60)]
    pub rate_per_minute: u32,
    /// No per-hotkey rate limit (load tests).
    #[arg(long)]
    pub no_rate_limit: bool,
    /// Also run this many workers in this process (CPU; GPU hosts run `assay worker`).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
}

/// Serves until SIGTERM / Ctrl-C.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let db = match args.db.clone() {
        Some(db) => db,
        None => {
            let dir = PathBuf::from("assay-data");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            format!("sqlite:{}", dir.join("assay.sqlite3").display())
        }
    };
    let mut config = ServiceConfig {
        internal_token: args.token.clone(),
        validator_hotkeys: args.validators.iter().cloned().collect(),
        epoch_seconds: args.epoch_seconds.max(1),
        rate_per_minute: (!args.no_rate_limit).then_some(args.rate_per_minute),
        ..ServiceConfig::default()
    };
    config.schedule.sn37_competitions = args.sn37_competitions.clone();
    config.schedule.datacomp_round_blocks = args.datacomp_round_blocks.max(0);
    if config.internal_token.is_empty() {
        tracing::warn!("no --token: the internal routes (get_weights, chain) refuse every request");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = Store::connect(&StoreOptions::new(&db)).await?;
        let shutdown = crate::worker::shutdown_signal();
        let state = AppState::new(store.clone(), config);
        let mut tasks = Vec::new();
        if let Some(path) = args.block_file.clone() {
            tasks.push(tokio::spawn(follow_blocks(
                state.clone(),
                path,
                shutdown.clone(),
            )));
        }
        for n in 0..args.workers {
            let exe: OsString = std::env::current_exe()?.into();
            let mut settings = WorkerSettings::new(vec![exe, "job-child".into()]);
            settings.id = format!("{}-local{n}", settings.id);
            settings.device = Some("cpu".into());
            let (store, rx) = (store.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = run_worker(&store, &settings, rx).await {
                    tracing::error!(error = %assay_errors::chain(&e), "local worker stopped");
                }
            }));
        }
        serve(state, args.addr, shutdown, None).await?;
        for t in tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        Ok(())
    })
}

async fn follow_blocks(
    state: Arc<AppState>,
    path: PathBuf,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut file = BlockFile::new(path);
    loop {
        match file.poll() {
            Ok(blocks) => {
                for block in blocks {
                    let result = async {
                        state.store.insert_block(&block).await?;
                        schedule::on_block(&state.store, &state.config.schedule, &block).await
                    }
                    .await;
                    if let Err(e) = result {
                        tracing::warn!(block = block.number, error = %assay_errors::chain(&e), "block not processed");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %assay_errors::chain(&e), "block file"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.changed() => break,
        }
    }
}

//! `assay serve`: the validator's HTTP intake, schedules and (optionally) local workers;
//! `assay serve --demo`: all of it on the embedded defaults, fed the shipped examples.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use assay_service::api::{AppState, ServiceConfig, serve};
use assay_service::loopback::request;
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
  assay serve --demo                  # SQLite in ./assay-demo, one CPU worker, the examples submitted

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
    /// Completion tokens of each Datacomp miner's fine-tune (the same for every miner).
    #[arg(long)]
    pub datacomp_token_budget: Option<usize>,
    /// Generated held-out problems of each Datacomp round.
    #[arg(long)]
    pub datacomp_eval_problems: Option<usize>,
    /// Greedy tokens per Datacomp evaluation answer (0: reference loss only, no generation).
    #[arg(long)]
    pub datacomp_max_new_tokens: Option<usize>,
    /// A local validator on the embedded defaults: SQLite under --data-dir, one CPU worker,
    /// Datacomp rounds of 10 blocks and SN37's TINY_DEMO competition, fed the shipped examples
    /// (examples/datacomp, examples/sn37) through the signed API; open the printed URL.
    #[arg(long)]
    pub demo: bool,
    /// The demo's data folder (its database and SN37 state).
    #[arg(long, default_value = "assay-demo")]
    pub data_dir: PathBuf,
    /// The examples folder the demo submits from (default: ./examples, else the source tree's).
    #[arg(long)]
    pub examples: Option<PathBuf>,
}

/// The block the demo's submissions arrive at, and the one that closes its round (the SN37 sync
/// block 4 × 360 with genesis 0, more than TINY_DEMO's 100-block evaluation delay later).
const DEMO_BLOCKS: [i64; 2] = [1000, 1440];
/// SN37's TINY_DEMO competition (crates/sn37/competitions/tiny.toml), the examples' models.
const DEMO_SN37_COMPETITION: i64 = 100;

/// What the demo submits: Datacomp's example round and SN37's example models.
struct DemoSubmissions {
    /// `(miner name, JSONL)` in the order of examples/datacomp/round.json.
    datacomp: Vec<(String, String)>,
    /// `(miner name, content hash)` of examples/sn37/models/*.
    sn37: Vec<(String, String)>,
    /// examples/sn37/models and examples/sn37/data, when present.
    sn37_dirs: Option<(PathBuf, PathBuf)>,
}

fn demo_examples(args: &ServeArgs) -> anyhow::Result<(PathBuf, DemoSubmissions)> {
    let dir = match &args.examples {
        Some(dir) => dir.clone(),
        None => [
            PathBuf::from("examples"),
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples"),
        ]
        .into_iter()
        .find(|d| d.join("datacomp/round.json").is_file())
        .context(
            "the demo submits the shipped examples: run it from the repository root or pass \
             --examples PATH/TO/examples",
        )?,
    };
    let round = dir.join("datacomp/round.json");
    let text = std::fs::read_to_string(&round)
        .with_context(|| format!("cannot read {}", round.display()))?;
    let manifest = assay_datacomp::Manifest::parse(&text, &round)?;
    let mut datacomp = Vec::new();
    for m in &manifest.miners {
        let path = dir.join("datacomp").join(&m.file);
        let data = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        datacomp.push((m.hotkey.clone(), data));
    }
    let models = dir.join("sn37/models");
    let data = dir.join("sn37/data");
    let mut sn37 = Vec::new();
    if models.is_dir() && data.is_dir() {
        for folder in assay_sn37::submission::submission_dirs(&models)? {
            let metadata = assay_sn37::submission::read_metadata(&folder)?;
            let name = folder
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            sn37.push((name, metadata.content_hash));
        }
    }
    let sn37_dirs = (!sn37.is_empty()).then_some((models, data));
    Ok((
        dir,
        DemoSubmissions {
            datacomp,
            sn37,
            sn37_dirs,
        },
    ))
}

/// The demo miner's key: derived from its example name, so reruns give the same hotkeys.
fn demo_signer(name: &str) -> assay_service::auth::Signer {
    let mut seed = [0u8; 32];
    for (i, b) in format!("assay demo miner {name}").bytes().enumerate() {
        seed[i % 32] = seed[i % 32].wrapping_mul(31).wrapping_add(b);
    }
    assay_service::auth::Signer::from_seed(seed)
}

/// Feeds the demo: a block, every example as a signed submission, then the block that closes
/// the Datacomp round and starts SN37's evaluation. Nothing is resubmitted into a database that
/// already holds the demo's submissions.
fn seed_demo(addr: SocketAddr, token: &str, demo: &DemoSubmissions) -> anyhow::Result<()> {
    let bearer = [("authorization", format!("Bearer {token}"))];
    let block = |n: i64| -> anyhow::Result<()> {
        let body = serde_json::json!({ "number": n, "hash": format!("0x{n:064x}") }).to_string();
        let (status, text) = request(
            addr,
            "POST",
            "/internal/v1/chain/blocks",
            &bearer,
            body.as_bytes(),
        )?;
        anyhow::ensure!(status == 200, "posting block {n}: {status} {text}");
        Ok(())
    };
    block(DEMO_BLOCKS[0])?;
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    };
    let submit = |name: &str, path: &str, scope: &str, body: String| -> anyhow::Result<()> {
        let signer = demo_signer(name);
        let nonce = format!("demo-{scope}-{name}");
        let headers = signer.headers(scope, &nonce, now(), body.as_bytes());
        let (status, text) = request(addr, "POST", path, &headers, body.as_bytes())?;
        // 409: already submitted by an earlier run of the demo on this data folder.
        anyhow::ensure!(
            status == 200 || status == 409,
            "submitting {scope} example {name}: {status} {text}"
        );
        Ok(())
    };
    for (name, data) in &demo.datacomp {
        let body = serde_json::json!({ "filename": format!("{name}.jsonl"), "data": data });
        submit(
            name,
            "/v1/datacomp/submissions",
            "datacomp",
            body.to_string(),
        )?;
    }
    for (name, hash) in &demo.sn37 {
        let body = serde_json::json!({
            "competition_id": DEMO_SN37_COMPETITION, "repo": format!("demo/{name}"),
            "revision": "main", "hash": hash,
        });
        submit(name, "/v1/sn37/submissions", "sn37", body.to_string())?;
    }
    block(DEMO_BLOCKS[1])?;
    Ok(())
}

/// Serves until SIGTERM / Ctrl-C.
pub fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    let mut demo = None;
    let mut child_env: Vec<(OsString, OsString)> = Vec::new();
    if args.demo {
        let (examples, submissions) = demo_examples(&args)?;
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        if args.db.is_none() {
            args.db = Some(format!(
                "sqlite:{}",
                args.data_dir.join("assay.sqlite3").display()
            ));
        }
        if args.token.is_empty() {
            use rand::RngCore as _;
            let mut bytes = [0u8; 16];
            rand::rng().fill_bytes(&mut bytes);
            args.token = bytes.iter().map(|b| format!("{b:02x}")).collect();
        }
        args.workers = args.workers.max(1);
        args.no_rate_limit = true;
        if args.datacomp_round_blocks == 0 {
            args.datacomp_round_blocks = 10;
        }
        // Small CPU budgets, so the demo's five miners are scored in minutes.
        args.datacomp_token_budget = args.datacomp_token_budget.or(Some(300));
        args.datacomp_eval_problems = args.datacomp_eval_problems.or(Some(4));
        args.datacomp_max_new_tokens = args.datacomp_max_new_tokens.or(Some(0));
        if let Some((models, data)) = &submissions.sn37_dirs {
            args.sn37_competitions = vec![DEMO_SN37_COMPETITION];
            let absolute = |p: &PathBuf| std::path::absolute(p).unwrap_or_else(|_| p.clone());
            child_env.push(("ASSAY_SN37_MODELS".into(), absolute(models).into()));
            child_env.push(("ASSAY_SN37_DATA".into(), absolute(data).into()));
            child_env.push((
                "ASSAY_SN37_STATE".into(),
                absolute(&args.data_dir.join("sn37-state")).into(),
            ));
        }
        eprintln!("demo: examples from {}", examples.display());
        demo = Some(submissions);
    }
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
    if let Some(n) = args.datacomp_token_budget {
        config.schedule.datacomp.token_budget = n.max(1);
    }
    if let Some(n) = args.datacomp_eval_problems {
        config.schedule.datacomp.eval_problems = n.max(1);
    }
    if let Some(n) = args.datacomp_max_new_tokens {
        config.schedule.datacomp.max_new_tokens = n;
        config.schedule.datacomp.generate = n > 0;
    }
    if demo.is_some() {
        // The demo's chain starts at block 0, so SN37's sync blocks are multiples of 360.
        config.schedule.sn37_genesis_block = 0;
    }
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
            settings.env = child_env.clone();
            let (store, rx) = (store.clone(), shutdown.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = run_worker(&store, &settings, rx).await {
                    tracing::error!(error = %assay_errors::chain(&e), "local worker stopped");
                }
            }));
        }
        let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
        let token = args.token.clone();
        tasks.push(tokio::spawn(async move {
            let Ok(addr) = bound_rx.await else { return };
            println!("assay serve: listening on http://{addr}/");
            let Some(demo) = demo else { return };
            let fed = tokio::task::spawn_blocking(move || seed_demo(addr, &token, &demo)).await;
            match fed {
                Ok(Ok(())) => println!(
                    "demo: the examples are submitted; the leaderboards fill as the worker \
                     scores them: http://{addr}/board/datacomp and http://{addr}/board/sn37"
                ),
                Ok(Err(e)) => eprintln!("demo: submitting the examples failed: {e:#}"),
                Err(e) => eprintln!("demo: submitting the examples failed: {e}"),
            }
        }));
        serve(state, args.addr, shutdown, Some(bound_tx)).await?;
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

//! The browser harness the browser tests share: the pages' own (`crates/pages/tests/browser.rs`,
//! fixture data) and the one through the real `assay serve` (`crates/cli/tests/service.rs`), which
//! includes this file with `#[path]`. Debian's headless `chromium` driven through `chromedriver`
//! by fantoccini, with the flags that work on our machines (spec interop.md §5); axe-core
//! (vendored in `tests/fixtures/axe`) for accessibility; screenshots beside the axe reports.
//!
//! [`find`] decides whether the test runs: without `chromium` and `chromedriver` it skips with a
//! message, unless `ASSAY_REQUIRE_BROWSER` is set (CI sets it after installing them), where it
//! fails instead.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// A browser test's result: any error ends it with its message.
pub type Res<T = ()> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

const AXE: &str = include_str!("../fixtures/axe/axe.min.js");

/// The flags that work on our machines, plus a window size.
const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
];

/// The installed `chromium` and `chromedriver`; `Ok(None)` when the test should skip (it has
/// printed why), an error when a browser is required but missing.
pub fn find() -> Res<Option<(PathBuf, PathBuf)>> {
    let which = |name: &str| -> Option<PathBuf> {
        std::env::var_os("PATH")?
            .to_str()?
            .split(':')
            .map(|d| Path::new(d).join(name))
            .find(|p| p.is_file())
    };
    if let (Some(chromium), Some(driver)) = (which("chromium"), which("chromedriver")) {
        return Ok(Some((chromium, driver)));
    }
    let msg = "browser test: Debian's `chromium` and `chromium-driver` are not installed \
               (apt-get install -y chromium chromium-driver)";
    if std::env::var_os("ASSAY_REQUIRE_BROWSER").is_some() {
        return Err(format!("{msg}, and ASSAY_REQUIRE_BROWSER is set").into());
    }
    eprintln!("SKIPPED {msg}");
    Ok(None)
}

/// An empty folder for a test's screenshots and axe reports (emptied if an earlier run left one).
pub fn output_folder(path: PathBuf) -> Res<PathBuf> {
    let _ = std::fs::remove_dir_all(&path);
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

/// chromedriver, ended when dropped.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A headless chromium session; its chromedriver (logging to `out/chromedriver.log`) and its
/// throw-away profile live as long as it does.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    out: PathBuf,
    _driver: Driver,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits for it to listen, and opens a session.
    pub async fn launch(chromium: &Path, driver: &Path, out: &Path) -> Res<Browser> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(out.join("chromedriver.log"))?;
        let driver = Driver(
            Command::new(driver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::from(log.try_clone()?))
                .stderr(Stdio::from(log))
                .spawn()?,
        );
        let start = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if start.elapsed() > Duration::from_secs(20) {
                return Err(format!("chromedriver did not listen on {port} within 20 s").into());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir()?;
        let mut args: Vec<String> = FLAGS.iter().map(|s| s.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await?;
        Ok(Browser {
            client,
            out: out.to_path_buf(),
            _driver: driver,
            _profile: profile,
        })
    }

    /// Ends the session after a scenario: a `failure` screenshot first if it failed; says where
    /// the screenshots and axe reports are.
    pub async fn finish(self, result: Res) -> Res {
        if result.is_err() {
            let _ = shot(&self.client, &self.out, "failure").await;
        }
        self.client.close().await?;
        eprintln!("screenshots and axe reports: {}", self.out.display());
        result
    }
}

/// Injects axe-core, runs it, writes its violations to `out/axe-NAME.json` (and prints them), and
/// fails on any serious or critical one.
pub async fn axe(c: &Client, out: &Path, name: &str) -> Res {
    c.execute(&format!("{AXE}\n;window.axe = axe; return true;"), vec![])
        .await?;
    let report = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] })
               .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) }))))
               .catch(e => done([{ id: 'axe-error', impact: 'critical', help: String(e), nodes: [] }]));",
            vec![],
        )
        .await?;
    std::fs::write(
        out.join(format!("axe-{name}.json")),
        serde_json::to_string_pretty(&report)?,
    )?;
    let list = report.as_array().cloned().unwrap_or_default();
    for v in &list {
        eprintln!(
            "axe {name}: {} ({}) {} at {}",
            v["id"], v["impact"], v["help"], v["nodes"]
        );
    }
    let bad: Vec<&Value> = list
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .collect();
    if !bad.is_empty() {
        return Err(format!("axe on {name}: serious violations {bad:?}").into());
    }
    Ok(())
}

/// Saves a screenshot as `out/NAME.png`.
pub async fn shot(c: &Client, out: &Path, name: &str) -> Res {
    std::fs::write(out.join(format!("{name}.png")), c.screenshot().await?)?;
    Ok(())
}

/// The text of the first element matching `css`.
pub async fn text(c: &Client, css: &str) -> Res<String> {
    Ok(c.find(Locator::Css(css)).await?.text().await?)
}

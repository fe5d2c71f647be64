//! Progress for people and for logs: a bar on a terminal, `tracing` lines without one.
//!
//! A round under cron or systemd has no terminal, and a bar that draws nowhere leaves its log empty
//! for minutes. [`Progress`] draws an indicatif bar when stderr is a terminal, and otherwise logs a
//! line (stage, position, rate, ETA and the latest message) at most every [`LOG_EVERY`] and at the
//! end, through `tracing`, so `--log-format json` makes them JSON records for a collector.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The longest a non-terminal run stays silent while a stage moves.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

/// One stage's progress (a bar or log lines; see the module docs).
pub struct Progress {
    stage: String,
    unit: &'static str,
    bar: Option<ProgressBar>,
    len: u64,
    pos: u64,
    message: String,
    started: Instant,
    last_log: Instant,
}

impl Progress {
    /// A stage of `len` units (0 when unknown yet: see [`Progress::set_length`]).
    pub fn new(stage: impl Into<String>, len: u64, unit: &'static str) -> Self {
        let stage = stage.into();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(len);
            let template = format!(
                "{{spinner}} {stage} [{{elapsed_precise}}] {{bar:30}} {{pos}}/{{len}} {unit} \
                 ({{per_sec}}, eta {{eta}}) {{msg}}"
            );
            // The template is ours and fixed; a bad one would be a bug caught by the tests.
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        if bar.is_none() {
            tracing::info!(stage = %stage, total = len, unit, "started");
        }
        let now = Instant::now();
        Self {
            stage,
            unit,
            bar,
            len,
            pos: 0,
            message: String::new(),
            started: now,
            last_log: now,
        }
    }

    /// A spinner-like stage with no count (loading a model, say).
    pub fn spinner(stage: impl Into<String>) -> Self {
        Self::new(stage, 0, "")
    }

    /// Sets the total once it is known.
    pub fn set_length(&mut self, len: u64) {
        self.len = len;
        if let Some(bar) = &self.bar {
            bar.set_length(len);
        }
    }

    /// Moves to `pos` units done.
    pub fn set_position(&mut self, pos: u64) {
        self.pos = pos;
        if let Some(bar) = &self.bar {
            bar.set_position(pos);
        }
        self.maybe_log();
    }

    /// Adds `n` units done.
    pub fn inc(&mut self, n: u64) {
        self.set_position(self.pos + n);
    }

    /// Sets the text shown beside the bar (the current miner, the loss, ...).
    pub fn set_message(&mut self, message: impl Into<String>) {
        self.message = message.into();
        if let Some(bar) = &self.bar {
            bar.set_message(self.message.clone());
        }
    }

    /// Ends the stage: clears the bar, or logs the last line with the time it took.
    pub fn finish(self) {
        match &self.bar {
            Some(bar) => bar.finish_and_clear(),
            None => tracing::info!(
                stage = %self.stage,
                done = self.pos,
                total = self.len,
                unit = self.unit,
                seconds = format_args!("{:.1}", self.started.elapsed().as_secs_f64()),
                detail = %self.message,
                "finished"
            ),
        }
    }

    fn maybe_log(&mut self) {
        if self.bar.is_some() || self.last_log.elapsed() < LOG_EVERY {
            return;
        }
        self.last_log = Instant::now();
        let elapsed = self.started.elapsed().as_secs_f64();
        let rate = self.pos as f64 / elapsed.max(1e-9);
        let eta = (self.len > self.pos && rate > 0.0)
            .then(|| format!("{:.0}s", (self.len - self.pos) as f64 / rate))
            .unwrap_or_else(|| "?".into());
        tracing::info!(
            stage = %self.stage,
            done = self.pos,
            total = self.len,
            unit = self.unit,
            rate = format_args!("{rate:.2}/s"),
            eta = %eta,
            detail = %self.message,
            "progress"
        );
    }
}

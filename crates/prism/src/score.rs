//! PRISM's scoring, all arithmetic on the Rust side: the byte-level train stream with its
//! budgets, the prequential accumulator, held-out chunks and bpb, the gap penalty, the step-0
//! check and `final_score` (container.py `_OnlineLossCapture`, heldout.py, scoring.py).

use std::f64::consts::LN_2;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::data::{DataError, Documents};

/// Step-0 loss below this fraction of ln V is the smuggled-weights anomaly.
pub const STEP0_ANOMALY_FRACTION: f64 = 0.5;
/// A non-finite batch loss counts as this multiple of ln V.
pub const WORST_CASE_LOSS_MULTIPLIER: f64 = 2.0;
/// bpb above this is kept but flagged `bpb_out_of_band`.
pub const BPB_SANE_MAX: f64 = 64.0;
/// Most the held-out delta can add to `final_score`.
pub const HELDOUT_DELTA_TIE_BREAK_WEIGHT: f64 = 1e-3;
/// bpb band within which the held-out delta may reorder submissions.
pub const HELDOUT_DELTA_BPB_EPSILON: f64 = 5e-3;
/// A val-minus-train gap above this many bpb flags memorisation.
pub const MEMORIZATION_GAP_THRESHOLD_BPB: f64 = 1.0;
/// Score factor for a memorisation flag.
pub const MEMORIZATION_PENALTY_FACTOR: f64 = 0.5;
/// Rows per held-out chunk.
pub const HELDOUT_BATCH_SIZE: usize = 8;
/// Bytes of val (and of train, for the converged train bpb) scored by the held-out step.
pub const HELDOUT_BYTE_BUDGET: usize = 65_536;

/// Why the single-pass stream stopped, first reached wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// `token_budget` tokens consumed.
    TokenBudget,
    /// `step_budget` batches handed out.
    StepBudget,
    /// `budget_seconds` elapsed since iteration began (graceful stop).
    WallClock,
    /// The split ran out.
    DataExhausted,
}

/// Budgets of the stream; `None` means unbounded.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Budgets {
    /// Most tokens (bytes) consumed.
    pub token_budget: Option<u64>,
    /// Most batches.
    pub step_budget: Option<u64>,
    /// Graceful wall-clock stop, seconds from the first batch request.
    pub budget_seconds: Option<f64>,
}

/// One batch of byte tokens, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Rows (the miner's batch size, or 1 for the trailing partial batch).
    pub rows: usize,
    /// Columns (the sequence length, or the partial length).
    pub cols: usize,
    /// `rows * cols` token ids, already reduced mod the vocabulary size.
    pub tokens: Vec<u32>,
}

impl Batch {
    /// Positions the next-token loss predicts: `rows * (cols - 1)`.
    pub fn predicted(&self) -> u64 {
        (self.rows * self.cols.saturating_sub(1)) as u64
    }
}

/// The train split as PRISM's instrument hands it out: UTF-8 bytes of the documents
/// concatenated without separators, cut into `batch_size x seq_len` batches, single pass, with
/// the budgets checked before every token and after every batch.
pub struct TrainStream {
    docs: Documents,
    pending: std::vec::IntoIter<u8>,
    buffer: Vec<u8>,
    vocab_size: u32,
    budgets: Budgets,
    started: Option<Instant>,
    /// Seconds on the clock before this stream started (a resumed run's earlier part).
    clock_offset: f64,
    /// Tokens taken from the split.
    pub consumed_tokens: u64,
    /// Batches handed out.
    pub consumed_batches: u64,
    /// Documents opened.
    pub consumed_documents: u64,
    /// Set once the stream has ended.
    pub stopped_reason: Option<StopReason>,
}

impl TrainStream {
    /// A stream over `docs`; ids are bytes mod `vocab_size`.
    pub fn new(docs: Documents, vocab_size: u32, budgets: Budgets) -> Self {
        Self {
            docs,
            pending: Vec::new().into_iter(),
            buffer: Vec::new(),
            vocab_size: vocab_size.max(2),
            budgets,
            started: None,
            clock_offset: 0.0,
            consumed_tokens: 0,
            consumed_batches: 0,
            consumed_documents: 0,
            stopped_reason: None,
        }
    }

    fn budget_reason(&self) -> Option<StopReason> {
        let b = &self.budgets;
        if b.token_budget.is_some_and(|t| self.consumed_tokens >= t) {
            return Some(StopReason::TokenBudget);
        }
        if b.step_budget.is_some_and(|s| self.consumed_batches >= s) {
            return Some(StopReason::StepBudget);
        }
        let elapsed = self
            .started
            .map(|s| s.elapsed().as_secs_f64() + self.clock_offset);
        if let (Some(limit), Some(elapsed)) = (b.budget_seconds, elapsed)
            && elapsed >= limit
        {
            return Some(StopReason::WallClock);
        }
        None
    }

    /// Seconds on the stream's clock (the wall-clock budget's), a resumed run's earlier part
    /// included.
    pub fn elapsed_seconds(&self) -> f64 {
        self.started
            .map_or(0.0, |s| s.elapsed().as_secs_f64() + self.clock_offset)
    }

    /// Fast-forwards a fresh stream to where a checkpointed run stood: the batches of `shapes`
    /// are cut again (and dropped) from the same data, and the clock is set to `elapsed`
    /// seconds. `false` when the data ends before the record does (the data changed).
    pub fn replay(&mut self, shapes: &[[usize; 2]], elapsed: f64) -> Result<bool, DataError> {
        for &[rows, cols] in shapes {
            match self.next_batch(rows, cols)? {
                Some(batch) if batch.rows == rows && batch.cols == cols => {}
                _ => return Ok(false),
            }
        }
        self.started = Some(Instant::now());
        self.clock_offset = elapsed;
        Ok(true)
    }

    fn next_byte(&mut self) -> Result<Option<u8>, DataError> {
        loop {
            if let Some(b) = self.pending.next() {
                return Ok(Some(b));
            }
            match self.docs.next() {
                None => return Ok(None),
                Some(doc) => {
                    self.consumed_documents += 1;
                    self.pending = doc?.into_bytes().into_iter();
                }
            }
        }
    }

    fn stop(&mut self, reason: StopReason) -> Result<Option<Batch>, DataError> {
        self.stopped_reason = Some(reason);
        Ok(None)
    }

    /// The next batch, or `None` once a budget binds or the data is exhausted (the reason is
    /// then in `stopped_reason`). The clock starts at the first call.
    pub fn next_batch(
        &mut self,
        batch_size: usize,
        seq_len: usize,
    ) -> Result<Option<Batch>, DataError> {
        if self.stopped_reason.is_some() {
            return Ok(None);
        }
        self.started.get_or_insert_with(Instant::now);
        if self.consumed_batches > 0
            && let Some(reason) = self.budget_reason()
        {
            return self.stop(reason);
        }
        let (rows, cols) = (batch_size.max(1), seq_len.max(2));
        let needed = rows * cols;
        while self.buffer.len() < needed {
            if let Some(reason) = self.budget_reason() {
                return self.stop(reason);
            }
            match self.next_byte()? {
                Some(b) => {
                    self.buffer.push(b);
                    self.consumed_tokens += 1;
                }
                None => return self.trailing(),
            }
        }
        let rest = self.buffer.split_off(needed);
        let chunk = std::mem::replace(&mut self.buffer, rest);
        Ok(Some(self.emit(rows, cols, &chunk)))
    }

    fn trailing(&mut self) -> Result<Option<Batch>, DataError> {
        if self.buffer.len() >= 2 && self.budget_reason().is_none() {
            let chunk = std::mem::take(&mut self.buffer);
            let batch = self.emit(1, chunk.len(), &chunk);
            self.stopped_reason = Some(StopReason::DataExhausted);
            return Ok(Some(batch));
        }
        // PRISM records data exhaustion here even when a budget also binds.
        self.stop(StopReason::DataExhausted)
    }

    fn emit(&mut self, rows: usize, cols: usize, chunk: &[u8]) -> Batch {
        self.consumed_batches += 1;
        Batch {
            rows,
            cols,
            tokens: chunk
                .iter()
                .map(|&b| u32::from(b) % self.vocab_size)
                .collect(),
        }
    }
}

/// The prequential record: one mean loss per batch, summed weighted by predicted positions.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Prequential {
    /// Mean next-token loss of each batch in nats, as recorded (non-finite replaced).
    pub online_loss: Vec<f64>,
    /// Bytes covered after each batch.
    pub covered_bytes_cumulative: Vec<f64>,
    /// `[rows, cols]` of each batch, so the bpb can be recomputed by hand from this record.
    pub batch_shapes: Vec<[usize; 2]>,
    /// Sum of `loss * predicted positions`.
    pub sum_nll_nats: f64,
    /// Sum of predicted positions.
    pub predicted_tokens: u64,
    /// Bytes covered (each row's first byte included).
    pub covered_bytes: f64,
    /// Batches whose loss was NaN or infinite.
    pub nan_inf_batches: u64,
    /// ln V, the from-scratch baseline.
    pub baseline_nats: f64,
}

impl Prequential {
    /// An empty record for a vocabulary of `vocab_size`.
    pub fn new(vocab_size: u32) -> Self {
        Self {
            baseline_nats: f64::from(vocab_size.max(2)).ln(),
            ..Self::default()
        }
    }

    /// Records a batch's mean loss (`None` or non-finite counts as `2 ln V`). Byte-level tokens
    /// weigh one byte each.
    pub fn record(&mut self, batch_rows: usize, batch_cols: usize, loss: Option<f64>) {
        let loss = match loss {
            Some(l) if l.is_finite() => l,
            _ => {
                self.nan_inf_batches += 1;
                self.baseline_nats * WORST_CASE_LOSS_MULTIPLIER
            }
        };
        let predicted = (batch_rows * batch_cols.saturating_sub(1)) as u64;
        self.online_loss.push(loss);
        self.sum_nll_nats += loss * predicted as f64;
        self.predicted_tokens += predicted;
        self.covered_bytes += (batch_rows * batch_cols) as f64;
        self.covered_bytes_cumulative.push(self.covered_bytes);
        self.batch_shapes.push([batch_rows, batch_cols]);
    }

    /// Covered bytes as PRISM's manifest stores them (rounded to an integer).
    pub fn covered_bytes_int(&self) -> u64 {
        self.covered_bytes.round() as u64
    }

    /// `(sum_nll_nats / ln 2) / covered_bytes`, or `None` when nothing was covered.
    pub fn bpb(&self) -> Option<f64> {
        let covered = self.covered_bytes_int();
        (covered > 0 && !self.online_loss.is_empty())
            .then(|| self.sum_nll_nats / LN_2 / covered as f64)
    }

    /// First batch loss below `0.5 ln V`: the model cannot have started from random init.
    pub fn step0_anomaly(&self) -> bool {
        self.online_loss
            .first()
            .is_some_and(|l| *l < STEP0_ANOMALY_FRACTION * self.baseline_nats)
    }
}

/// Held-out chunks of byte tokens: rows of `batch_size x seq_len`, the remainder as one row,
/// a remainder under 2 bytes dropped (heldout.py `_bpb_over_texts`).
pub fn heldout_chunks(
    texts: &[String],
    vocab_size: u32,
    seq_len: usize,
    batch_size: usize,
) -> Vec<Batch> {
    let (rows, cols) = (batch_size.max(1), seq_len.max(2));
    let needed = rows * cols;
    let vocab = vocab_size.max(2);
    let bytes: Vec<u32> = texts
        .iter()
        .flat_map(|t| t.bytes())
        .map(|b| u32::from(b) % vocab)
        .collect();
    bytes
        .chunks(needed)
        .filter(|c| c.len() >= 2)
        .map(|c| {
            let (r, k) = if c.len() == needed {
                (rows, cols)
            } else {
                (1, c.len())
            };
            Batch {
                rows: r,
                cols: k,
                tokens: c.to_vec(),
            }
        })
        .collect()
}

/// bpb of a fixed model over chunks from its per-chunk mean losses (`None` = non-finite,
/// counted as `2 ln V`). `None` when nothing is covered or the result is not a positive number.
pub fn fixed_model_bpb(chunks: &[Batch], losses: &[Option<f64>], vocab_size: u32) -> Option<f64> {
    if chunks.is_empty() || chunks.len() != losses.len() {
        return None;
    }
    let worst = f64::from(vocab_size.max(2)).ln() * WORST_CASE_LOSS_MULTIPLIER;
    let mut nll = 0.0;
    let mut covered = 0usize;
    for (chunk, loss) in chunks.iter().zip(losses) {
        let loss = loss.filter(|l| l.is_finite()).unwrap_or(worst);
        nll += loss * chunk.predicted() as f64;
        covered += chunk.rows * chunk.cols;
    }
    let bpb = nll / LN_2 / covered as f64;
    (bpb.is_finite() && bpb > 0.0).then_some(bpb)
}

/// The held-out tie-breaker and anti-memorisation gap.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Heldout {
    /// Val bpb of the trained model.
    pub val_bpb_trained: f64,
    /// Val bpb of the random-init twin.
    pub val_bpb_random_init: f64,
    /// `val_bpb_random_init - val_bpb_trained`; larger is better.
    pub heldout_delta: f64,
    /// Trained model's byte-level bpb over the train prefix.
    pub train_bpb_converged: Option<f64>,
    /// `val_bpb_trained - train reference`.
    pub train_heldout_gap: Option<f64>,
    /// `converged` or `prequential`: which train reference the gap used.
    pub gap_basis: Option<String>,
    /// Gap above 1 bpb.
    pub memorization_flag: bool,
    /// Val bytes in the prefix.
    pub val_covered_bytes: u64,
}

impl Heldout {
    /// Combines the two val bpbs with the converged train bpb, falling back to the prequential
    /// train bpb (byte basis here, so always comparable).
    pub fn new(
        val_twin: f64,
        val_trained: f64,
        train_converged: Option<f64>,
        prequential_bpb: Option<f64>,
        val_covered_bytes: u64,
    ) -> Self {
        let (reference, basis) = match (train_converged, prequential_bpb) {
            (Some(c), _) => (Some(c), Some("converged")),
            (None, Some(p)) if p.is_finite() => (Some(p), Some("prequential")),
            _ => (None, None),
        };
        let gap = reference.map(|r| val_trained - r);
        Self {
            val_bpb_trained: val_trained,
            val_bpb_random_init: val_twin,
            heldout_delta: val_twin - val_trained,
            train_bpb_converged: train_converged,
            train_heldout_gap: gap,
            gap_basis: basis.map(str::to_string),
            memorization_flag: gap.is_some_and(|g| g > MEMORIZATION_GAP_THRESHOLD_BPB),
            val_covered_bytes,
        }
    }
}

/// `1 / (1 + bpb)`, negative bpb clamped to 0.
pub fn bpb_to_base(bpb: f64) -> f64 {
    1.0 / (1.0 + bpb.max(0.0))
}

/// `cap * tanh(delta)` with `cap = min(1e-3 pen, 0.5 pen (base(bpb) - base(bpb + 0.005)))`.
pub fn heldout_tie_break(bpb: f64, delta: Option<f64>, penalty: f64) -> f64 {
    let Some(delta) = delta else { return 0.0 };
    let resolution = bpb_to_base(bpb) - bpb_to_base(bpb + HELDOUT_DELTA_BPB_EPSILON);
    let weight = penalty.max(0.0);
    let cap = (HELDOUT_DELTA_TIE_BREAK_WEIGHT * weight).min(0.5 * weight * resolution.max(0.0));
    cap * delta.tanh()
}

/// The score of a run and how it was composed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Score {
    /// Prequential bits per byte.
    pub bpb: f64,
    /// `base * pen + tie`, times 0 on a step-0 anomaly.
    pub final_score: f64,
    /// `1 / (1 + bpb)`.
    pub base: f64,
    /// 0.5 with a memorisation flag, else 1.
    pub memorization_penalty: f64,
    /// The bounded held-out term.
    pub tie_break: f64,
    /// 0 on a step-0 anomaly, else 1.
    pub anti_cheat_multiplier: f64,
    /// Near-duplicate multiplier (0.2 or 1); `stored_score = max(0, final_score * this)`.
    pub near_duplicate_multiplier: f64,
    /// What the leaderboard stores.
    pub stored_score: f64,
    /// `bpb_out_of_band`, `step0_anomaly`, `nan_inf_detected`, `memorization_gap`.
    pub flags: Vec<String>,
}

/// Why a run cannot be scored at all.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ScoreError {
    /// Nothing was covered or no loss was recorded.
    #[error("no online loss was captured: the training loop never iterated ctx.iter_train_batches")]
    ZeroForward,
    /// bpb is NaN, infinite or not positive.
    #[error("prequential bpb {0} is not a positive finite number")]
    Degenerate(f64),
    /// The first batch's loss was already far below a random model's, and the bpb is not even
    /// a positive number: diagnosed as the step-0 anomaly (smuggled weights), ahead of the
    /// degenerate bpb it caused.
    #[error(
        "step-0 anomaly: the first batch's loss {first_loss} nats is below {threshold} (0.5 ln V): the model did not start from the forced random init (prequential bpb {bpb})"
    )]
    Step0Anomaly {
        /// The first batch's loss.
        first_loss: f64,
        /// `0.5 ln V`.
        threshold: f64,
        /// The degenerate bpb.
        bpb: f64,
    },
}

impl assay_errors::Diagnose for ScoreError {
    fn blame(&self) -> assay_errors::Blame {
        assay_errors::Blame::Miner
    }

    fn hint(&self) -> Option<String> {
        match self {
            Self::ZeroForward => {
                Some("train(ctx) must iterate ctx.iter_train_batches(model, ...)".into())
            }
            _ => None,
        }
    }
}

impl Score {
    /// The no-learning finding (#19): no tensor of the model changed during `train(ctx)`, or the
    /// held-out delta is exactly zero. PRISM marks `anti_cheat.no_learning` and its review gate
    /// refuses no-op training loops; without that gate, assay zeroes the score and flags it.
    pub fn apply_no_learning(&mut self) {
        self.flags.push("no_learning".to_string());
        self.anti_cheat_multiplier = 0.0;
        self.final_score = 0.0;
        self.stored_score = 0.0;
    }
}

/// PRISM's `score_prequential_bpb` followed by the near-duplicate multiplier.
pub fn final_score(
    preq: &Prequential,
    heldout: Option<&Heldout>,
    near_duplicate: f64,
) -> Result<Score, ScoreError> {
    let bpb = preq.bpb().ok_or(ScoreError::ZeroForward)?;
    if !bpb.is_finite() || bpb <= 0.0 {
        if preq.step0_anomaly() {
            return Err(ScoreError::Step0Anomaly {
                first_loss: preq.online_loss[0],
                threshold: STEP0_ANOMALY_FRACTION * preq.baseline_nats,
                bpb,
            });
        }
        return Err(ScoreError::Degenerate(bpb));
    }
    let mut flags = Vec::new();
    if bpb > BPB_SANE_MAX {
        flags.push("bpb_out_of_band".to_string());
    }
    let anomaly = preq.step0_anomaly();
    if anomaly {
        flags.push("step0_anomaly".to_string());
    }
    if preq.nan_inf_batches > 0 {
        flags.push("nan_inf_detected".to_string());
    }
    let memorized = heldout.is_some_and(|h| h.memorization_flag);
    if memorized {
        flags.push("memorization_gap".to_string());
    }
    let penalty = if memorized {
        MEMORIZATION_PENALTY_FACTOR
    } else {
        1.0
    };
    let multiplier = if anomaly { 0.0 } else { 1.0 };
    let base = bpb_to_base(bpb);
    let tie_break = heldout_tie_break(bpb, heldout.map(|h| h.heldout_delta), penalty);
    let final_score = (base * penalty + tie_break) * multiplier;
    Ok(Score {
        bpb,
        final_score,
        base,
        memorization_penalty: penalty,
        tie_break,
        anti_cheat_multiplier: multiplier,
        near_duplicate_multiplier: near_duplicate,
        stored_score: (final_score * near_duplicate).max(0.0),
        flags,
    })
}

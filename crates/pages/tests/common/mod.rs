//! A fixture [`PageSource`]: two pipelines, submissions in every state, a round, an operator's
//! view whose failure messages quote paths and secrets, and hostile strings where miners control
//! the text. One submission (`sub-run`) turns from running to scored after a few looks, for the
//! live-update tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use assay_pages::model::*;
use assay_pages::{PageSource, SourceError};

/// A hotkey a miner chose to attack the page with (hotkeys are never this in the store, but the
/// pages must not trust that).
pub const HOSTILE: &str = "5Hx<img src=x onerror=\"window.__pwned=1\">";

/// Strings that must appear on no page.
pub const SECRETS: &[&str] = &[
    "/home/validator",
    "/srv/assay",
    "secretpw",
    "sk-live-77",
    "eyJhbGciOi",
    "/internal/",
    "postgres://",
    "quarantine",
    "onerror=\"window",
];

pub const T0: i64 = 1_796_660_000_000;

pub fn hotkey(i: usize) -> String {
    const B58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut s = String::from("5");
    let mut x = (i as u64 + 7).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..47 {
        s.push(B58[(x % 58) as usize] as char);
        x = x.rotate_left(7).wrapping_mul(0xBF58_476D_1CE4_E5B9) ^ (i as u64);
    }
    s
}

#[derive(Default)]
pub struct Fixture {
    /// Looks at `sub-run` so far; it is scored from the `run_after`-th on.
    pub run_looks: AtomicUsize,
    pub run_after: usize,
    /// Every call fails (for the error page test).
    pub broken: AtomicBool,
}

impl Fixture {
    pub fn new(run_after: usize) -> Arc<Self> {
        Arc::new(Self {
            run_after,
            ..Default::default()
        })
    }

    fn check(&self) -> Result<(), SourceError> {
        if self.broken.load(Ordering::SeqCst) {
            Err("database is locked at /srv/assay/state.sqlite (password=secretpw)".into())
        } else {
            Ok(())
        }
    }

    fn run_done(&self) -> bool {
        self.run_looks.load(Ordering::SeqCst) >= self.run_after
    }
}

fn prism_rows(run_done: bool) -> Vec<LeaderboardRow> {
    let mut rows: Vec<LeaderboardRow> = (0..10)
        .map(|i| LeaderboardRow {
            rank: Some(i as u32 + 1),
            hotkey: if i == 8 {
                HOSTILE.to_string()
            } else {
                hotkey(i)
            },
            submission_id: format!("sub-{i:02}"),
            score: Some(0.91 - i as f64 * 0.031),
            uncertainty: Some(0.002 + i as f64 * 0.0005),
            weight_share: match i {
                0 => Some(0.6),
                1 => Some(0.4),
                _ => Some(0.0),
            },
            weight_u16: match i {
                0 => Some(65535),
                1 => Some(43690),
                _ => Some(0),
            },
            submitted_block: Some(5_200_000 + 37 * (10 - i as u64)),
            submitted_at_ms: Some(T0 + i as i64 * 60_000),
            status: Status::Done,
            crowns: match i {
                0 => vec![CrownTier::Architecture],
                1 => vec![CrownTier::Training],
                _ => vec![],
            },
        })
        .collect();
    rows.push(LeaderboardRow {
        rank: run_done.then_some(11),
        hotkey: hotkey(20),
        submission_id: "sub-run".into(),
        score: run_done.then_some(0.55),
        uncertainty: run_done.then_some(0.01),
        weight_share: None,
        weight_u16: None,
        submitted_block: Some(5_200_900),
        submitted_at_ms: Some(T0 + 3_600_000),
        status: if run_done {
            Status::Done
        } else {
            Status::Running
        },
        crowns: vec![],
    });
    rows.push(LeaderboardRow {
        rank: None,
        hotkey: hotkey(21),
        submission_id: "sub-rej".into(),
        score: None,
        uncertainty: None,
        weight_share: None,
        weight_u16: None,
        submitted_block: Some(5_200_950),
        submitted_at_ms: Some(T0 + 3_700_000),
        status: Status::Rejected,
        crowns: vec![],
    });
    rows
}

fn curve(n: usize) -> Curve {
    Curve {
        y_label: "bits per byte".into(),
        x_label: "step".into(),
        points: (0..n)
            .map(|i| {
                let x = i as f64 * 10.0;
                (x, 1.1 + 1.9 * (-(i as f64) / 120.0).exp())
            })
            .collect(),
    }
}

fn stages(done_to: usize, failed_at: Option<usize>, worker: &str) -> Vec<Stage> {
    let names = ["received", "integrity checks", "evaluation", "scored"];
    names
        .iter()
        .enumerate()
        .map(|(k, n)| Stage {
            name: n.to_string(),
            state: match (failed_at, k.cmp(&done_to)) {
                (Some(f), _) if f == k => StageState::Failed,
                (Some(f), _) if k > f => StageState::Pending,
                (_, std::cmp::Ordering::Less) => StageState::Done,
                (_, std::cmp::Ordering::Equal) => StageState::Current,
                _ => StageState::Pending,
            },
            detail: (k == 2).then(|| format!("on worker {worker}")),
            at_ms: (k <= done_to).then_some(T0 + k as i64 * 90_000),
        })
        .collect()
}

pub fn submission(id: &str, run_done: bool) -> Option<SubmissionPage> {
    let base = |i: usize| SubmissionPage {
        id: id.to_string(),
        pipeline: "prism".into(),
        pipeline_title: "PRISM".into(),
        hotkey: if i == 8 {
            HOSTILE.to_string()
        } else {
            hotkey(i)
        },
        epoch: Some(12),
        submitted_block: Some(5_200_000 + 37 * (30 - i as u64)),
        submitted_at_ms: Some(T0 + i as i64 * 60_000),
        status: Status::Done,
        stages: stages(4, None, "gpu-1"),
        worker: Some(WorkerRef {
            name: "gpu-1".into(),
            device: Some("NVIDIA H100 80GB HBM3".into()),
        }),
        score: Some(0.91 - i as f64 * 0.031),
        uncertainty: Some(0.002 + i as f64 * 0.0005),
        score_label: "final score".into(),
        rank: Some(i as u32 + 1),
        failure: None,
        findings: vec![],
        tasks: vec![
            TaskScore {
                task: "held-out bits per byte".into(),
                score: Some(1.12),
                uncertainty: Some(0.004),
                weight: Some(0.7),
            },
            TaskScore {
                task: "throughput".into(),
                score: Some(0.83),
                uncertainty: None,
                weight: Some(0.3),
            },
        ],
        curve: Some(curve(500)),
        files: vec![
            FileLink {
                name: "report.json".into(),
                size: 18_433,
                description: "evaluation report".into(),
            },
            FileLink {
                name: "adapter model.safetensors".into(),
                size: 12_582_912,
                description: "trained weights".into(),
            },
        ],
    };
    if let Some(i) = id
        .strip_prefix("sub-")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|i| *i < 10)
    {
        let mut s = base(i);
        if i == 0 {
            s.findings = vec![Finding {
                code: "plagiarism.similarity".into(),
                message:
                    "The code is 41 % similar to the closest earlier submission; below the 65 % \
                          at which it would be compared further."
                        .into(),
                severity: Severity::Note,
            }];
        }
        if i == 2 {
            // Its uploaded code stays private: only the report is listed.
            s.files.truncate(1);
        }
        return Some(s);
    }
    match id {
        "sub-run" => {
            let mut s = base(20);
            s.id = id.into();
            s.hotkey = hotkey(20);
            s.rank = None;
            if run_done {
                s.rank = Some(11);
                s.score = Some(0.55);
                s.uncertainty = Some(0.01);
            } else {
                s.status = Status::Running;
                s.stages = stages(2, None, "gpu-2");
                s.worker = Some(WorkerRef {
                    name: "gpu-2".into(),
                    device: Some("NVIDIA H200".into()),
                });
                s.score = None;
                s.uncertainty = None;
                s.tasks.clear();
                s.curve = Some(curve(40));
                s.files.clear();
            }
            Some(s)
        }
        "sub-rej" => {
            let mut s = base(21);
            s.id = id.into();
            s.hotkey = hotkey(21);
            s.status = Status::Rejected;
            s.stages = stages(1, Some(1), "-");
            s.worker = None;
            s.score = None;
            s.uncertainty = None;
            s.rank = None;
            s.tasks.clear();
            s.curve = None;
            s.files.clear();
            s.failure = Some(
                "Rejected by the integrity checks before evaluation; the copy was kept at \
                 /srv/assay/quarantine/sub-rej/private-code.py (token=sk-live-77)."
                    .into(),
            );
            s.findings = vec![Finding {
                code: "plagiarism.static".into(),
                message: "The code is 97 % similar to submission sub-00, submitted earlier by \
                          another miner (the limit is 96 %)."
                    .into(),
                severity: Severity::Reject,
            }];
            Some(s)
        }
        _ => None,
    }
}

impl PageSource for Fixture {
    async fn pipelines(&self) -> Result<Vec<PipelineLink>, SourceError> {
        self.check()?;
        Ok(vec![
            PipelineLink {
                id: "prism".into(),
                title: "PRISM".into(),
                summary:
                    "Architectures trained within a fixed budget, scored on held-out bits per byte."
                        .into(),
                entries: 12,
            },
            PipelineLink {
                id: "sn37".into(),
                title: "SN37 fine-tuning".into(),
                summary: "Fine-tuned models, scored on fresh evaluation data; lowest loss wins."
                    .into(),
                entries: 2,
            },
        ])
    }

    async fn leaderboard(&self, pipeline: &str) -> Result<Option<Leaderboard>, SourceError> {
        self.check()?;
        Ok(match pipeline {
            "prism" => Some(Leaderboard {
                pipeline: "prism".into(),
                title: "PRISM".into(),
                epoch: Some(12),
                score_label: "final score".into(),
                higher_is_better: true,
                rows: prism_rows(self.run_done()),
                crowns: vec![
                    CrownHolder {
                        tier: CrownTier::Architecture,
                        hotkey: hotkey(0),
                        submission_id: "sub-00".into(),
                        family: "a41f09c2".into(),
                        share: 0.6,
                        score: Some(0.91),
                    },
                    CrownHolder {
                        tier: CrownTier::Training,
                        hotkey: hotkey(1),
                        submission_id: "sub-01".into(),
                        family: "a41f09c2".into(),
                        share: 0.4,
                        score: Some(0.879),
                    },
                ],
                latest_block: Some(5_201_000),
            }),
            "sn37" => Some(Leaderboard {
                pipeline: "sn37".into(),
                title: "SN37 fine-tuning".into(),
                epoch: None,
                score_label: "average loss".into(),
                higher_is_better: false,
                rows: (0..2)
                    .map(|i| LeaderboardRow {
                        rank: Some(i + 1),
                        hotkey: hotkey(30 + i as usize),
                        submission_id: format!("sub-0{i}"),
                        score: Some(2.1 + f64::from(i) * 0.2),
                        uncertainty: None,
                        weight_share: Some(if i == 0 { 1.0 } else { 0.0 }),
                        weight_u16: Some(if i == 0 { 65535 } else { 0 }),
                        submitted_block: Some(4_100_000 + u64::from(i)),
                        submitted_at_ms: None,
                        status: Status::Done,
                        crowns: vec![],
                    })
                    .collect(),
                crowns: vec![],
                latest_block: Some(5_201_000),
            }),
            _ => None,
        })
    }

    async fn submission(&self, id: &str) -> Result<Option<SubmissionPage>, SourceError> {
        self.check()?;
        if id == "sub-run" {
            self.run_looks.fetch_add(1, Ordering::SeqCst);
        }
        Ok(submission(id, self.run_done()))
    }

    async fn round(
        &self,
        pipeline: &str,
        epoch: Option<i64>,
    ) -> Result<Option<RoundPage>, SourceError> {
        self.check()?;
        let epoch = epoch.unwrap_or(12);
        if pipeline != "prism" || !(8..=12).contains(&epoch) {
            return Ok(None);
        }
        let history: Vec<(i64, Vec<(String, f64)>)> = (8..=epoch)
            .map(|e| {
                let t = (e - 8) as f64 / 4.0;
                (
                    e,
                    vec![
                        (hotkey(0), 0.2 + 0.4 * t),
                        (hotkey(1), 0.5 - 0.1 * t),
                        (hotkey(2), 0.3 - 0.3 * t),
                    ],
                )
            })
            .collect();
        let (now, before) = (
            history.last().map(|h| h.1.clone()).unwrap_or_default(),
            history
                .len()
                .checked_sub(2)
                .map(|k| history[k].1.clone())
                .unwrap_or_default(),
        );
        let weights = now
            .iter()
            .map(|(hk, share)| WeightRow {
                hotkey: hk.clone(),
                share: *share,
                weight_u16: (share * 65535.0).round() as u16,
                previous_share: before.iter().find(|b| &b.0 == hk).map(|b| b.1),
            })
            .collect();
        Ok(Some(RoundPage {
            pipeline: "prism".into(),
            pipeline_title: "PRISM".into(),
            epoch,
            status: if epoch == 12 { "open" } else { "scored" }.into(),
            starts_at_ms: T0 - (12 - epoch) * 21_600_000,
            ends_at_ms: (epoch < 12).then_some(T0 - (11 - epoch) * 21_600_000),
            winner: Some(Winner {
                hotkey: hotkey(0),
                submission_id: "sub-00".into(),
                score: Some(0.91),
            }),
            weights,
            history,
            findings: vec![RoundFinding {
                hotkey: hotkey(21),
                submission_id: "sub-rej".into(),
                finding: Finding {
                    code: "plagiarism.static".into(),
                    message: "Copied the code of sub-00 (97 % similar).".into(),
                    severity: Severity::Reject,
                },
            }],
            previous: (epoch > 8).then_some(epoch - 1),
            next: (epoch < 12).then_some(epoch + 1),
        }))
    }

    async fn operator(&self) -> Result<OperatorPage, SourceError> {
        self.check()?;
        Ok(OperatorPage {
            queue_depth: 4,
            jobs_by_state: vec![
                ("queued".into(), 4),
                ("running".into(), 2),
                ("done".into(), 131),
                ("failed".into(), 3),
            ],
            workers: vec![
                WorkerRow {
                    name: "gpu-1".into(),
                    devices: "NVIDIA H100 80GB HBM3".into(),
                    job: None,
                    submission_id: None,
                    last_seen_ms: Some(T0 + 5_000),
                },
                WorkerRow {
                    name: "gpu-2".into(),
                    devices: "2× NVIDIA H200".into(),
                    job: Some(140),
                    submission_id: Some("sub-run".into()),
                    last_seen_ms: Some(T0 + 6_000),
                },
            ],
            failures: vec![
                FailureRow {
                    at_ms: T0 - 60_000,
                    job: 137,
                    kind: "prism.eval".into(),
                    submission_id: Some("sub-rej".into()),
                    blame: "operator".into(),
                    message: "cannot write /home/validator/.assay/runs/137/report.json: No space left on device"
                        .into(),
                },
                FailureRow {
                    at_ms: T0 - 120_000,
                    job: 131,
                    kind: "weights.set".into(),
                    submission_id: None,
                    blame: "transient".into(),
                    message: "chain endpoint refused Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x.y; \
                              database postgres://assay:secretpw@10.0.0.5/assay busy"
                        .into(),
                },
            ],
            latest_block: Some(5_201_000),
        })
    }

    async fn file(&self, submission: &str, name: &str) -> Result<Option<Download>, SourceError> {
        self.check()?;
        // Answers for any name, private ones too: the pages must only ask for listed files.
        Ok(match name {
            "report.json" => Some(Download {
                content_type: "application/json".into(),
                bytes: format!("{{\"submission\":\"{submission}\",\"score\":0.91}}").into_bytes(),
            }),
            "adapter model.safetensors" => Some(Download {
                content_type: "application/octet-stream".into(),
                bytes: vec![0u8; 64],
            }),
            "private-code.py" => Some(Download {
                content_type: "text/x-python".into(),
                bytes: b"# miner's private code".to_vec(),
            }),
            _ => None,
        })
    }
}

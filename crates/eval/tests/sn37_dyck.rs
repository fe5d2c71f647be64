//! DYCK_LANGUAGE against SN37's own generator: replaying the draws SN37's code made
//! (`fixtures/sn37/make_dyck_fixtures.py`) must give its samples character for character.

use std::collections::VecDeque;

use assay_eval::sn37::dyck::{
    DYCK_PROMPT, DyckConfig, DyckDraws, DyckError, dyck_sample, generate_dyck_samples, validate,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    config: Config,
    seed: u64,
    samples: Vec<Sample>,
}

#[derive(Deserialize)]
struct Config {
    min_pairs: usize,
    max_pairs: usize,
    min_answer: usize,
    max_answer: usize,
}

#[derive(Deserialize)]
struct Sample {
    draws: Vec<(String, serde_json::Value)>,
    challenge: String,
    reference: String,
}

/// Hands back SN37's recorded draws, checking that each is asked for in the same order and range.
struct Replay(VecDeque<(String, serde_json::Value)>);

impl Replay {
    fn next(&mut self, kind: &str) -> serde_json::Value {
        let (got, value) = self.0.pop_front().expect("SN37 made no more draws");
        assert_eq!(got, kind, "draw order differs from SN37's");
        value
    }
}

impl DyckDraws for Replay {
    fn int(&mut self, low: usize, high: usize) -> usize {
        let value = self.next("int").as_u64().unwrap() as usize;
        assert!(
            (low..=high).contains(&value),
            "{value} outside {low}..={high}"
        );
        value
    }
    fn coin(&mut self) -> bool {
        self.next("coin").as_bool().unwrap()
    }
    fn pair(&mut self, n: usize) -> usize {
        let value = self.next("pair").as_u64().unwrap() as usize;
        assert!(value < n);
        value
    }
}

#[test]
fn replayed_draws_reproduce_sn37_samples() {
    let golden: Golden =
        serde_json::from_str(include_str!("../fixtures/sn37/dyck.json")).expect("fixture");
    let mut checked = 0;
    for case in &golden.cases {
        let config = DyckConfig {
            min_pairs: case.config.min_pairs,
            max_pairs: case.config.max_pairs,
            min_answer: case.config.min_answer,
            max_answer: case.config.max_answer,
            samples: 1,
        };
        for (i, sample) in case.samples.iter().enumerate() {
            let mut replay = Replay(sample.draws.iter().cloned().collect());
            let got = dyck_sample(&config, &mut replay);
            assert_eq!(
                got.challenge, sample.challenge,
                "seed {} sample {i}",
                case.seed
            );
            assert_eq!(
                got.reference, sample.reference,
                "seed {} sample {i}",
                case.seed
            );
            assert!(
                replay.0.is_empty(),
                "SN37 made more draws than we asked for"
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 200);
}

fn closes(c: char) -> Option<char> {
    match c {
        '<' => Some('>'),
        '[' => Some(']'),
        '{' => Some('}'),
        '(' => Some(')'),
        _ => None,
    }
}

#[test]
fn seeded_samples_are_balanced_words_with_a_closing_tail_and_deterministic() {
    let config = DyckConfig {
        samples: 300,
        ..DyckConfig::default()
    };
    let samples = generate_dyck_samples(&config, 42).unwrap();
    assert_eq!(samples, generate_dyck_samples(&config, 42).unwrap());
    assert_ne!(samples, generate_dyck_samples(&config, 43).unwrap());
    let mut tail_lengths = [0usize; 4];
    for sample in &samples {
        let head = sample.challenge.strip_prefix(DYCK_PROMPT).unwrap();
        let word: String = format!("{head} {}", sample.reference).replace(' ', "");
        let mut stack = Vec::new();
        for c in word.chars() {
            match closes(c) {
                Some(close) => stack.push(close),
                None => assert_eq!(stack.pop(), Some(c), "unbalanced: {word}"),
            }
        }
        assert!(stack.is_empty(), "unclosed: {word}");
        let tail = sample.reference.replace(' ', "");
        assert!(tail.chars().all(|c| closes(c).is_none()), "{tail}");
        let pairs = word.len() / 2;
        assert!((2..=20).contains(&pairs), "{pairs}");
        tail_lengths[tail.len()] += 1;
    }
    assert_eq!(tail_lengths[0], 0);
    assert!(
        tail_lengths[1..].iter().all(|&n| n > 50),
        "{tail_lengths:?}"
    );
}

#[test]
fn bad_configurations_are_refused_as_sn37_refuses_them() {
    let bad = |f: fn(&mut DyckConfig)| {
        let mut config = DyckConfig::default();
        f(&mut config);
        validate(&config).unwrap_err()
    };
    assert!(matches!(
        bad(|c| c.min_answer = 4),
        DyckError::AnswerRange { .. }
    ));
    assert!(matches!(
        bad(|c| c.min_pairs = 30),
        DyckError::PairRange { .. }
    ));
    assert!(matches!(
        bad(|c| {
            c.max_answer = 25;
        }),
        DyckError::AnswerLongerThanWord { .. }
    ));
    assert!(matches!(bad(|c| c.min_answer = 0), DyckError::EmptyAnswer));
}

//! The Rust IF-eval port against golden output of SN37's original Python code
//! (`fixtures/ifeval/make_ifeval_fixtures.py`).

use assay_eval::ifeval::keyword_forbidden::KeywordForbidden;
use assay_eval::ifeval::keyword_frequency::KeywordFrequency;
use assay_eval::ifeval::keyword_inclusion::KeywordInclusion;
use assay_eval::ifeval::punkt::sentence_count;
use assay_eval::ifeval::similarity::similarity_ratio;
use assay_eval::ifeval::{IfEvalRule, Rule, SampleOutcome, build_prompt, if_eval_task_score};
use serde::Deserialize;
use serde_json::Value;

fn fixture_lines(name: &str) -> Vec<Value> {
    let path = format!("{}/fixtures/ifeval/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}"));
    text.lines()
        .map(|line| serde_json::from_str(line).expect("fixture line is JSON"))
        .collect()
}

fn bits(value: &Value) -> Vec<bool> {
    value
        .as_str()
        .expect("bit string")
        .chars()
        .map(|c| c == '1')
        .collect()
}

/// The keyword rules in the order the fixture script writes their verdicts.
fn keyword_rules(pair: &[String]) -> Vec<Rule> {
    let mut rules = vec![
        Rule::KeywordInclusion(KeywordInclusion {
            keywords: pair.to_vec(),
        }),
        Rule::KeywordForbidden(KeywordForbidden {
            keywords: pair.to_vec(),
        }),
    ];
    for count in 1..=4 {
        let keywords_and_counts = pair.iter().map(|word| (word.clone(), count)).collect();
        rules.push(Rule::KeywordFrequency(KeywordFrequency {
            keywords_and_counts,
        }));
    }
    rules
}

#[test]
fn sentence_counts_match_untrained_punkt() {
    let lines = fixture_lines("checks.jsonl");
    let mut mismatches = Vec::new();
    for line in &lines[1..] {
        let response = line["response"].as_str().unwrap();
        let expected = line["sentences"].as_u64().unwrap() as usize;
        let got = sentence_count(response);
        if got != expected {
            mismatches.push(format!("{response:?}: python {expected}, rust {got}"));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn every_rule_verdict_matches_sn37() {
    let lines = fixture_lines("checks.jsonl");
    let fixed: Vec<Rule> = serde_json::from_value(lines[0]["fixed_rules"].clone()).unwrap();
    let mut mismatches = Vec::new();
    for line in &lines[1..] {
        let response = line["response"].as_str().unwrap();
        for (rule, expected) in fixed.iter().zip(bits(&line["fixed"])) {
            if rule.matches(response, 0).unwrap() != expected {
                mismatches.push(format!("{rule:?} on {response:?}: python {expected}"));
            }
        }
        let pair: Vec<String> = serde_json::from_value(line["keywords"].clone()).unwrap();
        let checks = keyword_rules(&pair)
            .into_iter()
            .flat_map(|rule| [(rule.clone(), 0), (rule, 1)]);
        for ((rule, index), expected) in checks.zip(bits(&line["keyword_bits"])) {
            if rule.matches(response, index).unwrap() != expected {
                mismatches.push(format!(
                    "{rule:?}[{index}] on {response:?}: python {expected}"
                ));
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

#[test]
fn prompts_match_sn37_text() {
    for line in fixture_lines("prompts.jsonl") {
        let rules: Vec<Rule> = serde_json::from_value(line["rules"].clone()).unwrap();
        let index = line["index"].as_u64().unwrap() as usize;
        let prompt = build_prompt(line["question"].as_str().unwrap(), &rules, index).unwrap();
        assert_eq!(prompt, line["prompt"].as_str().unwrap());
    }
}

#[test]
fn similarity_matches_difflib() {
    for line in fixture_lines("similarity.jsonl") {
        let (a, b) = (line["a"].as_str().unwrap(), line["b"].as_str().unwrap());
        let expected = line["ratio"].as_f64().unwrap();
        assert_eq!(similarity_ratio(a, b), expected, "a={a:?} b={b:?}");
    }
}

#[derive(Deserialize)]
struct FixtureSample {
    rules: Vec<Rule>,
    responses: [String; 2],
}

#[test]
fn task_scores_match_compute_if_eval() {
    for line in fixture_lines("task_scores.jsonl") {
        let samples: Vec<FixtureSample> = serde_json::from_value(line["samples"].clone()).unwrap();
        let outcomes: Vec<SampleOutcome<'_>> = samples
            .iter()
            .map(|sample| SampleOutcome {
                rules: &sample.rules,
                responses: Some([&sample.responses[0], &sample.responses[1]]),
            })
            .collect();
        let expected = line["score"].as_f64().unwrap();
        assert_eq!(if_eval_task_score(&outcomes), expected);
    }
}

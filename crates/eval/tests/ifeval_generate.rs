//! Seeded IF-eval generation: determinism, SN37's rule counts, parameters and
//! incompatibilities.

use std::collections::HashMap;

use assay_eval::ifeval::generate::{incompatible_with, is_incompatible};
use assay_eval::ifeval::{
    IfEvalRule, IfEvalVersion, QuestionAnswer, Rule, RuleId, build_prompt, generate_samples,
};

fn questions(n: usize) -> Vec<QuestionAnswer> {
    (0..n)
        .map(|i| QuestionAnswer {
            question: format!("Question number {i}?"),
            answer: format!("Photosynthesis converts light energy {i} into chemical energy"),
        })
        .collect()
}

#[test]
fn generation_is_deterministic_per_seed() {
    let qs = questions(41);
    let a = generate_samples(&qs, 20, IfEvalVersion::V2, 5);
    assert_eq!(a.len(), 20);
    assert_eq!(a, generate_samples(&qs, 20, IfEvalVersion::V2, 5));
    assert_ne!(a, generate_samples(&qs, 20, IfEvalVersion::V2, 6));
}

#[test]
fn short_answers_are_dropped_and_items_paired_in_order() {
    let mut qs = questions(3);
    qs[1].answer = "Yes".into();
    let samples = generate_samples(&qs, 20, IfEvalVersion::V1, 1);
    assert_eq!(samples.len(), 1);
    assert!(samples[0].prompts[0].ends_with("\"Question number 0?\"\n"));
    assert!(samples[0].prompts[1].ends_with("\"Question number 2?\"\n"));
}

#[test]
fn rules_respect_version_counts_parameters_and_incompatibilities() {
    let qs = questions(2001);
    for version in [IfEvalVersion::V1, IfEvalVersion::V2] {
        let (min, max) = version.rule_count_range();
        let mut seen: HashMap<RuleId, usize> = HashMap::new();
        for sample in generate_samples(&qs, 2000, version, 9) {
            assert!(sample.rules.len() <= max && !sample.rules.is_empty());
            assert!(
                (min..=max).contains(&sample.rules.len()),
                "{} rules",
                sample.rules.len()
            );
            for (position, rule) in sample.rules.iter().enumerate() {
                assert!(version.rule_ids().contains(&rule.id()));
                assert!(
                    !is_incompatible(rule.id(), &sample.rules[..position]),
                    "{:?}",
                    sample.rules
                );
                *seen.entry(rule.id()).or_default() += 1;
                check_parameters(rule);
            }
            for index in 0..2 {
                assert_eq!(
                    sample.prompts[index],
                    build_prompt(
                        &format!(
                            "Question number {}?",
                            sample_question(&sample.prompts[index])
                        ),
                        &sample.rules,
                        index
                    )
                    .unwrap()
                );
            }
        }
        assert_eq!(
            seen.len(),
            version.rule_ids().len(),
            "every rule of {version:?} is drawn"
        );
    }
}

fn sample_question(prompt: &str) -> String {
    prompt
        .rsplit("Question number ")
        .next()
        .unwrap()
        .trim_end_matches("?\"\n")
        .to_owned()
}

fn check_parameters(rule: &Rule) {
    match rule {
        Rule::WordCountAtMost(r) => assert!([25, 30, 35, 40, 45].contains(&r.count)),
        Rule::WordCountAtLeast(r) => assert!([25, 30, 35, 40, 45].contains(&r.count)),
        Rule::SentenceCountAtMost(r) => assert!((1..=3).contains(&r.count)),
        Rule::SentenceCountAtLeast(r) => assert!((2..=3).contains(&r.count)),
        Rule::BulletCountFrequency(r) => assert!((1..=3).contains(&r.count)),
        Rule::KeywordFrequency(r) => {
            assert_eq!(r.keywords_and_counts.len(), 2);
            assert!(
                r.keywords_and_counts
                    .iter()
                    .all(|(_, c)| (1..=4).contains(c))
            );
        }
        Rule::KeywordInclusion(r) => assert_eq!(r.keywords.len(), 2),
        Rule::KeywordForbidden(r) => assert_eq!(r.keywords.len(), 2),
        _ => {}
    }
}

#[test]
fn incompatibility_table_is_symmetric_where_sn37_is() {
    // SN37's table is not fully symmetric (WORD_COUNT_AT_LEAST does not exclude
    // SENTENCE_COUNT_AT_LEAST, but WORD_COUNT_AT_MOST excludes both); check known pairs.
    assert!(incompatible_with(RuleId::EndsWith).contains(&RuleId::Quotation));
    assert!(incompatible_with(RuleId::Quotation).contains(&RuleId::EndsWith));
    assert!(incompatible_with(RuleId::AllUpperCase).contains(&RuleId::AllLowerCase));
    assert!(incompatible_with(RuleId::NoCommas).is_empty());
}

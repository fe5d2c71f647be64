//! Seeded generation of IF-eval samples the way SN37 does it (`rule_factory.py`,
//! `if_eval_loader.py`).
//!
//! SN37 draws from Python's global `random`; we draw from an explicit ChaCha20 stream.
//! The *distribution* is the same (uniform shuffle of the version's rule ids, uniform rule
//! count, uniform parameter choices, same incompatibilities, same draw order), the exact
//! draws for a given seed are not: a Python seed cannot be replayed here.

use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};

use super::ends_with::ENDS_WITH_PHRASES;
use super::keywords::pick_keyword;
use super::pytext::py_split;
use super::rule::{IfEvalRule, Rule, RuleError, RuleId};
use super::{
    all_lower_case::AllLowerCase,
    all_upper_case::AllUpperCase,
    bullet_count::BulletCountFrequency,
    ends_with::EndsWith,
    keyword_forbidden::KeywordForbidden,
    keyword_frequency::KeywordFrequency,
    keyword_inclusion::KeywordInclusion,
    no_commas::NoCommas,
    quotation::Quotation,
    sentence_count_at_least::SentenceCountAtLeast,
    sentence_count_at_most::SentenceCountAtMost,
    starts_with::{STARTS_WITH_PHRASES, StartsWith},
    word_count_at_least::WordCountAtLeast,
    word_count_at_most::WordCountAtMost,
};

/// SN37's IF-eval versions. V3 exists in SN37 but adds nothing, so it is not offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IfEvalVersion {
    /// Length, casing and comma rules; 1 to 4 rules per sample.
    V1,
    /// V1 plus keyword, bullet, ends-with and quotation rules; 2 to 5 rules per sample.
    V2,
}

impl IfEvalVersion {
    /// The rule ids a sample of this version may use, ascending.
    pub fn rule_ids(self) -> Vec<RuleId> {
        use RuleId::*;
        let mut ids = vec![
            WordCountAtMost,
            WordCountAtLeast,
            SentenceCountAtMost,
            SentenceCountAtLeast,
            AllUpperCase,
            AllLowerCase,
            NoCommas,
        ];
        if self == IfEvalVersion::V2 {
            ids.extend([
                KeywordInclusion,
                KeywordFrequency,
                KeywordForbidden,
                BulletCountFrequency,
                EndsWith,
                Quotation,
            ]);
        }
        ids
    }

    /// Inclusive (minimum, maximum) number of rules per sample (`VERSION_TO_RULE_COUNTS`).
    pub fn rule_count_range(self) -> (usize, usize) {
        match self {
            IfEvalVersion::V1 => (1, 4),
            IfEvalVersion::V2 => (2, 5),
        }
    }
}

/// A question with the text of its correct answer (keywords are drawn from the answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuestionAnswer {
    /// The question shown to the model.
    pub question: String,
    /// The correct answer's text.
    pub answer: String,
}

/// One IF-eval sample: two prompts (two questions) sharing one rule list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfEvalSample {
    /// The prompt for response 0 and the prompt for response 1.
    pub prompts: [String; 2],
    /// The rules both responses are checked against.
    pub rules: Vec<Rule>,
}

/// Rule ids that cannot join a sample already holding `existing` (`is_rule_incompatible`).
pub fn incompatible_with(id: RuleId) -> &'static [RuleId] {
    use RuleId::*;
    match id {
        WordCountAtMost => &[
            WordCountAtLeast,
            SentenceCountAtMost,
            SentenceCountAtLeast,
            BulletCountFrequency,
            EndsWith,
        ],
        WordCountAtLeast => &[WordCountAtMost, SentenceCountAtMost],
        SentenceCountAtMost => &[
            WordCountAtLeast,
            WordCountAtMost,
            SentenceCountAtLeast,
            BulletCountFrequency,
            EndsWith,
        ],
        SentenceCountAtLeast => &[WordCountAtMost, SentenceCountAtMost],
        AllUpperCase => &[AllLowerCase],
        AllLowerCase => &[AllUpperCase],
        BulletCountFrequency => &[WordCountAtMost, SentenceCountAtMost],
        EndsWith => &[WordCountAtMost, SentenceCountAtMost, Quotation],
        // SN37 lists STARTS_WITH as compatible with everything, but its rule is a dummy that
        // passes every response; a real one cannot hold beside QUOTATION (which needs a `"` first).
        Quotation => &[EndsWith, StartsWith],
        StartsWith => &[Quotation],
        NoCommas | KeywordInclusion | KeywordFrequency | KeywordForbidden => &[],
    }
}

/// Whether `id` conflicts with any rule already chosen.
pub fn is_incompatible(id: RuleId, chosen: &[Rule]) -> bool {
    let excluded = incompatible_with(id);
    chosen.iter().any(|rule| excluded.contains(&rule.id()))
}

/// SN37's prompt: the instruction line, the numbered rules, a blank line, the quoted question.
pub fn build_prompt(question: &str, rules: &[Rule], index: usize) -> Result<String, RuleError> {
    let mut numbered = Vec::with_capacity(rules.len());
    for (position, rule) in rules.iter().enumerate() {
        numbered.push(format!("{}. {}", position + 1, rule.prompt(index)?));
    }
    Ok(format!(
        "Please answer the question below, denoted between quotes. Your response must follow these rules:\n{}\n\n\"{question}\"\n",
        numbered.join("\n")
    ))
}

/// Draws one rule of kind `id`, in SN37's draw order (keywords for response 0 first).
fn draw_rule<R: Rng + ?Sized>(
    id: RuleId,
    chosen: &[Rule],
    pair: [&QuestionAnswer; 2],
    rng: &mut R,
) -> Rule {
    let forbidden: Vec<&str> = chosen.iter().flat_map(Rule::keywords).collect();
    let keyword = |rng: &mut R, qa: &QuestionAnswer| pick_keyword(&qa.answer, &forbidden, rng);
    let count_from = |rng: &mut R, choices: &[u32]| *choices.choose(rng).unwrap_or(&choices[0]);
    match id {
        RuleId::WordCountAtMost => Rule::WordCountAtMost(WordCountAtMost {
            count: count_from(rng, &[25, 30, 35, 40, 45]),
        }),
        RuleId::WordCountAtLeast => Rule::WordCountAtLeast(WordCountAtLeast {
            count: count_from(rng, &[25, 30, 35, 40, 45]),
        }),
        RuleId::SentenceCountAtMost => Rule::SentenceCountAtMost(SentenceCountAtMost {
            count: count_from(rng, &[1, 2, 3]),
        }),
        RuleId::SentenceCountAtLeast => Rule::SentenceCountAtLeast(SentenceCountAtLeast {
            count: count_from(rng, &[2, 3]),
        }),
        RuleId::AllUpperCase => Rule::AllUpperCase(AllUpperCase {}),
        RuleId::AllLowerCase => Rule::AllLowerCase(AllLowerCase {}),
        RuleId::NoCommas => Rule::NoCommas(NoCommas {}),
        RuleId::KeywordInclusion => Rule::KeywordInclusion(KeywordInclusion {
            keywords: pair.iter().map(|qa| keyword(rng, qa)).collect(),
        }),
        RuleId::KeywordFrequency => Rule::KeywordFrequency(KeywordFrequency {
            keywords_and_counts: pair
                .iter()
                .map(|qa| (keyword(rng, qa), rng.random_range(1..=4)))
                .collect(),
        }),
        RuleId::KeywordForbidden => Rule::KeywordForbidden(KeywordForbidden {
            keywords: pair.iter().map(|qa| keyword(rng, qa)).collect(),
        }),
        RuleId::BulletCountFrequency => Rule::BulletCountFrequency(BulletCountFrequency {
            count: count_from(rng, &[1, 2, 3]),
        }),
        RuleId::StartsWith => Rule::StartsWith(StartsWith {
            phrase: STARTS_WITH_PHRASES
                .choose(rng)
                .copied()
                .unwrap_or(STARTS_WITH_PHRASES[0])
                .to_owned(),
        }),
        RuleId::EndsWith => Rule::EndsWith(EndsWith {
            phrase: ENDS_WITH_PHRASES
                .choose(rng)
                .copied()
                .unwrap_or(ENDS_WITH_PHRASES[0])
                .to_owned(),
        }),
        RuleId::Quotation => Rule::Quotation(Quotation {}),
    }
}

/// SN37's `generate_if_eval_sample`: shuffle the version's rule ids, draw the rule count,
/// then take ids in order, skipping those incompatible with the rules already taken.
pub fn generate_sample<R: Rng + ?Sized>(
    first: &QuestionAnswer,
    second: &QuestionAnswer,
    version: IfEvalVersion,
    rng: &mut R,
) -> IfEvalSample {
    generate_sample_from(
        first,
        second,
        &version.rule_ids(),
        version.rule_count_range(),
        rng,
    )
}

/// [`generate_sample`] over a given rule set and inclusive rule-count range instead of a
/// version's (a hand-written competition's choice).
pub fn generate_sample_from<R: Rng + ?Sized>(
    first: &QuestionAnswer,
    second: &QuestionAnswer,
    rule_ids: &[RuleId],
    (min_rules, max_rules): (usize, usize),
    rng: &mut R,
) -> IfEvalSample {
    let mut ids = rule_ids.to_vec();
    ids.shuffle(rng);
    let wanted = rng.random_range(min_rules..=max_rules);
    let mut rules: Vec<Rule> = Vec::with_capacity(wanted);
    for id in ids {
        if rules.len() == wanted {
            break;
        }
        if !is_incompatible(id, &rules) {
            let rule = draw_rule(id, &rules, [first, second], rng);
            rules.push(rule);
        }
    }
    let prompt = |qa: &QuestionAnswer, index| {
        build_prompt(&qa.question, &rules, index)
            .expect("generated keyword rules hold one keyword per response")
    };
    IfEvalSample {
        prompts: [prompt(first, 0), prompt(second, 1)],
        rules,
    }
}

/// SN37's `IFEvalLoader` after the questions are parsed: drop answers of fewer than two
/// words, pair each item with the next one, and build up to `max_samples` samples.
pub fn generate_samples(
    questions: &[QuestionAnswer],
    max_samples: usize,
    version: IfEvalVersion,
    seed: u64,
) -> Vec<IfEvalSample> {
    generate_samples_with_rules(
        questions,
        max_samples,
        &version.rule_ids(),
        version.rule_count_range(),
        seed,
    )
}

/// [`generate_samples`] over a given rule set and inclusive rule-count range.
pub fn generate_samples_with_rules(
    questions: &[QuestionAnswer],
    max_samples: usize,
    rule_ids: &[RuleId],
    rule_counts: (usize, usize),
    seed: u64,
) -> Vec<IfEvalSample> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let usable: Vec<&QuestionAnswer> = questions
        .iter()
        .filter(|qa| py_split(&qa.answer).count() >= 2)
        .collect();
    usable
        .windows(2)
        .take(max_samples)
        .map(|pair| generate_sample_from(pair[0], pair[1], rule_ids, rule_counts, &mut rng))
        .collect()
}

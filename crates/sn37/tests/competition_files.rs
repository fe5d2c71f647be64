//! Competition files are read as strictly as taoverse reads SN37's schedule: the golden cases
//! come from taoverse's own `EvalTask` (`scripts/golden_competition_checks.py`), and every
//! unknown key is an error.

use assay_sn37::competition::Competition;
use serde::Deserialize;

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    id: usize,
    weight: f64,
    method: String,
    kwargs: serde_json::Map<String, serde_json::Value>,
    accepted: bool,
}

const HEAD: &str = r#"
id = 7
name = "T"
reward_share = 1.0
[epsilon]
kind = "fixed"
epsilon = 0.005
[constraints]
min_params = 0
max_params = 1000
sequence_length = 64
tokenizer = { rule = "own" }
architectures = ["LlamaForCausalLM"]
max_bytes = 1000
max_projection_norm = 1000.0
high_projection_norm = 200.0
max_high_norm_fraction = 0.15
"#;

fn task(name: &str, weight: f64, normalization: &str, source: &str) -> String {
    format!(
        "[[tasks]]\nname = \"{name}\"\nmethod = \"reference_loss\"\nweight = {weight:?}\n\
         normalization = {normalization}\nsamples = 2\nsource = {source}\n"
    )
}

fn parse(text: &str) -> Result<Competition, String> {
    Competition::from_toml(text, "test.toml").map_err(|e| e.to_string())
}

#[test]
fn task_checks_match_taoverse() {
    let golden: Golden =
        serde_json::from_str(include_str!("fixtures/competition_checks.json")).expect("fixture");
    assert!(golden.cases.len() >= 10);
    for case in &golden.cases {
        let mut fields = vec![format!("method = \"{}\"", case.method)];
        for (key, value) in &case.kwargs {
            fields.push(format!("{key} = {value}"));
        }
        let normalization = format!("{{ {} }}", fields.join(", "));
        let mut text = HEAD.to_owned();
        text += &task(
            "CASE",
            case.weight,
            &normalization,
            "{ reader = \"word_sorting\" }",
        );
        // A second task takes the rest of the weight, so the weights still sum to 1.
        let rest = 1.0 - case.weight.max(0.0);
        if rest > 0.0 {
            text += &task(
                "FILLER",
                rest,
                "{ method = \"none\" }",
                "{ reader = \"word_sorting\" }",
            );
        }
        let got = parse(&text);
        assert_eq!(
            got.is_ok(),
            case.accepted,
            "case {}: weight {} {} {:?}: {got:?}",
            case.id,
            case.weight,
            case.method,
            case.kwargs
        );
    }
}

#[test]
fn the_errors_name_the_field_and_what_to_do() {
    let zero = HEAD.to_owned()
        + &task(
            "A",
            0.0,
            "{ method = \"none\" }",
            "{ reader = \"word_sorting\" }",
        )
        + &task(
            "B",
            1.0,
            "{ method = \"none\" }",
            "{ reader = \"word_sorting\" }",
        );
    let error = parse(&zero).unwrap_err();
    assert!(
        error.contains("tasks.weight") && error.contains("task A") && error.contains("> 0"),
        "{error}"
    );
    let kwargs = HEAD.to_owned()
        + &task(
            "A",
            1.0,
            "{ method = \"none\", ceiling = 20.0 }",
            "{ reader = \"word_sorting\" }",
        );
    let error = parse(&kwargs).unwrap_err();
    assert!(error.contains("takes no options"), "{error}");
}

#[test]
fn unknown_keys_are_rejected_everywhere() {
    let good = HEAD.to_owned()
        + &task(
            "A",
            1.0,
            "{ method = \"inverse_exponential\", ceiling = 20.0 }",
            "{ reader = \"word_sorting\" }",
        );
    parse(&good).expect("the base file is valid");
    let misspelt = [
        // A misspelt option beside a good one.
        good.replace("ceiling = 20.0", "ceiling = 20.0, celing = 2.0"),
        // Options on readers and rules that take none.
        good.replace(
            "{ reader = \"word_sorting\" }",
            "{ reader = \"word_sorting\", samples = 3 }",
        ),
        good.replace(
            "tokenizer = { rule = \"own\" }",
            "tokenizer = { rule = \"own\", model = \"x\" }",
        ),
        good.replace("epsilon = 0.005", "epsilon = 0.005\nstart = 0.05"),
        good.replace("samples = 2", "samples = 2\nmax_new_token = 3"),
        good.replace("reward_share = 1.0", "reward_share = 1.0\nreward = 1.0"),
        good.replace("max_bytes = 1000", "max_bytes = 1000\nmax_byte = 1"),
    ];
    for (i, text) in misspelt.iter().enumerate() {
        assert!(parse(text).is_err(), "case {i} was accepted:\n{text}");
    }
}

#[test]
fn builtin_competitions_round_trip_through_toml() {
    for competition in assay_sn37::competition::builtin_competitions() {
        let again = parse(&competition.to_toml()).unwrap();
        assert_eq!(again, competition);
    }
}

fn examples_data() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/sn37/data")
}

#[test]
fn a_competition_file_can_use_starts_with_and_dyck() {
    use assay_eval::ifeval::{IfEvalRule, Rule};
    use assay_sn37::data::{TaskData, load_task_data};
    let text = HEAD.to_owned()
        + &task(
            "DYCK_LANGUAGE",
            0.5,
            "{ method = \"none\" }",
            "{ reader = \"dyck\" }",
        )
        + &task(
            "IF_EVAL_START",
            0.5,
            "{ method = \"none\" }",
            "{ reader = \"if_eval_rules\", questions = \"questions.jsonl\", rules = [\"starts_with\", \"no_commas\"], min_rules = 2, max_rules = 2 }",
        );
    let competition = parse(&text).unwrap();
    let dyck = load_task_data(&competition.tasks[0].source, 5, &examples_data(), 3).unwrap();
    let TaskData::ReferencePairs(pairs) = dyck else {
        panic!("dyck gives reference pairs")
    };
    assert_eq!(pairs.len(), 5);
    assert!(pairs.iter().all(|(challenge, reference)| {
        challenge.starts_with(assay_eval::sn37::dyck::DYCK_PROMPT) && !reference.is_empty()
    }));
    let ifeval = load_task_data(&competition.tasks[1].source, 2, &examples_data(), 3).unwrap();
    let TaskData::IfEval(samples) = ifeval else {
        panic!("if_eval_rules gives IF-eval samples")
    };
    assert!(!samples.is_empty());
    for sample in &samples {
        let Some(Rule::StartsWith(rule)) = sample
            .rules
            .iter()
            .find(|r| matches!(r, Rule::StartsWith(_)))
        else {
            panic!("every sample has the STARTS_WITH rule: {:?}", sample.rules)
        };
        assert_eq!(sample.rules.len(), 2);
        let prompt = rule.prompt(0).unwrap();
        assert!(sample.prompts[0].contains(&prompt), "{}", sample.prompts[0]);
        let good = format!("{} The answer follows", rule.phrase);
        assert!(rule.matches(&good, 0).unwrap());
        assert!(!rule.matches("The answer follows", 1).unwrap());
    }
    let bad = text.replace("min_rules = 2", "min_rules = 3");
    assert!(parse(&bad).unwrap_err().contains("min_rules"));
    let bad = text.replace("[\"starts_with\", \"no_commas\"]", "[]");
    assert!(parse(&bad).unwrap_err().contains("rules"));
}

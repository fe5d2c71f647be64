//! Seeded GSM-style generator: determinism, answers recomputed two independent ways, diversity.

use std::collections::{BTreeMap, BTreeSet};

use assay_eval::generators::gsm::{
    GsmProblem, Op, TEMPLATES, generate, generate_batch, parse_final_answer,
};

fn numbers_in(text: &str) -> BTreeSet<i64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter_map(|t| t.parse().ok())
        .collect()
}

/// Evaluates every `<<a op b=c>>` annotation of the solution text and checks it; returns the last value.
fn recompute_from_annotations(solution: &str) -> Option<i64> {
    let mut last = None;
    for chunk in solution.split("<<").skip(1) {
        let (calc, _) = chunk.split_once(">>")?;
        let (expr, claimed) = calc.split_once('=')?;
        let pos = expr.find(['+', '-', '*', '/'])?;
        let (a, b): (i64, i64) = (expr[..pos].parse().ok()?, expr[pos + 1..].parse().ok()?);
        let value = match &expr[pos..=pos] {
            "+" => a + b,
            "-" => a - b,
            "*" => a * b,
            _ => {
                assert_eq!(a % b, 0, "division leaves a remainder in {calc}");
                a / b
            }
        };
        assert_eq!(
            value,
            claimed.parse::<i64>().ok()?,
            "annotation {calc} is wrong"
        );
        last = Some(value);
    }
    last
}

fn check_problem(p: &GsmProblem) {
    assert!(
        (2..=5).contains(&p.steps.len()),
        "{}: {} steps",
        p.id,
        p.steps.len()
    );
    assert_eq!(
        parse_final_answer(&p.solution),
        Some(p.answer),
        "{}: #### line",
        p.id
    );
    assert_eq!(
        recompute_from_annotations(&p.solution),
        Some(p.answer),
        "{}",
        p.id
    );
    let given = numbers_in(&p.question);
    let mut known: BTreeSet<i64> = given.clone();
    for step in &p.steps {
        let value = match step.op {
            Op::Add => step.a + step.b,
            Op::Sub => step.a - step.b,
            Op::Mul => step.a * step.b,
            Op::Div => {
                assert!(
                    step.b != 0 && step.a % step.b == 0,
                    "{}: inexact division",
                    p.id
                );
                step.a / step.b
            }
        };
        assert_eq!(value, step.result, "{}: step {step:?}", p.id);
        assert!(value >= 0, "{}: negative count", p.id);
        // Every operand is stated in the question or computed by an earlier step (the fruit stand's
        // "half" is the only implicit number).
        for operand in [step.a, step.b] {
            assert!(
                known.contains(&operand) || operand == 2,
                "{}: operand {operand} from nowhere",
                p.id
            );
        }
        known.insert(value);
    }
    assert_eq!(p.steps.last().map(|s| s.result), Some(p.answer));
    assert!(!given.contains(&p.answer) || p.steps.len() > 1);
}

#[test]
fn same_seed_same_problems_different_seed_different_problems() {
    let a = generate_batch(42, 50);
    assert_eq!(a, generate_batch(42, 50));
    assert_eq!(a[17], generate(42, 17));
    let b = generate_batch(43, 50);
    assert!(
        a.iter()
            .zip(&b)
            .filter(|(x, y)| x.question == y.question)
            .count()
            < 3
    );
    assert_eq!(a[3].id, "gsm-000000000000002a-3");
}

#[test]
fn answers_recompute_from_steps_and_annotations() {
    for seed in [0, 1, 7, u64::MAX] {
        for p in generate_batch(seed, 400) {
            check_problem(&p);
        }
    }
}

#[test]
fn problems_are_diverse() {
    let problems = generate_batch(2026, 2000);
    let templates: BTreeMap<&str, usize> = problems.iter().fold(BTreeMap::new(), |mut m, p| {
        *m.entry(p.template.as_str()).or_default() += 1;
        m
    });
    assert_eq!(templates.len(), TEMPLATES);
    const { assert!(TEMPLATES >= 12) };
    assert!(
        templates.values().all(|&n| n > 2000 / TEMPLATES / 3),
        "{templates:?}"
    );
    let questions: BTreeSet<&str> = problems.iter().map(|p| p.question.as_str()).collect();
    assert!(
        questions.len() > 1990,
        "only {} distinct questions",
        questions.len()
    );
    let answers: BTreeSet<i64> = problems.iter().map(|p| p.answer).collect();
    assert!(
        answers.len() > 300,
        "only {} distinct answers",
        answers.len()
    );
    let ids: BTreeSet<&str> = problems.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids.len(), problems.len());
}

#[test]
fn datacomp_item_splits_reasoning_from_answer() {
    let p = generate(9, 4);
    let item = p.cot_item();
    assert_eq!(item.prompt, p.question);
    assert_eq!(item.final_answer, p.answer.to_string());
    assert!(!item.chain_of_thought.contains("####"));
    assert_eq!(
        format!("{}\n#### {}", item.chain_of_thought, item.final_answer),
        p.solution
    );
}

#[test]
fn final_answer_parsing() {
    assert_eq!(parse_final_answer("so 3 + 4 = 7\n#### 7"), Some(7));
    assert_eq!(parse_final_answer("#### 1,234"), Some(1234));
    assert_eq!(parse_final_answer("no marker 5"), None);
    assert_eq!(parse_final_answer("#### five"), None);
}

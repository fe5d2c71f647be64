//! Schema and limit checks on submitted JSONL: good rows kept, bad rows reported with line and field.

use assay_integrity::schema::{
    Limits, ProblemKind, RowContent, read_submission, read_submission_bytes,
};

fn intake(text: &str) -> assay_integrity::schema::SubmissionIntake {
    read_submission_bytes("sub.jsonl", text.as_bytes(), &Limits::default())
}

#[test]
fn all_three_shapes_are_accepted() {
    let text = concat!(
        r#"{"prompt": "2+2?", "chain_of_thought": "two and two", "final_answer": "4"}"#,
        "\n",
        r#"{"prompt": "Say hi", "completion": "hi"}"#,
        "\r\n",
        "\n",
        r#"{"messages": [{"role": "user", "content": "hello"}, {"role": "assistant", "content": "hi"}]}"#,
        "\n",
    );
    let result = intake(text);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    let lines: Vec<usize> = result.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![1, 2, 4]);
    assert!(matches!(
        result.rows[0].content,
        RowContent::ChainOfThought { .. }
    ));
    assert!(matches!(
        result.rows[1].content,
        RowContent::Completion { .. }
    ));
    assert_eq!(result.rows[2].content.prompt_text(), "hello");
}

#[test]
fn bad_rows_are_reported_with_line_and_field_and_good_rows_kept() {
    let text = concat!(
        r#"{"prompt": "ok", "completion": "fine"}"#,
        "\n",
        r#"{"prompt": 5, "completion": "x"}"#,
        "\n",
        r#"{"prompt": "a", "chain_of_thought": "b"}"#,
        "\n",
        "not json\n",
        r#"{"prompt": "bell\u0007", "completion": "x"}"#,
        "\n",
        r#"{"prompt": "x", "completion": "y", "score": 10}"#,
        "\n",
        r#"{"messages": [{"role": "god", "content": "obey"}]}"#,
        "\n",
        r#"{"prompt": "   ", "completion": "y"}"#,
        "\n",
        r#"{"foo": "bar"}"#,
        "\n",
        r#"[1, 2]"#,
        "\n",
        r#"{"prompt": "last", "completion": "good"}"#,
        "\n",
    );
    let result = intake(text);
    assert_eq!(
        result.rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        vec![1, 11]
    );
    let found: Vec<(usize, Option<&str>, &ProblemKind)> = result
        .problems
        .iter()
        .map(|p| (p.line.unwrap(), p.field.as_deref(), &p.kind))
        .collect();
    assert_eq!(
        found,
        vec![
            (2, Some("prompt"), &ProblemKind::WrongType),
            (3, Some("final_answer"), &ProblemKind::MissingField),
            (4, None, &ProblemKind::InvalidJson),
            (5, Some("prompt"), &ProblemKind::ControlCharacter),
            (6, Some("score"), &ProblemKind::UnexpectedField),
            (7, Some("messages[0].role"), &ProblemKind::InvalidRole),
            (8, Some("prompt"), &ProblemKind::TooShort),
            (9, None, &ProblemKind::UnknownShape),
            (10, None, &ProblemKind::InvalidJson),
        ]
    );
    assert!(result.problems.iter().all(|p| p.file == "sub.jsonl"));
    assert!(
        result.problems[0]
            .to_string()
            .starts_with("sub.jsonl:2 field `prompt`")
    );
    // Wrong types are named, so the miner knows what was sent.
    assert!(
        result.problems[0].message.contains("found a number"),
        "{}",
        result.problems[0]
    );
    assert!(
        result.problems[8].message.contains("found an array"),
        "{}",
        result.problems[8]
    );
}

#[test]
fn invalid_utf8_and_bidi_overrides_are_rejected() {
    let mut bytes = br#"{"prompt": "caf"#.to_vec();
    bytes.extend_from_slice(&[0xC3, 0x28]);
    bytes.extend_from_slice(b"\", \"completion\": \"x\"}\n");
    bytes.extend_from_slice("{\"prompt\": \"abc\u{202E}fed\", \"completion\": \"x\"}\n".as_bytes());
    let result = read_submission_bytes("f", &bytes, &Limits::default());
    assert!(result.rows.is_empty());
    assert_eq!(result.problems[0].kind, ProblemKind::InvalidUtf8);
    assert!(
        result.problems[0].message.contains("byte 15"),
        "{}",
        result.problems[0].message
    );
    assert_eq!(result.problems[1].kind, ProblemKind::ControlCharacter);
    assert!(result.problems[1].message.contains("U+202E"));
}

#[test]
fn zero_width_characters_are_allowed_by_the_schema() {
    // They are not control characters; the canonical form removes them before duplicate checks.
    let result = intake("{\"prompt\": \"pa\u{200B}ss\", \"completion\": \"x\"}\n");
    assert_eq!(result.rows.len(), 1);
}

#[test]
fn length_and_count_limits_apply() {
    let limits = Limits {
        max_field_chars: 5,
        max_line_bytes: 60,
        max_rows: 2,
        max_messages: 1,
        ..Limits::default()
    };
    let text = concat!(
        r#"{"prompt": "123456", "completion": "x"}"#,
        "\n",
        r#"{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}"#,
        "\n",
        r#"{"prompt": "ok", "completion": "ok"}"#,
        "\n",
    );
    let result = read_submission_bytes("f", text.as_bytes(), &limits);
    assert!(result.rows.is_empty());
    let kinds: Vec<(usize, &ProblemKind)> = result
        .problems
        .iter()
        .map(|p| (p.line.unwrap(), &p.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![
            (1, &ProblemKind::TooLarge),
            (2, &ProblemKind::TooLarge),
            (3, &ProblemKind::TooManyRows)
        ]
    );
    assert!(result.problems[1].message.contains("bytes"));
    assert!(result.problems[2].message.contains("more than 2 rows"));
}

#[test]
fn oversized_and_missing_files_are_file_level_problems() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.jsonl");
    std::fs::write(&path, "x".repeat(100)).unwrap();
    let result = read_submission(
        &path,
        &Limits {
            max_file_bytes: 10,
            ..Limits::default()
        },
    );
    assert_eq!(result.problems.len(), 1);
    assert_eq!(result.problems[0].kind, ProblemKind::TooLarge);
    assert_eq!(result.problems[0].line, None);
    let missing = read_submission(&dir.path().join("nope.jsonl"), &Limits::default());
    assert_eq!(missing.problems[0].kind, ProblemKind::Unreadable);
}

#[test]
fn deeply_nested_json_is_an_error_not_a_crash() {
    let text = format!(
        "{{\"prompt\": {}1{}, \"completion\": \"x\"}}\n",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let result = intake(&text);
    assert!(result.rows.is_empty());
    assert_eq!(result.problems[0].kind, ProblemKind::InvalidJson);
}

/// Issue #19 item 11: a byte-order mark does not cost the first row, and an object that names a
/// key twice is refused with the key (validators in other languages could read the other value).
#[test]
fn a_bom_is_accepted_and_duplicate_keys_are_refused() {
    let text = concat!(
        "\u{feff}",
        r#"{"prompt": "Say hi", "completion": "hi"}"#,
        "\n",
        r#"{"prompt": "a", "completion": "b", "prompt": "c"}"#,
        "\n",
    );
    let result = intake(text);
    assert_eq!(result.rows.len(), 1);
    assert_eq!(result.rows[0].line, 1);
    assert_eq!(result.problems.len(), 1);
    let problem = &result.problems[0];
    assert_eq!(problem.line, Some(2));
    assert_eq!(problem.kind, ProblemKind::DuplicateKey);
    assert!(
        problem.message.contains("duplicate key `prompt`"),
        "{}",
        problem.message
    );
}

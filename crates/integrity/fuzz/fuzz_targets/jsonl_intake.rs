//! Any bytes as a JSONL submission: intake must never panic, and kept rows must be problem-free.
#![no_main]

use assay_integrity::canonical::canonical_form;
use assay_integrity::schema::{Limits, read_submission_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_field_chars: 4096, max_line_bytes: 16 * 1024, max_rows: 1000, ..Limits::default() };
    let intake = read_submission_bytes("fuzz.jsonl", data, &limits);
    for row in &intake.rows {
        assert!(!intake.problems.iter().any(|p| p.line == Some(row.line)));
        for (_, text) in row.content.text_fields() {
            let once = canonical_form(text);
            assert_eq!(canonical_form(&once), once);
        }
    }
});

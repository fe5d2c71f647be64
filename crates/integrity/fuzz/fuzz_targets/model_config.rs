//! Any bytes as `config.json`: the check must never panic and only accept whitelisted architectures.
#![no_main]

use assay_integrity::models::{ModelRules, check_config};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let rules = ModelRules::default();
    if let Ok(architecture) = check_config(data, &rules) {
        assert!(rules.architectures.contains(&architecture));
    }
});

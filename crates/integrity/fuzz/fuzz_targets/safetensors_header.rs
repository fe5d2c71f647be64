//! Any bytes as a safetensors file: the header check must never panic, and an accepted file's
//! tensor views must match their declared shapes.
#![no_main]

use assay_integrity::models::{ModelRules, check_safetensors_header};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(parsed) = check_safetensors_header("fuzz", data, &ModelRules::default()) {
        for (_, view) in parsed.iter() {
            let elements: usize = view.shape().iter().product();
            assert_eq!(elements * view.dtype().bitsize() / 8, view.data().len());
        }
    }
});

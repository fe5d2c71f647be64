//! SN37 word-sorting generator: list, prompt format, reference and seeding.

use std::collections::HashSet;

use assay_eval::sn37::word_sorting::{
    WORD_SORTING_PROMPT, WordSortingConfig, WordSortingError, basic_english_words,
    generate_word_sorting, word_sorting_sample,
};

#[test]
fn word_list_is_nltk_en_basic_after_sn37_filter() {
    let all = basic_english_words(0);
    assert_eq!(all.len(), 850);
    let kept = basic_english_words(3);
    assert_eq!(kept.len(), 832);
    assert!(
        kept.iter()
            .all(|word| word.len() >= 3 && word.to_lowercase() == *word)
    );
    assert!(!kept.contains(&"i".to_owned()) && kept.contains(&"yesterday".to_owned()));
}

#[test]
fn prompt_and_reference_have_sn37_format() {
    let sample = word_sorting_sample(&["pig", "apple", "moon"]);
    assert_eq!(
        sample.challenge,
        "Sort the following words alphabetically: pig apple moon. "
    );
    assert_eq!(sample.reference, "apple moon pig");
}

#[test]
fn samples_are_seeded_sorted_and_in_range() {
    let config = WordSortingConfig::default();
    let first = generate_word_sorting(&config, 11).unwrap();
    assert_eq!(first, generate_word_sorting(&config, 11).unwrap());
    assert_ne!(first, generate_word_sorting(&config, 12).unwrap());
    assert_eq!(first.len(), 400);
    let vocabulary: HashSet<String> = basic_english_words(3).into_iter().collect();
    let mut counts = HashSet::new();
    for sample in &first {
        let body = sample
            .challenge
            .strip_prefix(WORD_SORTING_PROMPT)
            .unwrap()
            .strip_suffix(". ")
            .unwrap();
        let words: Vec<&str> = body.split(' ').collect();
        assert!((2..=20).contains(&words.len()));
        assert!(words.iter().all(|word| vocabulary.contains(*word)));
        let mut sorted = words.clone();
        sorted.sort();
        assert_eq!(sample.reference, sorted.join(" "));
        counts.insert(words.len());
    }
    assert_eq!(
        counts.len(),
        19,
        "every count 2..=20 appears in 400 samples"
    );
}

#[test]
fn impossible_configs_are_errors() {
    let empty = WordSortingConfig {
        min_word_count: 5,
        max_word_count: 2,
        ..Default::default()
    };
    assert!(matches!(
        generate_word_sorting(&empty, 0),
        Err(WordSortingError::EmptyRange { .. })
    ));
    let too_many = WordSortingConfig {
        max_word_count: 5000,
        ..Default::default()
    };
    assert!(matches!(
        generate_word_sorting(&too_many, 0),
        Err(WordSortingError::NotEnoughWords { .. })
    ));
}

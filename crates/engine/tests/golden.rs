//! The engine against golden outputs of transformers (made by `fixtures/make_engine_fixtures.py`).

mod common;
use common::{ids, read_json, tiny};

use assay_engine::{
    BatchLimits, ChatMessage, ChatTemplate, GenerateOptions, LoadOptions, ModelSource, Pass,
    SamplingParams, generate, load, score_sequences,
};
use candle_core::Tensor;

fn assert_close(ours: f32, theirs: f64, rel: f64, what: &str) {
    let diff = (ours as f64 - theirs).abs();
    assert!(
        diff <= rel * theirs.abs().max(1.0),
        "{what}: ours {ours} vs transformers {theirs}"
    );
}

#[test]
fn tiny_models_match_transformers_logits_and_logprobs() {
    let golden = read_json("tiny-golden.json");
    for name in ["tiny-llama", "tiny-qwen2"] {
        let g = &golden[name];
        let lm = tiny(name);
        let seqs: Vec<Vec<u32>> = g["sequences"].as_array().unwrap().iter().map(ids).collect();
        // Logits of the right-padded batch, compared at the real positions.
        let width = seqs.iter().map(Vec::len).max().unwrap();
        let padded: Vec<u32> = seqs
            .iter()
            .flat_map(|s| {
                s.iter()
                    .copied()
                    .chain(std::iter::repeat_n(0, width - s.len()))
            })
            .collect();
        let batch =
            Tensor::from_vec(padded, (seqs.len(), width), &candle_core::Device::Cpu).unwrap();
        let logits = lm
            .model
            .forward(&batch, Pass::Inference)
            .unwrap()
            .to_vec3::<f32>()
            .unwrap();
        for (r, s) in seqs.iter().enumerate() {
            let want = g["logits"][r].as_array().unwrap();
            for t in 0..s.len() {
                for (v, w) in want[t].as_array().unwrap().iter().enumerate() {
                    assert_close(
                        logits[r][t][v],
                        w.as_f64().unwrap(),
                        1e-4,
                        &format!("{name} logits[{r}][{t}][{v}]"),
                    );
                }
            }
        }
        let scores =
            score_sequences(&lm.model, &seqs, BatchLimits { max_tokens: 20 }, |_| {}).unwrap();
        for (r, s) in scores.iter().enumerate() {
            let want = g["token_logprobs"][r].as_array().unwrap();
            assert_eq!(s.logprobs.len(), want.len());
            for (i, w) in want.iter().enumerate() {
                assert_close(
                    s.logprobs[i],
                    w.as_f64().unwrap(),
                    1e-4,
                    &format!("{name} logprob[{r}][{i}]"),
                );
            }
        }
    }
}

#[test]
fn tiny_models_greedy_tokens_equal_transformers() {
    let golden = read_json("tiny-golden.json");
    for name in ["tiny-llama", "tiny-qwen2"] {
        let g = &golden[name]["greedy"];
        let lm = tiny(name);
        let prompts: Vec<Vec<u32>> = g["prompts"].as_array().unwrap().iter().map(ids).collect();
        let params = SamplingParams {
            max_new_tokens: g["max_new_tokens"].as_u64().unwrap() as usize,
            ..Default::default()
        };
        let out = generate(
            &lm.model,
            &lm.tokenizer,
            &prompts,
            &params,
            GenerateOptions::default(),
            |_| {},
        )
        .unwrap();
        let eos = g["eos_token_id"].as_u64().unwrap() as u32;
        for (p, want) in g["outputs"].as_array().unwrap().iter().enumerate() {
            let mut want = ids(want);
            if let Some(stop) = want.iter().position(|&t| t == eos) {
                want.truncate(stop); // transformers keeps the eos token; we report it as the finish reason
            }
            assert_eq!(out[p][0].token_ids, want, "{name} prompt {p}");
        }
    }
}

#[test]
fn chat_templates_render_like_transformers() {
    let golden = read_json("templates.json");
    for case in golden["cases"].as_array().unwrap() {
        let name = case["template"].as_str().unwrap();
        let template = ChatTemplate::new(golden["templates"][name].as_str().unwrap()).unwrap();
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let extra = case["extra"].as_object().unwrap();
        let agp = case["add_generation_prompt"].as_bool().unwrap();
        let rendered = template.render(&messages, agp, extra).unwrap();
        assert_eq!(
            rendered,
            case["rendered"].as_str().unwrap(),
            "{name} agp={agp} {messages:?}"
        );
    }
}

/// The real model: SmolLM2-135M-Instruct from its GGUF (fetched once per machine and cached).
#[test]
fn smollm2_greedy_chat_and_bits_per_byte_match_transformers() {
    let golden = read_json("smollm2-golden.json");
    let lm = load(
        &ModelSource::resolve(None).unwrap(),
        &LoadOptions::default(),
    )
    .unwrap();
    let template = lm
        .tokenizer
        .chat_template
        .as_ref()
        .expect("the GGUF carries a chat template");
    let mut prompts = Vec::new();
    for case in golden["chat"].as_array().unwrap() {
        let messages = [ChatMessage::new("user", case["prompt"].as_str().unwrap())];
        let text = template
            .render(&messages, true, &serde_json::Map::new())
            .unwrap();
        let prompt = lm.tokenizer.encode(&text, false).unwrap();
        assert_eq!(
            prompt,
            ids(&case["prompt_ids"]),
            "chat-templated prompt tokens"
        );
        prompts.push(prompt);
    }
    let params = SamplingParams {
        max_new_tokens: 24,
        ..Default::default()
    };
    let out = generate(
        &lm.model,
        &lm.tokenizer,
        &prompts,
        &params,
        GenerateOptions::default(),
        |_| {},
    )
    .unwrap();
    for (case, got) in golden["chat"].as_array().unwrap().iter().zip(&out) {
        let mut want = ids(&case["output_ids"]);
        want.retain(|t| !lm.tokenizer.eos_token_ids.contains(t));
        assert_eq!(
            got[0].token_ids, want,
            "greedy output for {}",
            case["prompt"]
        );
        assert_eq!(got[0].text, case["text"].as_str().unwrap());
    }
    let bpb = &golden["bpb"];
    let text = golden["bpb_text"].as_str().unwrap();
    let tokens = lm.tokenizer.encode(text, false).unwrap();
    assert_eq!(
        tokens,
        ids(&bpb["token_ids"]),
        "tokenisation of the bits-per-byte text"
    );
    let scores = score_sequences(
        &lm.model,
        std::slice::from_ref(&tokens),
        BatchLimits::default(),
        |_| {},
    )
    .unwrap();
    let nats: f64 = -scores[0].logprobs.iter().map(|&x| x as f64).sum::<f64>();
    let bytes = lm.tokenizer.decode(&tokens[1..], false).unwrap().len() as f64;
    let ours = nats / std::f64::consts::LN_2 / bytes;
    let theirs = bpb["bits_per_byte"].as_f64().unwrap();
    assert!(
        (ours / theirs - 1.0).abs() < 0.01,
        "bits per byte: ours {ours}, transformers {theirs}"
    );
}

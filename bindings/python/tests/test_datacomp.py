"""The Datacomp interview's contract: its reference solution's driver code runs unchanged on
assay's functions (CrucibleAILabs/technical-interview:reference_solution.py@ece3749)."""

import pytest

from assay import datacomp, metrics
from conftest import ENGINE_FIXTURES

# The reference's two samples (same fields, same kind of content).
SAMPLE_DATA = [
    {
        "prompt": "Explain why the sky is blue:",
        "chain_of_thought": "Think of Rayleigh scattering: air molecules scatter short wavelengths.",
        "final_answer": "The sky looks blue because air scatters blue light more than red light.",
    },
    {
        "prompt": "What is 2 + 2?",
        "chain_of_thought": "Simple arithmetic. 2 + 2 = 4",
        "final_answer": "4",
    },
]

# The reference's `__main__` block, written as a function of its four names.
DRIVER = """
model, tokenizer = load_model({model_name})
score_before = validate_and_score(model, tokenizer, SAMPLE_DATA, do_finetune=False)
print(f"Score before fine-tuning: {{score_before:.3f}}")
score_after = validate_and_score(model, tokenizer, SAMPLE_DATA, do_finetune=True)
print(f"Score after fine-tuning:  {{score_after:.3f}}")
"""


def run_driver(model_name):
    namespace = {name: getattr(datacomp, name) for name in datacomp.__all__}
    namespace["SAMPLE_DATA"] = SAMPLE_DATA
    exec(DRIVER.format(model_name=model_name), namespace)
    return namespace


def test_driver_runs_on_the_tiny_model_and_scores_are_the_reference_metric(capsys):
    ns = run_driver(repr(str(ENGINE_FIXTURES / "tiny-llama")))
    out = capsys.readouterr().out
    assert "Score before fine-tuning:" in out and "Score after fine-tuning:" in out
    model, tokenizer = ns["model"], ns["tokenizer"]
    outputs = datacomp.forward_pass(model, tokenizer, [d["prompt"] for d in SAMPLE_DATA])
    assert len(outputs) == 2 and all(o == o.strip() for o in outputs)
    expected = sum(
        datacomp.naive_string_similarity(o, d["final_answer"]) for o, d in zip(outputs, SAMPLE_DATA)
    ) / len(SAMPLE_DATA)
    assert datacomp.validate_and_score(model, tokenizer, SAMPLE_DATA, do_finetune=False) == expected
    assert 0.0 <= ns["score_before"] <= 1.0 and 0.0 <= ns["score_after"] <= 1.0


def test_the_one_step_fine_tune_changes_the_model():
    model, tokenizer = datacomp.load_model(str(ENGINE_FIXTURES / "tiny-llama"))
    text = SAMPLE_DATA[0]["chain_of_thought"] + "\nAnswer: " + SAMPLE_DATA[0]["final_answer"]
    ids = tokenizer.encode(text)

    def loss():
        return -float(model.score_tokens([ids])[0].mean())

    before = loss()
    report = datacomp.fine_tune_on_chain_of_thought(model, tokenizer, SAMPLE_DATA, lr=1e-3)
    after = loss()
    assert report["steps"] == 1
    assert after < before


def test_naive_similarity_is_the_reference_set_recall():
    assert datacomp.naive_string_similarity("The sky is BLUE", "the sky is blue today") == 0.8
    assert datacomp.naive_string_similarity("anything", "") == 0.0
    assert metrics.word_recall("a\u00a0b", "a b") == 1.0  # str.split() splits on NBSP too


@pytest.mark.slow
def test_driver_runs_unchanged_on_the_embedded_default_model(capsys):
    ns = run_driver("")
    assert "SmolLM2" in ns["model"].source or ns["model"].source.endswith(".gguf")
    assert 0.0 <= ns["score_before"] <= 1.0

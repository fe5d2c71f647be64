"""The engine through Python: the tiny random Llama of crates/engine's golden tests (made with
transformers), generation, scoring, LoRA training, and errors as exception classes."""

import json

import numpy as np
import pytest

import assay
from conftest import ENGINE_FIXTURES


def test_token_logprobs_match_transformers(tiny_llama):
    golden = json.loads((ENGINE_FIXTURES / "tiny-golden.json").read_text())["tiny-llama"]
    got = tiny_llama.score_tokens(golden["sequences"])
    assert len(got) == len(golden["sequences"])
    for have, want in zip(got, golden["token_logprobs"]):
        assert have.dtype == np.float32
        np.testing.assert_allclose(have, want, atol=1e-4)


def test_generate_is_deterministic_and_matches_scoring(tiny_llama):
    prompts = ["The sky is", "2 + 2 ="]
    first = tiny_llama.generate(prompts, max_new_tokens=8)
    assert first == tiny_llama.generate(prompts, max_new_tokens=8, max_batch_rows=1)
    assert len(first) == 2 and all(isinstance(t, str) for t in first)
    # Greedy text scores as greedy.
    for prompt, text in zip(prompts, first):
        if text:
            [score] = tiny_llama.score([prompt], [text])
            assert score["logprobs"].dtype == np.float32
            assert score["mean_nll"] == pytest.approx(-score["logprobs"].mean(), rel=1e-5)
    samples = tiny_llama.generate(prompts, max_new_tokens=6, n=3, temperature=1.0, seed=7)
    assert [len(s) for s in samples] == [3, 3]
    assert samples == tiny_llama.generate(prompts, max_new_tokens=6, n=3, temperature=1.0, seed=7)


def test_progress_callback_sees_every_step_and_its_errors_propagate(tiny_llama):
    events = []
    tiny_llama.generate(["hello"], max_new_tokens=5, progress=events.append)
    assert events and all("tokens" in e for e in events)

    def broken(event):
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        tiny_llama.generate(["hello"], max_new_tokens=5, progress=broken)


def test_lora_training_lowers_the_loss_and_saves_a_peft_adapter(tmp_path):
    model = assay.Model.load(str(ENGINE_FIXTURES / "tiny-llama"))
    rows = [{"prompt": "Q: colour of the sky? A:", "completion": " blue blue blue"}] * 4
    before = model.score([rows[0]["prompt"]], [rows[0]["completion"]])[0]["mean_nll"]
    steps = []
    report = model.train(rows, rank=4, alpha=8.0, lr=5e-2, steps=12, seed=1, progress=steps.append)
    after = model.score([rows[0]["prompt"]], [rows[0]["completion"]])[0]["mean_nll"]
    assert report["steps"] == 12 and len(steps) == 12
    assert after < before * 0.8
    model.save_adapter(tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["r"] == 4
    assert (tmp_path / "adapter" / "adapter_model.safetensors").stat().st_size > 0
    with pytest.raises(assay.AssayError, match="already has LoRA adapters"):
        model.train(rows, steps=1)


def test_errors_are_exception_classes_by_blame(tmp_path):
    with pytest.raises(assay.AssayError) as caught:
        assay.Model.load(str(tmp_path / "no-such-model"))
    assert isinstance(caught.value, (assay.OperatorError, assay.MinerError))
    assert caught.value.blame in ("operator", "miner")
    assert "no-such-model" in str(caught.value)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{not json")
    with pytest.raises(assay.AssayError, match="config.json"):
        assay.Model.load(str(tmp_path / "broken"))
    with pytest.raises(assay.AssayError, match="device"):
        assay.Model.load(str(ENGINE_FIXTURES / "tiny-llama"), device="tpu")
    with pytest.raises(ValueError, match="2 prompts but 1 completions"):
        assay.Model.load(str(ENGINE_FIXTURES / "tiny-llama")).score(["a", "b"], ["c"])


def test_the_gil_is_released_during_generation(tiny_llama):
    import threading
    import time

    ticks = []
    done = threading.Event()

    def ticker():
        while not done.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    thread = threading.Thread(target=ticker)
    thread.start()
    try:
        tiny_llama.generate(["a b c"] * 8, max_new_tokens=48)
    finally:
        done.set()
        thread.join()
    assert len(ticks) > 5

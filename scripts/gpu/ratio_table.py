"""Ratio table of `assay bench` against `peer_hf_bench.py` measured in the same call.

Usage: python3 ratio_table.py OURS.jsonl PEER.jsonl [DEVICE] > table.md
"""
import json, sys, datetime

def lines(path):
    out = []
    for line in open(path):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return out

ours, peer = lines(sys.argv[1]), lines(sys.argv[2])
device = sys.argv[3] if len(sys.argv) > 3 else "?"

def find(rows, what, **match):
    for r in rows:
        if r.get("what") == what and all(r.get(k) == v for k, v in match.items()):
            return r
    return None

rows = []
def add(name, o, p, key, target, note=""):
    if o is None or p is None:
        rows.append((name, "-" if o is None else o[key], "-" if p is None else p[key], "not measured", target, note))
        return
    ratio = o[key] / p[key]
    rows.append((name, o[key], p[key], f"{ratio:.2f}x", target, note))

for b, target in ((16, ">= 3x"), (320, ">= 2x")):
    add(f"generate, batch {b} (new tok/s)", find(ours, "assay_generate", batch=b),
        find(peer, "hf_generate", batch=b), "new_tok_per_s", target)
    s = find(peer, "hf_generate_static_compiled", batch=b)
    if s:
        add(f"generate, batch {b}, vs static-cache compiled", find(ours, "assay_generate", batch=b), s,
            "new_tok_per_s", "(strongest peer)")
add("forward + loss 32x1024 (tok/s)", find(ours, "assay_forward_loss"), find(peer, "hf_forward_loss"),
    "tok_per_s", ">= 1.0x")
o, p = find(ours, "assay_lora_step"), find(peer, "hf_peft_lora_step")
mem = ""
if o and p:
    mem = f"peak {o['peak_gib']} GiB vs {p['peak_gib']} GiB ({o['peak_gib'] / p['peak_gib']:.0%})"
add("LoRA r=16 step 8x512 (tok/s)", o, p, "tok_per_s", ">= 1.0x at <= 50% memory", mem)
o = find(ours, "assay_scratch_train_step")
add("from-scratch 110M 32x1024 (tok/s)", o, find(peer, "hf_scratch_train_step"), "tok_per_s", ">= 1.0x",
    f"ours in {o['dtype']}" if o else "")

o, p = find(ours, "assay_bon"), find(peer, "hf_bon")
if o and p:
    rows.append(("best-of-N 20x16 + PRM, wall s (gen + PRM)", f"{o['total_s']} ({o['gen_s']} + {o['prm_s']})",
                 f"{p['total_s']} ({p['gen_s']} + {p['prm_s']})", f"{p['total_s'] / o['total_s']:.2f}x", "(issue #8)", ""))

print(f"### {datetime.date.today().isoformat()} on {device}\n")
print("| measurement | assay | transformers | ratio | target | note |")
print("|---|---|---|---|---|---|")
for r in rows:
    print("| " + " | ".join(str(x) for x in r) + " |")
for n in [r for r in ours if r.get("what") == "assay_numerics"]:
    print(f"\nnumerics {n['model']}: f32 rel err {n['logits_f32_rel_err']:.2e} (ok={n['logits_f32_ok']}), "
          f"bf16 rel err {n['logits_bf16_rel_err']:.2e} (ours vs f32 truth {n['bf16_ours_vs_f32_truth']:.2e}, "
          f"theirs {n['bf16_theirs_vs_f32_truth']:.2e}), greedy f32 identical: {n['greedy_f32_identical']}")

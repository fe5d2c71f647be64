#!/usr/bin/env python3
"""The peer for `assay datacomp run` on the GPU: the same round's work done with transformers + PEFT.

    python3 scripts/gpu/peer_datacomp.py --model DIR --submissions DIR --eval problems.jsonl \
        [--token-budget N] [--lr F] [--rank R] [--top-layers K] [--batch-tokens T] [--max-new-tokens M]

The recipe is assay's (crates/datacomp): for every miner listed in round.json, a fresh LoRA adapter
(rank R, alpha 2R, every linear projection of the top K layers, no dropout) trained with AdamW (no
weight decay, constant rate) on the miner's rows written as chat turns (the question wrapped in the
step-by-step instruction, the target `reasoning\\n#### answer` then end-of-turn), loss on the
completion tokens only, micro-batches of at most T padded tokens, until N completion tokens are spent
(the data repeats when short); then the held-out evaluation: the gold solutions' loss per token and
M greedy tokens per problem (batched, left-padded) graded by the final number. Defaults are
assay's (`assay datacomp run --help`). The base model is
evaluated once too. Rows are not integrity-checked here (assay's integrity stage is CPU work that the
peer would need to add). Prints one JSON line of timings; bf16 weights, SDPA attention.
"""
import argparse
import json
import math
import os
import re
import time

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

INSTRUCTION = "Solve the problem. Reason step by step, then give the final answer after ####.\n\n"


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def prompt_ids(tok, question):
    text = tok.apply_chat_template([{"role": "user", "content": INSTRUCTION + question}],
                                   tokenize=False, add_generation_prompt=True)
    return tok(text, add_special_tokens=False)["input_ids"]


def target_ids(tok, row):
    target = f"{row['chain_of_thought'].rstrip()}\n#### {str(row['final_answer']).strip()}"
    return tok(target, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]


def batches(examples, batch_tokens):
    """Micro-batches of consecutive examples whose padded size stays within batch_tokens."""
    out, cur, longest = [], [], 0
    for ex in examples:
        n = len(ex[0]) + len(ex[1])
        if cur and max(longest, n) * (len(cur) + 1) > batch_tokens:
            out.append(cur)
            cur, longest = [], 0
        cur.append(ex)
        longest = max(longest, n)
    if cur:
        out.append(cur)
    return out


def collate(batch, pad, device):
    longest = max(len(p) + len(t) for p, t in batch)
    ids = torch.full((len(batch), longest), pad, dtype=torch.long)
    labels = torch.full((len(batch), longest), -100, dtype=torch.long)
    mask = torch.zeros((len(batch), longest), dtype=torch.long)
    for i, (p, t) in enumerate(batch):
        seq = p + t
        ids[i, :len(seq)] = torch.tensor(seq)
        labels[i, len(p):len(seq)] = torch.tensor(t)
        mask[i, :len(seq)] = 1
    return ids.to(device), labels.to(device), mask.to(device)


def evaluate(model, tok, problems, max_new_tokens, device):
    model.eval()
    with torch.no_grad():
        # The gold solutions' loss, all problems in one padded batch: mean per problem, then mean.
        ids, labels, mask = collate([(prompt_ids(tok, p["prompt"]), target_ids(tok, p)) for p in problems],
                                    tok.pad_token_id, device)
        logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100,
                                                reduction="none")
        counted = (target != -100).sum(dim=1).clamp(min=1)
        losses = (nll.sum(dim=1) / counted).tolist()
        tok.padding_side = "left"
        texts = [tok.decode(prompt_ids(tok, p["prompt"])) for p in problems]
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id)
        outs = tok.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
    correct = 0
    for text, p in zip(outs, problems):
        tail = text.rsplit("####", 1)[-1]
        nums = re.findall(r"-?[\d,]*\.?\d+", tail)
        if nums and nums[-1].replace(",", "").rstrip(".") == str(p["final_answer"]).replace(",", "").strip():
            correct += 1
    return sum(losses) / len(losses), correct / len(problems)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--submissions", required=True)
    ap.add_argument("--eval", required=True)
    ap.add_argument("--token-budget", type=int, default=1200)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--top-layers", type=int, default=2)
    ap.add_argument("--batch-tokens", type=int, default=1024)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    device = "cuda"
    torch.manual_seed(args.seed)
    t0 = time.time()
    tok = AutoTokenizer.from_pretrained(args.model)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    base = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16, attn_implementation="sdpa").to(device)
    torch.cuda.synchronize()
    t_load = time.time() - t0
    problems = read_jsonl(args.eval)
    round_ = json.load(open(os.path.join(args.submissions, "round.json")))
    t1 = time.time()
    base_loss, base_acc = evaluate(base, tok, problems, args.max_new_tokens, device)
    t_base = time.time() - t1
    layers = base.config.num_hidden_layers
    top = list(range(layers - args.top_layers, layers)) if args.top_layers > 0 else None
    per_miner = []
    t2 = time.time()
    for miner in round_["miners"]:
        rows = read_jsonl(os.path.join(args.submissions, miner["file"]))
        examples = [(prompt_ids(tok, r["prompt"]), target_ids(tok, r)) for r in rows]
        cfg = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.0, layers_to_transform=top,
                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        model = get_peft_model(base, cfg)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
        model.train()
        spent, steps, s0 = 0, 0, time.time()
        while spent < args.token_budget:
            for batch in batches(examples, args.batch_tokens):
                if spent >= args.token_budget:
                    break
                ids, labels, mask = collate(batch, tok.pad_token_id, device)
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                spent += int((labels != -100).sum())
                steps += 1
        torch.cuda.synchronize()
        train_s = time.time() - s0
        e0 = time.time()
        loss, acc = evaluate(model, tok, problems, args.max_new_tokens, device)
        eval_s = time.time() - e0
        per_miner.append({"hotkey": miner.get("hotkey"), "steps": steps, "tokens": spent, "train_s": round(train_s, 2),
                          "eval_s": round(eval_s, 2), "reference_loss": loss, "accuracy": acc})
        base = model.unload()  # the base model without the adapter, for the next miner
    total = time.time() - t0
    print(json.dumps({"what": "datacomp_round", "impl": "transformers+peft", "miners": len(per_miner),
                      "load_s": round(t_load, 2), "base_eval_s": round(t_base, 2),
                      "miners_s": round(time.time() - t2, 2), "total_s": round(total, 2),
                      "peak_mem_gb": round(torch.cuda.max_memory_allocated() / 2**30, 2),
                      "base": {"reference_loss": base_loss, "accuracy": base_acc},
                      "per_miner": per_miner}), flush=True)


if __name__ == "__main__":
    main()

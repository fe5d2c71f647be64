#!/usr/bin/env python3
"""CPU-vs-GPU agreement of the same rounds (scripts/gpu/real-scale.sh agree), as a Markdown table.

    python3 scripts/gpu/agreement.py OUT_DIR

Reads OUT_DIR/agree-{cpu,f32,bf16}/results.json (Datacomp) and OUT_DIR/sn37-ex-{cpu,cudaf32,cudabf16}/
results.json (SN37) and prints, for each GPU run against the CPU run, the largest absolute and relative
difference of every number per miner (scores, losses, accuracies, win rates) and whether the ranking
is the same.
"""
import json
import os
import sys


def numbers(value, prefix=""):
    """Every number in a JSON value, keyed by its path."""
    if isinstance(value, bool) or value is None:
        return {}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            out.update(numbers(v, f"{prefix}.{k}" if prefix else k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out.update(numbers(v, f"{prefix}[{i}]"))
    return out


def per_miner(path, key, name, score):
    with open(path) as f:
        results = json.load(f)
    rows = {m[name]: m for m in results[key]}
    ranking = sorted(rows, key=lambda h: (score(rows[h]), h))
    return rows, ranking


def compare(out, label, files, key, name, score, skip=()):
    cpu = os.path.join(out, files[0], "results.json")
    if not os.path.exists(cpu):
        print(f"| {label} | CPU run missing | | | |")
        return
    base, base_rank = per_miner(cpu, key, name, score)
    for gpu_dir in files[1:]:
        path = os.path.join(out, gpu_dir, "results.json")
        if not os.path.exists(path):
            print(f"| {label} | {gpu_dir}: missing | | | |")
            continue
        rows, rank = per_miner(path, key, name, score)
        worst_abs, worst_rel, where = 0.0, 0.0, "-"
        for h, m in base.items():
            a, b = numbers(m), numbers(rows.get(h, {}))
            for k, x in a.items():
                if any(s in k for s in skip) or k not in b:
                    continue
                d = abs(x - b[k])
                rel = d / max(abs(x), 1e-12)
                if d > worst_abs:
                    worst_abs, worst_rel, where = d, rel, f"{h}: {k}"
        same = "yes" if rank == base_rank else f"no: {rank} vs {base_rank}"
        print(f"| {label} | {gpu_dir} | {worst_abs:.3g} (rel {worst_rel:.3g}) at {where} | {same} |")


def main():
    out = sys.argv[1]
    print("| round | GPU run vs CPU f32 | largest difference | same ranking |")
    print("|---|---|---|---|")
    compare(out, "Datacomp, 8 graded miners", ["agree-cpu", "agree-f32", "agree-bf16"], "miners", "hotkey",
            lambda m: -m["score"], skip=("u16",))
    compare(out, "SN37 example round", ["sn37-ex-cpu", "sn37-ex-cudaf32", "sn37-ex-cudabf16"], "models", "hotkey",
            lambda m: m["score"] if m.get("score") is not None else float("inf"))


if __name__ == "__main__":
    main()

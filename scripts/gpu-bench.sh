#!/usr/bin/env bash
# Runs on the GPU machine: our bench and the transformers peer in ONE call, then the ratio table.
#   bash scripts/gpu-bench.sh [MEASUREMENTS]      (default: numerics gen fwd lora scratch)
# Expects .gpu/ to hold the CUDA build of `assay` (or assay.xz), device-env.sh and peer_hf_bench.py (see the
# README's GPU section); writes ours.jsonl, peer.jsonl and table.md to $OUT (or ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu-out}"; mkdir -p "$out"
what="${*:-numerics gen fwd lora scratch}"
bin=.gpu/assay
if [ ! -x "$bin" ] && [ -f .gpu/assay.xz ]; then xz -dc .gpu/assay.xz > /tmp/assay && chmod +x /tmp/assay && bin=/tmp/assay; fi
source .gpu/device-env.sh "$bin" || exit 3
device=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
export PYTHONUNBUFFERED=1
has() { [[ " $what " == *" $1 "* ]]; }
if has numerics; then
  python3 scripts/gpu/numerics_reference.py /tmp/numref > "$out/numref.log" 2>&1 || { tail "$out/numref.log"; exit 4; }
  timeout 150 "$bin" bench --device cuda --only numerics --reference /tmp/numref --out "$out/ours.jsonl"
fi
ours=(); peer=()
for m in gen fwd lora scratch; do has $m && ours+=("$m") && peer+=("$m"); done
has bon && ours+=(bon)
has gen_static && peer+=(gen_static)
if [ ${#ours[@]} -gt 0 ]; then
  only=$(IFS=,; echo "${ours[*]}")
  timeout 200 "$bin" bench --device cuda --only "$only" ${ASSAY_BENCH_ARGS:-} --out "$out/ours.jsonl" 2> "$out/ours.err" \
    || { echo "assay bench failed:"; tail -20 "$out/ours.err"; }
fi
if [ ${#peer[@]} -gt 0 ]; then
  timeout 320 python3 .gpu/peer_hf_bench.py "${peer[@]}" > "$out/peer.jsonl" 2> "$out/peer.err" \
    || { echo "peer failed:"; tail -5 "$out/peer.err"; }
  cat "$out/peer.jsonl"
fi
if has bon; then
  timeout 200 python3 scripts/gpu/peer_bon.py >> "$out/peer.jsonl" 2>> "$out/peer.err" || { echo "peer bon failed:"; tail -5 "$out/peer.err"; }
fi
python3 scripts/gpu/ratio_table.py "$out/ours.jsonl" "$out/peer.jsonl" "$device" | tee "$out/table.md"

#!/usr/bin/env bash
# Runs on the GPU machine: the validators at real model sizes (issue #18), in parts that each fit one
# device call (10 minutes); the machine keeps /tmp between calls while it stays warm.
#
#   bash scripts/gpu/real-scale.sh PART...      PART: agree | bench | sizes | sn37
#
#   agree  a Datacomp round (8 graded miners) and the SN37 example round with a small model, on the
#          CPU (f32), the GPU in f32 and the GPU in bf16: scores must agree (f32) and rank alike (bf16)
#   bench  a Datacomp round of 8 miners on the Qwen2.5-1.5B shape, then the same work by
#          transformers + PEFT (scripts/gpu/peer_datacomp.py) on the same published evaluation set
#   sizes  Datacomp rounds (3 miners) on the Qwen2.5-7B and Llama-3.1-8B shapes
#   sn37   one SN37 round over the 1.5B, 7B and 8B shapes (load, evaluate, free, next)
#
# Expects .gpu/ to hold the CUDA build (assay.xz), device-env.sh, tokdir.tgz (the Qwen2 and Llama 3
# tokenizers, see make_checkpoints.py). The graded rounds (8 and 3 miners) are written on the machine by
# `assay datacomp graded-round`, random-weight checkpoints of the real
# shapes are made on the machine (no hub there). Writes everything to $OUT (or ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/../.."
out="${OUT:-gpu-out}"; mkdir -p "$out"
work=/tmp/real-scale; mkdir -p "$work"
bin=/tmp/assay
[ -x "$bin" ] || { xz -dc .gpu/assay.xz > "$bin" && chmod +x "$bin"; } || exit 3
source .gpu/device-env.sh "$bin" > "$out/device.txt" || exit 3
cat "$out/device.txt"
[ -d "$work/tokdir" ] || tar xzf .gpu/tokdir.tgz -C "$work" || exit 3
export PYTHONUNBUFFERED=1 RUST_LOG=info
for n in 8 3; do
  [ -f "$work/round$n/round.json" ] || "$bin" datacomp graded-round --out "$work/round$n" --miners $n > /dev/null || exit 3
done
log() { echo "[$(date +%T)] $*" | tee -a "$out/steps.log"; }
now() { date +%s.%N; }
checkpoint() { # SHAPE DIR [--dtype f32]
  [ -f "$2/config.json" ] && return 0
  log "checkpoint $1 -> $2"
  python3 scripts/gpu/make_checkpoints.py "$1" "$2" --tokenizers "$work/tokdir" "${@:3}" >> "$out/checkpoints.log" 2>&1 \
    || { log "checkpoint $1 failed"; tail -5 "$out/checkpoints.log"; return 1; }
}
# A Datacomp round: NAME MODEL ROUND DEVICE-ARGS...; wall time of the whole command in NAME.wall.
datacomp() {
  local name=$1 model=$2 round=$3; shift 3
  log "datacomp $name: $*"
  local t0; t0=$(now)
  "$bin" datacomp run --model "$model" --submissions "$round" --out "$out/$name" --overwrite "$@" \
    --log-format json > "$out/$name.log" 2>&1 || { log "datacomp $name failed"; tail -5 "$out/$name.log"; }
  python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$(now)" "$t0" > "$out/$name.wall"
  log "datacomp $name: $(cat "$out/$name.wall") s"
}
sn37_hash() { # DIR HOTKEY BLOCK
  local hash; hash=$("$bin" sn37 hash "$1") || return 1
  printf '{"hotkey": "%s", "commit_block": %s, "content_hash": "%s", "competition_id": 101}\n' "$2" "$3" "$hash" > "$1/sn37.json"
}

for part in "$@"; do case $part in
agree)
  checkpoint tiny-qwen "$work/tiny-qwen" --dtype f32 || exit 4
  datacomp agree-cpu "$work/tiny-qwen" "$work/round8" --device cpu
  datacomp agree-f32 "$work/tiny-qwen" "$work/round8" --device cuda --dtype f32
  datacomp agree-bf16 "$work/tiny-qwen" "$work/round8" --device cuda --dtype bf16
  for dev in "cpu" "cuda --dtype f32" "cuda --dtype bf16"; do
    tag=$(echo "$dev" | tr -d ' -' | sed 's/dtype//')
    log "sn37 example round on $dev"
    "$bin" sn37 round --competition TINY_DEMO --models examples/sn37/models --data examples/sn37/data \
      --block 2000 --state "$out/sn37-ex-$tag/state.json" --out "$out/sn37-ex-$tag" --device $dev \
      > "$out/sn37-ex-$tag.log" 2>&1 || { log "sn37 example on $dev failed"; tail -5 "$out/sn37-ex-$tag.log"; }
  done
  python3 scripts/gpu/agreement.py "$out" | tee "$out/agreement.md"
  ;;
bench)
  checkpoint qwen2.5-1.5b "$work/models/qwen15" || exit 4
  datacomp bench-assay "$work/models/qwen15" "$work/round8" --device cuda
  log "peer (transformers + PEFT) on the same round and evaluation set"
  t0=$(now)
  timeout 540 python3 scripts/gpu/peer_datacomp.py --model "$work/models/qwen15" --submissions "$work/round8" \
    --eval "$out/bench-assay/eval_set.jsonl" > "$out/bench-peer.json" 2> "$out/bench-peer.err" \
    || { log "peer failed"; tail -5 "$out/bench-peer.err"; }
  python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$(now)" "$t0" > "$out/bench-peer.wall"
  log "peer: $(cat "$out/bench-peer.wall") s"
  ;;
sizes)
  checkpoint qwen2.5-7b "$work/models/qwen7" || exit 4
  datacomp size-qwen7 "$work/models/qwen7" "$work/round3" --device cuda
  checkpoint llama3.1-8b "$work/models/llama8" || exit 4
  datacomp size-llama8 "$work/models/llama8" "$work/round3" --device cuda
  ;;
sn37)
  for m in qwen15:qwen2.5-1.5b:1000 qwen7:qwen2.5-7b:1100 llama8:llama3.1-8b:1200; do
    IFS=: read -r dir shape block <<< "$m"
    checkpoint "$shape" "$work/models/$dir" || exit 4
    [ -f "$work/models/$dir/sn37.json" ] || sn37_hash "$work/models/$dir" "$dir" "$block" || exit 4
  done
  log "sn37 round over the three shapes"
  t0=$(now)
  "$bin" sn37 round --competition scripts/gpu/sn37_real_scale.toml --models "$work/models" \
    --data examples/sn37/data --block 5000 --state "$out/sn37-real/state.json" --out "$out/sn37-real" \
    --device cuda > "$out/sn37-real.log" 2>&1 || { log "sn37 round failed"; tail -5 "$out/sn37-real.log"; }
  python3 -c "import sys; print(round(float(sys.argv[1]) - float(sys.argv[2]), 2))" "$(now)" "$t0" > "$out/sn37-real.wall"
  log "sn37 round: $(cat "$out/sn37-real.wall") s"
  ;;
*) echo "unknown part $part (agree | bench | sizes | sn37)"; exit 2 ;;
esac; done
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv >> "$out/device.txt"

#!/usr/bin/env bash
# The SmolLM2 experiment: train a value head on SmolLM2-135M-Instruct's own solutions to seeded bare
# arithmetic problems (seed 1), then best-of-N on held-out problems (seed 2) with that head.
set -euo pipefail
BIN=${BIN:-cargo run -q --release -p assay-cli --}
OUT=${1:-runs/bon-smollm2}
SYS='Solve the problem. Put the final number in \boxed{}.'
$BIN prm train --arithmetic-seed 1 --arithmetic-style bare --count 60 --levels 1-2 --seed 1 \
  --n 4 --temperature 0.7 --max-new-tokens 48 --steps 300 --system-prompt "$SYS" --out "$OUT/prm"
$BIN bon --prm "$OUT/prm" --arithmetic-seed 2 --arithmetic-style bare --count 30 --levels 1-2 --seed 2 \
  --n 8 --temperature 0.8 --max-new-tokens 48 --system-prompt "$SYS" --out "$OUT/bon"

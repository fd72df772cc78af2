#!/usr/bin/env bash
# Fine-tunes a snapshot of the toon run on anime faces only (the paper's transfer-learning
# workflow) and ships the result next to the default model, so the two can be blended; writes
# the blend grid and class rates into docs/. Every step is a plain `gan` command.
#
#   scripts/make_anime_model.sh RUN_DIR/network-snapshot-NNNNNN.safetensors [KIMG]
#
# Use the snapshot the shipped default model came from (scripts/make_default_model.sh), so the
# pair blends. KIMG: length of the fine-tune (default 4; about 270 s/kimg on 2 CPU cores).
# Environment: ANIME_DATA (default toon64_anime.zip, made here if missing),
# RUNS (default runs).
set -euo pipefail
cd "$(dirname "$0")/.."
SNAPSHOT=${1:?usage: $0 SNAPSHOT.safetensors [KIMG]}
KIMG=${2:-4}
DATA=${ANIME_DATA:-toon64_anime.zip}
RUNS=${RUNS:-runs}
BASE=resources/models/default-toon64-sg3t.safetensors
MODEL=resources/models/toon64-sg3t-anime.safetensors
export PATH="$PWD/.venv/bin:$PATH"

if [ ! -e "$DATA" ]; then
    gan dataset toon --styles anime --count 10000 --resolution 64 --seed 1 --out "$DATA"
fi
# Same batch and R1 weight as the base run (batch 8 since its 36 kimg); the EMA half-life is
# short (1 kimg) so that G_ema of a fine-tune this short already shows where training went.
gan train --resume "$SNAPSHOT" --finetune --data "$DATA" --outdir "$RUNS" --desc toon64-sg3t-anime \
    --batch 8 --gamma 0.25 --mirror --ema-kimg 1 --kimg "$KIMG" --tick-kimg 1 --snap 1 --seed 0
run=$(ls -d "$RUNS"/*-toon64-sg3t-anime | sort | tail -n 1)
last=$(python -c "import json, sys; print(json.load(open(sys.argv[1]))['snapshot'])" "$run/latest.json")
gan convert --no-training-nets --force "$run/$last" "$MODEL"
cp "$run/stats.jsonl" resources/models/toon64-sg3t-anime.stats.jsonl

gan blend "$BASE" "$MODEL" --grid docs/default_model_blend.png --grid-seeds 0-7 \
    --weights 0,0.25,0.5,0.75,1 --measure --seeds 1000-1199 | tee docs/default_model_blend_measure.txt

#!/usr/bin/env bash
# The StyleGAN2 and StyleGAN3-R toon runs of the architecture comparison (resources/models/README.md).
#
#   scripts/train_compare_models.sh start    # new runs in $RUNS (the first session only)
#   scripts/train_compare_models.sh resume   # continue both from resources/models/training/ into $RUNS
#                                            # (or from $RUNS where a run there got further)
#                                            # (batch 16 below 36 kimg, 8 from there; BATCH=N overrides;
#                                            # THREADS=N torch threads per run, default 1)
#   scripts/train_compare_models.sh save     # stop both (a stop snapshot each), copy their state back
#   scripts/train_compare_models.sh ship NAME  # NAME (sg2 or sg3r) reached $KIMG: its G_ema and log into
#                                            # resources/models, its training folder removed
#
# Same data, seed and settings as the shipped StyleGAN3-T run (64 px, cbase 4096, cmax 64, z/w 128,
# gamma 0.25, mirror, batch 16 until 36 kimg then 8), each with its official config's other
# defaults. Runs at low priority with one thread each, so other work on the machine goes first.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
DATA=${DATA:-toon64.zip}
KIMG=${KIMG:-146}
PY=${PY:-.venv/bin/python}
SAVED=resources/models/training

flags() {  # the settings both runs share with the StyleGAN3-T run
  echo --data "$DATA" --cbase 4096 --cmax 64 --z-dim 128 --w-dim 128 --gamma 0.25 --mirror \
       --kimg "$KIMG" --tick-kimg 1 --snap 2 --seed 0
}

images_of() {  # images_of RUN_FOLDER: the images its latest.json says were trained (0 without one)
  if [ -f "$1/latest.json" ]; then
    "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["cur_nimg"])' "$1/latest.json"
  else
    echo 0
  fi
}

launch() {  # launch NAME ARGS...: one background run, log in $RUNS/NAME.log
  local name=$1; shift
  OMP_NUM_THREADS=${THREADS:-1} nohup nice -n 10 "$PY" -m gan.cli train "$@" > "$RUNS/$name.log" 2>&1 &
  echo "$name: pid $! (log $RUNS/$name.log)"
}

case "${1:-}" in
  start)
    mkdir -p "$RUNS"
    test -f "$DATA" || "$PY" -m gan.cli dataset toon --out "$DATA" --count 20000 --resolution 64 --seed 0
    launch sg2 --cfg stylegan2 --outdir "$RUNS" --desc toon64-sg2-small --batch 16 $(flags)
    launch sg3r --cfg stylegan3-r --outdir "$RUNS" --desc toon64-sg3r-small --batch 16 $(flags)
    ;;
  resume)
    mkdir -p "$RUNS"
    test -f "$DATA" || "$PY" -m gan.cli dataset toon --out "$DATA" --count 20000 --resolution 64 --seed 0
    for name in sg2 sg3r; do
      src="$SAVED/toon64-$name-small"
      [ -d "$src" ] || { echo "$name: finished and shipped, nothing to resume"; continue; }
      run="$RUNS/toon64-$name-small"
      nimg=$(images_of "$src")
      # A run folder further on than the committed state (a session that ended before `save`)
      # is continued as it is; otherwise it is replaced by the committed state.
      ran=$(images_of "$run")
      if [ "$ran" -gt "$nimg" ]; then
        echo "$name: $run is at $ran images, the committed state at $nimg: continuing the run folder"
        nimg=$ran
      else
        rm -rf "$run" && cp -r "$src" "$run"
      fi
      # Batch 16 until 36 kimg, then 8, as the StyleGAN3-T run (BATCH overrides).
      batch=${BATCH:-$([ "$nimg" -ge 36000 ] && echo 8 || echo 16)}
      launch "$name" --resume "$run" --data "$DATA" --batch "$batch" --kimg "$KIMG"
    done
    ;;
  save)
    pkill -INT -f "gan.cli train.*toon64-(sg2|sg3r)-small" || true
    while pgrep -f "gan.cli train.*toon64-(sg2|sg3r)-small" > /dev/null; do sleep 5; done
    for name in sg2 sg3r; do
      [ -d "$SAVED/toon64-$name-small" ] || continue  # finished and shipped
      run=$(ls -d "$RUNS"/*toon64-$name-small | tail -n 1)
      dest="$SAVED/toon64-$name-small"
      rm -rf "$dest" && mkdir -p "$dest"
      # The committed pair latest.json names, its log and options, the newest sample grid.
      "$PY" - "$run" "$dest" <<'EOF'
import json, shutil, sys
from pathlib import Path
run, dest = Path(sys.argv[1]), Path(sys.argv[2])
latest = json.loads((run / "latest.json").read_text())
names = {v for k, v in latest.items() if isinstance(v, str) and (run / v).is_file()}
names |= {"latest.json", "stats.jsonl", "training_options.json", "reals.png"}
fakes = sorted(run.glob("fakes*.png"))
names |= {fakes[-1].name} if fakes else set()
for name in sorted(names):
    if (run / name).is_file():
        shutil.copy2(run / name, dest / name)
print(dest, sorted(names))
EOF
    done
    ;;
  ship)
    name=${2:?usage: $0 ship sg2|sg3r}
    run="$RUNS/toon64-$name-small"
    read -r nimg snapshot < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["cur_nimg"], d["snapshot"])' "$run/latest.json")
    if [ "$nimg" -lt "$(( ${KIMG%.*} * 1000 ))" ]; then
      echo "$name is at $nimg images, not $KIMG kimg yet: resume it first" >&2; exit 1
    fi
    "$PY" -m gan.cli convert --no-training-nets --force "$run/$snapshot" "resources/models/toon64-$name.safetensors"
    cp "$run/stats.jsonl" "resources/models/toon64-$name.stats.jsonl"
    rm -rf "$SAVED/toon64-$name-small"
    echo "shipped resources/models/toon64-$name.safetensors ($nimg images); $SAVED/toon64-$name-small removed"
    ;;
  *)
    sed -n '2,12p' "$0"; exit 2 ;;
esac

#!/usr/bin/env bash
# Copies one pretraining snapshot's encoder (backbone.weights.h5, 28.8 MB for electra_mini, with
# its config.json and snapshot.json marker) into this folder, to be committed, so that its
# fine-tuning survives a machine that loses /work/runs (start.sh puts it back; the generator and
# discriminator heads stay behind: fine-tuning reads only the backbone, snapshot_scores.py needs
# the whole snapshot). Usage: bash keep_snapshot.sh <stage> <objective> <step>, e.g.
#   bash keep_snapshot.sh electra electra 6000
set -euo pipefail
stage="$1" objective="$2" step="$3"
src="/work/runs/part3/$stage/snapshots/$objective/step_$step"
dest="/work/main/results/compare_objectives_mini_24000/$stage/snapshots/$objective/step_$step"
[ -f "$src/snapshot.json" ] || { echo "keep_snapshot.sh: no finished snapshot at $src"; exit 1; }
mkdir -p "$dest"
cp "$src/backbone.weights.h5" "$src/config.json" "$src/snapshot.json" "$dest/"
# start.sh puts a stage back only with its experiment.json (collect.sh copies it only once the
# stage has results), so the stage's record travels with its first kept snapshot.
cp "/work/runs/part3/$stage/experiment.json" "${dest%/snapshots/*}/"
echo "kept $src in $dest ($(du -sh "$dest" | cut -f1)); git add it to commit"

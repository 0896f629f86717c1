#!/usr/bin/env bash
# Copies the part-3 run's reports (complete or not) into the repository's results folder and
# merges the stages that have results with the repository's (newer) report code. Cheap: no training.
set -e
dest=/work/main/results/compare_objectives_mini_24000
py=/work/main/.venv/bin/python
mkdir -p "$dest"
# The scripts that ran (and run) the stages, next to their results.
cp /work/runs/part3/{build_data.sh,run_all.sh,run_bert.sh,run_electra.sh,priority.py,collect.sh} "$dest/"
inputs=()
for stage in bert electra electra_half; do
  src=/work/runs/part3/$stage
  [ -f "$src/results.json" ] || continue
  mkdir -p "$dest/$stage"
  cp "$src/results.json" "$src/results.md" "$src/plot.png" "$src/experiment.json" "$dest/$stage/"
  inputs+=("$src")
done
if [ ${#inputs[@]} -ge 2 ]; then
  (cd /work/main && $py -m electra_tf.experiments.merge_comparisons \
     --inputs="$(IFS=,; echo "${inputs[*]}")" --output_dir="$dest/merged" --overwrite)
fi
ls -R "$dest"

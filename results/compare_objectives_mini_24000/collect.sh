#!/usr/bin/env bash
# Copies the part-3 run's reports (complete or not) into the repository's results folder and
# merges the stages that have results with the repository's (newer) report code. Cheap: no training.
set -e
dest=/work/main/results/compare_objectives_mini_24000
py=/work/main/.venv/bin/python
mkdir -p "$dest"
# The scripts that ran (and run) the stages, next to their results.
cp /work/runs/part3/*.sh /work/runs/part3/priority.py "$dest/"
# Held-out scores of the snapshots (snapshot_scores.py), when there are any.
if [ -f /work/runs/part3/snapshot_scores.json ]; then cp /work/runs/part3/snapshot_scores.json "$dest/"; fi
inputs=()
for stage in bert electra electra_half; do
  src=/work/runs/part3/$stage
  [ -f "$src/experiment.json" ] || continue
  # Each finished task's results.json, also before the stage's first encoder is complete (the
  # stage report waits for that): start.sh puts them back if the machine loses /work/runs, so
  # that a restarted run skips that fine-tuning (the drivers' resume looks only for this file).
  if [ -d "$src/finetune" ]; then
    (cd "$src" && find finetune -name results.json) |
      while read -r file; do
        mkdir -p "$dest/$stage/$(dirname "$file")"
        cp "$src/$file" "$dest/$stage/$file"
        rm -rf "$dest/$stage/$(dirname "$file")"/trial_*  # the seeds kept while it was under way
      done
    # And each finished seed of a task still under way (its trial.json and trial_result.json):
    # run_finetuning reuses a finished trial, so a lost machine costs only the seed in progress
    # (an STS-B seed is about 50 min in a one-thread lane).
    (cd "$src" && find finetune -name trial_result.json) |
      while read -r file; do
        trial=$(dirname "$file")
        [ -f "$src/$(dirname "$trial")/results.json" ] && continue
        mkdir -p "$dest/$stage/$trial"
        cp "$src/$trial/trial.json" "$src/$trial/trial_result.json" "$dest/$stage/$trial/"
      done
    # start.sh restores a stage only with its record.
    if [ -d "$dest/$stage" ]; then cp "$src/experiment.json" "$dest/$stage/"; fi
  fi
  if [ -f "$src/results.json" ]; then cp "$src/results.json" "$src/results.md" "$src/plot.png" "$dest/$stage/"; fi
  # The repository's copy: a machine that lost /work/runs gets each finished task back but writes
  # a stage's report again only when that stage fine-tunes something.
  if [ -f "$dest/$stage/results.json" ]; then inputs+=("$dest/$stage"); fi
done
if [ ${#inputs[@]} -ge 2 ]; then
  (cd /work/main && $py -m electra_tf.experiments.merge_comparisons \
     --inputs="$(IFS=,; echo "${inputs[*]}")" --output_dir="$dest/merged" --overwrite)
fi
ls -R "$dest"

#!/usr/bin/env bash
# Starts (or resumes) issue 17 part 3 from the repository alone, whatever of /work/runs is left:
# freezes the code at the run's commit into /work/runs/code_part3 if it is missing, builds the
# pretraining and held-out data if missing, puts the run scripts into /work/runs/part3 and starts
# run_all.sh in the background (it waits for lanes still running, and every step skips finished
# work). Needs /work/main/.venv (make test or make demo builds it). Usage: bash start.sh
set -euo pipefail
commit=215361c481ad0d97b1f14bf0491b44aef76210d6
here=/work/main/results/compare_objectives_mini_24000
mkdir -p /work/runs/part3
if [ ! -f /work/runs/code_part3/COMMIT ]; then
  mkdir -p /work/runs/code_part3
  git -C /work/main archive "$commit" electra_tf configs | tar -x -C /work/runs/code_part3
  echo "$commit" > /work/runs/code_part3/COMMIT
fi
[ "$(cat /work/runs/code_part3/COMMIT)" = "$commit" ] || { echo "code_part3 is not $commit"; exit 1; }
bash "$here/build_data.sh"  # builds only what is missing
# What the repository keeps of a stage and this machine lacks (it lost /work/runs) goes back:
# experiment.json first (the driver refuses a non-empty output directory without this record of
# its flags), then each finished task's results.json (collect.sh), so that the drivers skip those
# tasks, and each finished seed's trial.json and trial_result.json of a task under way (the
# driver reuses that seed), and each snapshot encoder kept with keep_snapshot.sh, so that its
# fine-tuning goes on without pretraining it again; sorted, a snapshot's marker (snapshot.json)
# comes after its weights. A snapshot that has to be pretrained again keeps its earlier results
# (same seed and settings; not checked to be bit-identical).
for stage in bert electra electra_half; do
  [ -f "$here/$stage/experiment.json" ] || continue
  (cd "$here/$stage" && { echo experiment.json; find finetune snapshots -type f \( -name results.json -o -name "trial*.json" -o -path "snapshots/*" \) 2>/dev/null || true; } | sort) |
    while read -r file; do
      target=/work/runs/part3/$stage/$file
      if [ ! -f "$target" ]; then mkdir -p "$(dirname "$target")"; cp "$here/$stage/$file" "$target"; fi
    done
done
# Each script is replaced by a rename, not rewritten in place: bash reads a script as it runs
# it, so a run_all.sh still running would otherwise go on with a mix of old and new lines.
for file in "$here"/*.sh "$here"/priority.py; do
  cp "$file" "/work/runs/part3/.$(basename "$file").new"
  mv "/work/runs/part3/.$(basename "$file").new" "/work/runs/part3/$(basename "$file")"
done
cd /work/runs/part3
setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
echo "started run_all.sh (pid $!); bash status.sh shows where it is"

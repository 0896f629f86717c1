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
# Fine-tuning results committed by collect.sh and missing here (a machine that lost /work/runs):
# put back, so that the drivers skip those tasks. A snapshot that has to be pretrained again
# keeps its earlier results (same seed and settings; not checked to be bit-identical).
for stage in bert electra electra_half; do
  [ -d "$here/$stage/finetune" ] || continue
  # The driver refuses a non-empty output directory without its experiment.json (the record of
  # the flags the results were made with), so that goes back first.
  if [ ! -f "/work/runs/part3/$stage/experiment.json" ]; then
    mkdir -p "/work/runs/part3/$stage"; cp "$here/$stage/experiment.json" "/work/runs/part3/$stage/"
  fi
  (cd "$here/$stage" && find finetune -name results.json) | while read -r file; do
    target=/work/runs/part3/$stage/$file
    if [ ! -f "$target" ]; then mkdir -p "$(dirname "$target")"; cp "$here/$stage/$file" "$target"; fi
  done
done
# Snapshots kept in the repository (keep_snapshot.sh: the encoder only) and missing here: put
# back, so that their fine-tuning goes on without pretraining them again.
for marker in "$here"/*/snapshots/*/step_*/snapshot.json; do
  [ -f "$marker" ] || continue
  kept=$(dirname "$marker")
  target=/work/runs/part3/${kept#"$here"/}
  if [ ! -f "$target/snapshot.json" ]; then mkdir -p "$target"; cp "$kept"/* "$target/"; fi
done
cp "$here"/*.sh "$here"/priority.py /work/runs/part3/
cd /work/runs/part3
setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
echo "started run_all.sh (pid $!); bash status.sh shows where it is"

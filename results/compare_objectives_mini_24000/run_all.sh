#!/usr/bin/env bash
# Issue 17 part 3, all stages; each step resumes where it stopped (finished work is skipped).
# Start it with (start.sh does)
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# The work goes in the order that makes a result durable soonest, because only fine-tuning
# results and kept encoders survive a machine that loses /work/runs (3 of the last 6 session
# boundaries, up to 2026-12-08, lost it, with every pretraining checkpoint: 90 MB a run, too
# large to commit each session). Pretraining uses both cores (PART3_THREADS=2: an electra_mini
# ELECTRA step 1.25-1.57 s, against 2.4-2.7 s for each of two one-thread runs side by side:
# about the same throughput, a snapshot twice as soon), and keep_snapshot.sh copies each
# snapshot it was run for into the repository's results folder at once (to be committed). An
# encoder's fine-tuning then runs in two one-thread lanes: STS-B's 10 epochs in one, SST-2, MRPC
# and CoLA in the other (about 2.5 h and 1 h), then the next pretraining on that core until
# STS-B is done. Order: one whole comparison at a time, smallest budget first: the 1/4
# snapshots (ELECTRA step 6,000, masked LM step 6,496, 1/2-width generator step 5,223: 6.4e14
# FLOPs), then the 1/2 snapshots (in the order below), then the full budgets, then the 1/16 and
# 1/8 snapshots' fine-tuning. Logs: bert.log, electra.log, electra_half.log.
cd /work/runs/part3
# One run at a time: wait while any part-3 process (an earlier run_all.sh's, or one started by
# hand) is still running.
while pgrep -f "part3/priority.py|experiments.compare_objectives" > /dev/null; do sleep 60; done
step() {  # $1 log, then the command
  local log="$1"
  shift
  "$@" >> "$log" 2>&1 || { echo "$(date -u +%FT%TZ) failed: $* (see $log)"; return 1; }
}
# A stage is named by its output directory; its driver script and log follow from the name.
stage_cmd() {
  case "$1" in
    bert) echo "bash run_bert.sh" ;;
    electra) echo "bash run_electra.sh electra" ;;
    electra_half) echo "bash run_electra.sh half" ;;
  esac
}
# Pretraining only, up to one snapshot, which is then kept for committing: $1 stage, $2 objective,
# $3 step, $4 threads (default 2, both cores).
pretrain() {
  local stage="$1" objective="$2" snapshot_step="$3" threads="${4:-2}"
  # shellcheck disable=SC2046
  step "$stage.log" env PART3_THREADS="$threads" $(stage_cmd "$stage") --pretrain --nofinetune \
    --encoders="${objective}_step_${snapshot_step}" &&
    step "$stage.log" bash keep_snapshot.sh "$stage" "$objective" "$snapshot_step"
}
# One encoder's fine-tuning in two one-thread lanes: $1 stage, $2 encoder, then optionally the
# next pretraining's stage, objective and snapshot step. STS-B's lane takes about 1.5 h longer
# than the other (SST-2, MRPC, CoLA); the next pretraining uses that core meanwhile with one
# thread and is stopped when STS-B is done (the following pretrain resumes it on both cores
# from its last checkpoint, at most 199 steps back; step logs the stopped run as failed). A
# failed lane is logged by step and does not stop the order: the last steps, each stage's whole
# driver, do whatever is still missing.
finetune() {
  local stage="$1" encoder="$2" next=("${@:3}")
  # shellcheck disable=SC2046
  step "$stage.log" $(stage_cmd "$stage") --encoders="$encoder" --only_tasks=sts-b &
  local sts=$! sts_done=.sts_done.$$
  rm -f "$sts_done"
  {
    # shellcheck disable=SC2046
    step "$stage.log" $(stage_cmd "$stage") --encoders="$encoder" --only_tasks=sst-2,mrpc,cola
    if [ ${#next[@]} -eq 3 ] && [ ! -e "$sts_done" ]; then pretrain "${next[@]}" 1 || true; fi
  } &
  local other=$!
  wait "$sts"
  touch "$sts_done"
  if [ ${#next[@]} -eq 3 ]; then
    # Again for a few seconds: the other lane may have passed its check just before the touch.
    for _ in 1 2 3; do
      pkill -f -- "--output_dir=/work/runs/part3/${next[0]} .*--pretrain --nofinetune" || true
      sleep 5
    done
  fi
  wait "$other"
  rm -f "$sts_done"
}
# After the 1/4 encoders of ELECTRA and the masked LM: each snapshot (stage, objective, step) is
# pretrained, then fine-tuned with the next one's pretraining beside its STS-B lane. The
# 1/2-width generator's 1/2 snapshot comes before the masked LM's: on 2026-12-08 its run was the
# only one with a checkpoint on disk (step 5,223; the others restart from step 0 after the loss
# of session 31), so it is the only 1/2 snapshot that one session can reach (about 1.9 h).
order=(
  "electra_half electra_gen_half 5223" "electra_half electra_gen_half 10446"
  "bert bert 12991" "electra electra 12000"
  "bert bert 25982" "electra electra 24000" "electra_half electra_gen_half 20891"
)
run_order() {
  local i stage objective snapshot_step
  for i in "${!order[@]}"; do
    read -r stage objective snapshot_step <<< "${order[i]}"
    pretrain "$stage" "$objective" "$snapshot_step" || return 1
    # shellcheck disable=SC2086
    finetune "$stage" "${objective}_step_${snapshot_step}" ${order[i + 1]:-}
  done
}
step bert.log bash run_bert.sh --encoders=random_init &&
  pretrain electra electra 6000 &&
  pretrain bert bert 6496 &&
  finetune electra electra_step_6000 &&
  finetune bert bert_step_6496 &&
  run_order &&
  { export -f step
    bash -c "step electra_half.log bash run_electra.sh half; step bert.log bash run_bert.sh" &
    bash -c "step electra.log bash run_electra.sh electra" & wait; }
echo "$(date -u +%FT%TZ) run_all.sh stopped: bash collect.sh merges the results into the repository's results/"

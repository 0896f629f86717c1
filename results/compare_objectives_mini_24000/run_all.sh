#!/usr/bin/env bash
# Issue 17 part 3, all stages; each step resumes where it stopped (finished work is skipped).
# Start it with (start.sh does)
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# Pretraining runs one stage at a time on both cores (PART3_THREADS=2: an electra_mini ELECTRA
# step 1.40-1.57 s, against 2.4-2.7 s for each of two one-thread runs side by side: about the same
# throughput), so that a snapshot comes twice as soon and can be kept (keep_snapshot.sh) within a
# session; fine-tuning runs two encoders side by side, one thread each. Only fine-tuning results
# and kept encoders survive a machine that loses /work/runs (it happened twice). Order: one
# whole comparison at a time, smallest budget first: the 1/4 snapshots (ELECTRA step 6,000,
# masked LM step 6,496, 1/2-width generator step 5,223: 6.4e14 FLOPs) with their fine-tuning,
# then the 1/2 snapshots, then the full budgets, then everything left. Once the 1/4 encoders are
# pretrained, a one-thread pretraining lane runs beside each one-thread fine-tuning lane. Logs:
# bert.log, electra.log, electra_half.log.
cd /work/runs/part3
# One run at a time: wait while any part-3 process (an earlier run_all.sh's, or one started by
# hand) is still running.
while pgrep -f "part3/priority.py|experiments.compare_objectives" > /dev/null; do sleep 60; done
step() {  # $1 log, then the command
  local log="$1"
  shift
  "$@" >> "$log" 2>&1 || { echo "$(date -u +%FT%TZ) failed: $* (see $log)"; return 1; }
}
# Pretraining only: $1 threads (2: both cores; 1: a lane beside fine-tuning), $2 log, then
# run_*.sh and its stage.
pretrain() {
  local threads="$1" log="$2"
  shift 2
  step "$log" env PART3_THREADS="$threads" bash "$@" --pretrain --nofinetune
}
# A failed side is logged by step and does not stop the order: the last steps, each stage's whole
# driver, do whatever fine-tuning is still missing.
side_by_side() {  # two command strings, one per core
  bash -c "$1" & bash -c "$2" & wait
}
export -f step pretrain
step bert.log bash run_bert.sh --encoders=random_init &&
  pretrain 2 electra.log run_electra.sh electra --encoders=electra_step_6000 &&
  pretrain 2 bert.log run_bert.sh --encoders=bert_step_6496 &&
  side_by_side "step electra.log bash run_electra.sh electra --encoders=electra_step_6000" \
    "step bert.log bash run_bert.sh --encoders=bert_step_6496" &&
  pretrain 2 electra_half.log run_electra.sh half --encoders=electra_gen_half_step_5223 &&
  side_by_side "step electra_half.log bash run_electra.sh half --encoders=electra_gen_half_step_5223" \
    "pretrain 1 electra.log run_electra.sh electra --encoders=electra_step_12000" &&
  side_by_side "step electra.log bash run_electra.sh electra --encoders=electra_step_12000" \
    "pretrain 1 bert.log run_bert.sh --encoders=bert_step_12991" &&
  side_by_side "step bert.log bash run_bert.sh --encoders=bert_step_12991" \
    "pretrain 1 electra_half.log run_electra.sh half --encoders=electra_gen_half_step_10446" &&
  side_by_side "step electra_half.log bash run_electra.sh half --encoders=electra_gen_half_step_10446" \
    "pretrain 1 electra.log run_electra.sh electra --encoders=electra_step_24000" &&
  pretrain 2 bert.log run_bert.sh --encoders=bert_step_25982 &&
  side_by_side "step electra.log bash run_electra.sh electra --encoders=electra_step_24000" \
    "step bert.log bash run_bert.sh --encoders=bert_step_25982" &&
  pretrain 2 electra_half.log run_electra.sh half --encoders=electra_gen_half_step_20891 &&
  side_by_side "step electra_half.log bash run_electra.sh half; step bert.log bash run_bert.sh" \
    "step electra.log bash run_electra.sh electra"
echo "$(date -u +%FT%TZ) run_all.sh stopped: bash collect.sh merges the results into the repository's results/"

#!/usr/bin/env bash
# Issue 17 part 3, all stages; each step resumes where it stopped (finished work is skipped).
# Start it with (start.sh does)
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# Every unit of work is one stage on both cores, in the order that makes a result durable
# soonest, because only fine-tuning results and kept encoders survive a machine that loses
# /work/runs (3 of the last 6 session boundaries, up to 2026-12-08, lost it, with every
# pretraining checkpoint: 90 MB a run, too large to commit each session). Pretraining uses both
# cores (PART3_THREADS=2: an electra_mini ELECTRA step 1.25-1.57 s, against 2.4-2.7 s for each of
# two one-thread runs side by side: about the same throughput, a snapshot twice as soon), and
# keep_snapshot.sh copies each snapshot it was run for into the repository's results folder at
# once (to be committed). An encoder's fine-tuning then runs in two one-thread lanes: STS-B's 10
# epochs in one, SST-2, MRPC and CoLA in the other (about 2.5 h and 1 h). Order: one whole
# comparison at a time, smallest budget first: the 1/4 snapshots (ELECTRA step 6,000, masked LM
# step 6,496, 1/2-width generator step 5,223: 6.4e14 FLOPs), then the 1/2 snapshots with the
# masked LM first (whether it beats random init by 3 points decides the budget), then the full
# budgets, then the 1/16 and 1/8 snapshots' fine-tuning. Logs: bert.log, electra.log,
# electra_half.log.
cd /work/runs/part3
# One run at a time: wait while any part-3 process (an earlier run_all.sh's, or one started by
# hand) is still running.
while pgrep -f "part3/priority.py|experiments.compare_objectives" > /dev/null; do sleep 60; done
step() {  # $1 log, then the command
  local log="$1"
  shift
  "$@" >> "$log" 2>&1 || { echo "$(date -u +%FT%TZ) failed: $* (see $log)"; return 1; }
}
# Pretraining only, on both cores, up to one snapshot, which is then kept: $1 log, $2 stage
# directory, $3 objective, $4 step, then run_*.sh and its stage.
pretrain() {
  local log="$1" stage="$2" objective="$3" snapshot_step="$4"
  shift 4
  step "$log" env PART3_THREADS=2 bash "$@" --pretrain --nofinetune \
    --encoders="${objective}_step_${snapshot_step}" &&
    step "$log" bash keep_snapshot.sh "$stage" "$objective" "$snapshot_step"
}
# One encoder's fine-tuning in two one-thread lanes: $1 log, $2 encoder, then run_*.sh and its
# stage. A failed lane is logged by step and does not stop the order: the last steps, each
# stage's whole driver, do whatever fine-tuning is still missing.
finetune() {
  local log="$1" encoder="$2"
  shift 2
  step "$log" "$@" --encoders="$encoder" --only_tasks=sts-b &
  step "$log" "$@" --encoders="$encoder" --only_tasks=sst-2,mrpc,cola &
  wait
}
step bert.log bash run_bert.sh --encoders=random_init &&
  pretrain electra.log electra electra 6000 bash run_electra.sh electra &&
  pretrain bert.log bert bert 6496 bash run_bert.sh &&
  finetune electra.log electra_step_6000 bash run_electra.sh electra &&
  finetune bert.log bert_step_6496 bash run_bert.sh &&
  pretrain electra_half.log electra_half electra_gen_half 5223 bash run_electra.sh half &&
  finetune electra_half.log electra_gen_half_step_5223 bash run_electra.sh half &&
  pretrain bert.log bert bert 12991 bash run_bert.sh &&
  finetune bert.log bert_step_12991 bash run_bert.sh &&
  pretrain electra.log electra electra 12000 bash run_electra.sh electra &&
  finetune electra.log electra_step_12000 bash run_electra.sh electra &&
  pretrain electra_half.log electra_half electra_gen_half 10446 bash run_electra.sh half &&
  finetune electra_half.log electra_gen_half_step_10446 bash run_electra.sh half &&
  pretrain bert.log bert bert 25982 bash run_bert.sh &&
  finetune bert.log bert_step_25982 bash run_bert.sh &&
  pretrain electra.log electra electra 24000 bash run_electra.sh electra &&
  finetune electra.log electra_step_24000 bash run_electra.sh electra &&
  pretrain electra_half.log electra_half electra_gen_half 20891 bash run_electra.sh half &&
  finetune electra_half.log electra_gen_half_step_20891 bash run_electra.sh half &&
  { export -f step
    bash -c "step electra_half.log bash run_electra.sh half; step bert.log bash run_bert.sh" &
    bash -c "step electra.log bash run_electra.sh electra" & wait; }
echo "$(date -u +%FT%TZ) run_all.sh stopped: bash collect.sh merges the results into the repository's results/"

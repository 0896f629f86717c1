#!/usr/bin/env bash
# Issue 17 part 3, all stages, in two lanes side by side (one TensorFlow thread each, one per
# core); each step resumes where it stopped (finished work is skipped). Start it with
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# Order: random init, then each objective's 1/4 snapshot pretrained and fine-tuned before its
# pretraining goes on to the full budget. Only fine-tuning results survive a machine that loses
# /work/runs (it happened twice): the 1/4 snapshots give a whole comparison (random init, masked
# LM, ELECTRA at 6.4e14 FLOPs) after about 9 h of each lane instead of 20. Then the full
# budgets, the 1/2 snapshots, the 1/2-width generator and everything left.
# Logs: bert.log, electra.log, electra_half.log.
cd /work/runs/part3
# One run per stage: a lane waits while a process of its stage (an earlier run_all.sh's, or one
# started by hand) is still running.
wait_for_stage() {  # $1 output directory
  while pgrep -f -- "--output_dir=$1( |\$)" > /dev/null; do sleep 60; done
}
step() {  # $1 log, then the command
  local log="$1"
  shift
  "$@" >> "$log" 2>&1 || { echo "$(date -u +%FT%TZ) failed: $* (see $log)"; return 1; }
}
electra_lane() {
  wait_for_stage /work/runs/part3/electra
  step electra.log bash run_electra.sh electra --pretrain --encoders=electra_step_6000 &&
    step electra.log bash run_electra.sh electra --pretrain --encoders=electra_step_24000 &&
    step electra.log bash run_electra.sh electra --encoders=electra_step_12000 &&
    step electra_half.log bash run_electra.sh half --pretrain --encoders=electra_gen_half_step_20891 &&
    step electra_half.log bash run_electra.sh half --encoders=electra_gen_half_step_10446 &&
    step electra.log bash run_electra.sh electra &&
    step electra_half.log bash run_electra.sh half
}
bert_lane() {
  wait_for_stage /work/runs/part3/bert
  step bert.log bash run_bert.sh --encoders=random_init &&
    step bert.log bash run_bert.sh --pretrain --encoders=bert_step_6496 &&
    step bert.log bash run_bert.sh --pretrain --encoders=bert_step_25982 &&
    step bert.log bash run_bert.sh --encoders=bert_step_12991 &&
    step bert.log bash run_bert.sh
}
electra_lane &
bert_lane &
wait
echo "$(date -u +%FT%TZ) lanes finished: bash collect.sh merges them into the repository's results/"

#!/usr/bin/env bash
# Issue 17 part 3, all stages, in two lanes side by side (one TensorFlow thread each, one per
# core); each step resumes where it stopped (finished work is skipped). Start it with
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# Most informative first: random init and the full-budget snapshots of both objectives (the
# budget decision and the headline), then the 1/2 snapshots, the 1/2-width generator, the 1/4
# snapshots, then everything left. Logs: bert.log, electra.log, electra_half.log.
cd /work/runs/part3
# One run at a time: wait for the lanes of an earlier run_all.sh to finish.
while pgrep -f "part3/priority.py|experiments.compare_objectives" > /dev/null; do sleep 60; done
step() {  # $1 log, then the command
  local log="$1"
  shift
  "$@" >> "$log" 2>&1 || { echo "$(date -u +%FT%TZ) failed: $* (see $log)"; return 1; }
}
electra_lane() {
  step electra.log bash run_electra.sh electra --pretrain --encoders=electra_step_24000 &&
    step electra.log bash run_electra.sh electra --encoders=electra_step_12000 &&
    step electra_half.log bash run_electra.sh half --pretrain --encoders=electra_gen_half_step_20891 &&
    step electra.log bash run_electra.sh electra --encoders=electra_step_6000 &&
    step electra_half.log bash run_electra.sh half --encoders=electra_gen_half_step_10446 &&
    step electra.log bash run_electra.sh electra &&
    step electra_half.log bash run_electra.sh half
}
bert_lane() {
  step bert.log bash run_bert.sh --encoders=random_init &&
    step bert.log bash run_bert.sh --pretrain --encoders=bert_step_25982 &&
    step bert.log bash run_bert.sh --encoders=bert_step_12991 &&
    step bert.log bash run_bert.sh --encoders=bert_step_6496 &&
    step bert.log bash run_bert.sh
}
electra_lane &
bert_lane &
wait
echo "$(date -u +%FT%TZ) lanes finished: bash collect.sh merges them into the repository's results/"

#!/usr/bin/env bash
# Issue 17 part 3, all stages; each step resumes where it stopped (finished work is skipped).
# Start it with
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# Order, most informative first (each STS-B fine-tuning is ~80 of an encoder's ~120 minutes):
# the masked LM's full-budget snapshot and random init (the budget decision), ELECTRA's
# pretraining and full-budget snapshot, the 1/2 snapshots of both, the 1/2-width generator's
# pretraining and full-budget snapshot; then every stage's remaining snapshots, largest first.
# Logs: bert.log, electra.log, electra_half.log.
cd /work/runs/part3
# One run at a time: wait for a stage started by an earlier run_all.sh to finish.
while pgrep -f "part3/priority.py|experiments.compare_objectives" > /dev/null; do sleep 60; done
step() {  # $1 log, then the command
  local log="$1"
  shift
  "$@" >> "$log" 2>&1 || { echo "failed: $* (see $log)"; exit 1; }
}
step bert.log bash run_bert.sh --encoders=bert_step_25982,random_init
step electra.log bash run_electra.sh electra --pretrain --encoders=electra_step_24000
step bert.log bash run_bert.sh --encoders=bert_step_12991
step electra.log bash run_electra.sh electra --encoders=electra_step_12000
step electra_half.log bash run_electra.sh half --pretrain --encoders=electra_gen_half_step_20891
step bert.log bash run_bert.sh --encoders=bert_step_6496
step electra.log bash run_electra.sh electra --encoders=electra_step_6000
step electra_half.log bash run_electra.sh half --encoders=electra_gen_half_step_10446
step electra.log bash run_electra.sh electra
step bert.log bash run_bert.sh
step electra_half.log bash run_electra.sh half
echo "all stages done: bash collect.sh merges them into the repository's results/"

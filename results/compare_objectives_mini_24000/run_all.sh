#!/usr/bin/env bash
# Issue 17 part 3, all stages in order; each resumes where it stopped. Start it with
#   cd /work/runs/part3 && setsid nohup bash run_all.sh >> all.log 2>&1 < /dev/null &
# Order: ELECTRA (pretraining + fine-tuning), the masked LM's fine-tuning (its pretraining is
# done), then ELECTRA with the 1/2-width generator. Logs: electra.log, bert.log, electra_half.log.
cd /work/runs/part3
bash run_electra.sh electra >> electra.log 2>&1 || { echo "ELECTRA failed: see electra.log"; exit 1; }
bash run_bert.sh >> bert.log 2>&1 || { echo "masked LM failed: see bert.log"; exit 1; }
bash run_electra.sh half >> electra_half.log 2>&1 || { echo "1/2 generator failed: see electra_half.log"; exit 1; }
echo "all stages done: bash collect.sh merges them into the repository's results/"

#!/usr/bin/env bash
# Benchmarks in a quiet window; the caller paused the background part-3 run (kill -STOP) first
# and resumed it (kill -CONT) after.
set -u
cd /work/main/bench
PY=/work/main/.venv/bin/python
OUT=/work/runs/bench_$(date +%Y%m%d_%H%M)
mkdir -p $OUT
BG=""  # paused by the caller
[ -n "$BG" ] && kill -STOP $BG
trap '[ -n "$BG" ] && kill -CONT $BG' EXIT
uptime > $OUT/uptime_start.txt
$PY bench_pretraining_step.py --policies=float32,mixed_bfloat16 --repeats=2 --steps=5 > $OUT/pretraining_step.txt 2>&1
$PY bench_pretraining_step.py --policies=mixed_bfloat16,float32 --repeats=2 --steps=5 --nocompare_huggingface --hparams='{"paired_dropout_draws": false}' > $OUT/pretraining_step_unpaired.txt 2>&1
$PY bench_finetuning.py --jit_compile=false --policies=float32,mixed_bfloat16 --repeats=3 > $OUT/finetuning.txt 2>&1
TF_NUM_INTEROP_THREADS=1 $PY bench_finetuning.py --jit_compile=false --policies=float32,mixed_bfloat16 --repeats=3 > $OUT/finetuning_interop1.txt 2>&1
TF_NUM_INTEROP_THREADS=1 $PY bench_pretraining_step.py --policies=float32,mixed_bfloat16 --repeats=2 --steps=5 --nocompare_huggingface > $OUT/pretraining_step_interop1.txt 2>&1
uptime > $OUT/uptime_end.txt
echo $OUT

#!/usr/bin/env bash
# Where issue 17 part 3 stands: the lanes' processes, each log's last progress line, the
# snapshots saved and the fine-tuned tasks finished (with their median scores).
cd /work/runs/part3 || { echo "no /work/runs/part3: run start.sh"; exit 1; }
pgrep -af "part3/priority.py|experiments.compare_objectives" | cut -c1-160 || echo "no lane running"
for log in bert.log electra.log electra_half.log; do
  [ -f "$log" ] || continue
  echo "== $log"
  grep -a "\[pretrain\] steps\|trial .*steps\|median over" "$log" | tail -n 1 | sed 's/.*\(\[pretrain\]\)/\1/' | cut -c1-200
done
echo "== snapshots"
ls -d */snapshots/*/step_* 2>/dev/null
echo "== fine-tuned (median score)"
for f in */finetune/*/*/results.json; do
  [ -f "$f" ] || continue
  /work/main/.venv/bin/python -c "import json,sys; r=json.load(open(sys.argv[1])); print(sys.argv[1], r['median_score'], [round(t['metrics']['score'], 2) for t in r.get('trials', [])])" "$f" 2>/dev/null || echo "$f"
done

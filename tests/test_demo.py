"""`python -m electra_tf.demo` (the README's main job) end to end with a short pretraining run."""

import pathlib
import subprocess
import sys

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_demo_runs_every_stage_and_reports_held_out_detection(tmp_path):
    output = tmp_path / "demo"
    command = [sys.executable, "-m", "electra_tf.demo", f"--output_dir={output}", "--pretrain_steps=20"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    for heading in (
        "1. Corpus",
        "2. WordPiece",
        "3. Pretraining data",
        "4. Pretraining",
        "5. Replaced-token detection",
    ):
        assert heading in text, text[-3000:]
    assert "replaced-token detection AUC" in text and "P(replaced)" in text
    assert (output / "held_out_data" / "manifest.json").is_file()
    assert (output / "model" / "pretrained" / "discriminator.weights.h5").is_file()
    # A rerun reuses every finished stage and reports again.
    again = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing") >= 3 and "replaced-token detection AUC" in again.stdout

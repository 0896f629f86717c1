import io

from electra_tf.progress import ProgressReporter, format_duration


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_rates_and_eta_from_counts():
    clock = FakeClock()
    out = io.StringIO()
    progress = ProgressReporter("build", total=10e6, interval_seconds=5, stream=out, clock=clock)
    clock.now = 2.0
    progress.update(bytes=2e6, documents=4)
    assert out.getvalue() == ""  # too soon to report
    clock.now = 5.0
    progress.update(bytes=3e6, documents=6)
    line = out.getvalue().strip()
    assert "5.0 MB (1.00 MB/s)" in line
    assert "documents 10 (2.0/s)" in line
    assert "50.0%" in line
    assert "ETA 0:00:05" in line


def test_format_duration():
    assert format_duration(3725) == "1:02:05"
    assert format_duration(float("inf")) == "?"

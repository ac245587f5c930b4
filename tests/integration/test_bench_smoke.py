"""`make bench` cannot rot: every benchmark runs for about a second (bench/run.py --smoke),
against its real references, and the report has every figure with a number. The numbers
themselves mean nothing at this length and are not judged here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.conftest import PROJECT_DIR

FIGURES = 49  # bench/run.py's figures, the reported ones included


# The whole bench at a second a figure: about 100 s alone, more beside the rest of the suite.
@pytest.mark.timeout(300)
def test_every_benchmark_runs_and_is_reported(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "bench.run", "--smoke", "--out", str(out)],
                          cwd=PROJECT_DIR, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.with_suffix(".json").read_text())
    assert report["smoke"] is True
    figures = report["figures"]
    assert len(figures) == FIGURES
    for figure in figures:
        assert isinstance(figure["ours"], int | float) and figure["ours"] > 0, figure
        if figure["target"] != "reported" and figure["reference"] is not None:
            # the median of the rounds' ratios (one round in a smoke run)
            assert len(figure["round_ratios"]) == 1, figure
            assert figure["ratio"] == round(figure["round_ratios"][0], 3), figure
            [(ours, reference)] = figure["round_values"]
            assert ours / reference == figure["round_ratios"][0], figure
    table = out.with_suffix(".md").read_text()
    assert table.count("\n| ") == FIGURES + 1  # the header row and one row a figure

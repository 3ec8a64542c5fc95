"""`evaluate`: a circuit of task A scored on task B's data, checked against a direct measurement, and saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from circuitdb import Catalog
from circuitdb.cli import main
from circuitdb.discovery.evaluate import Evaluator
from circuitdb.discovery.models import load_model
from circuitdb.discovery.tasks import build_task

torch.set_num_threads(1)


def test_evaluate_scores_circuits_on_other_tasks(tmp_path: Path) -> None:
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    runner = CliRunner()
    found = runner.invoke(main, ["discover", "--model", "toy", "--task", "digits", "--threshold", "0.8", "--edges", "none",
                                 "--prompts", "24", "--store", store])
    assert found.exit_code == 0, found.output
    result = runner.invoke(main, ["evaluate", "--task", "digits", "--on", "digits", "--on", "months:bare", "--prompts", "24",
                                  "--save", "--json", "--store", store])
    assert result.exit_code == 0, result.output
    rows = {r["task"]: r["performance"] for r in json.loads(result.stdout)["rows"]}
    with Catalog(store) as catalog:
        (info,) = catalog.runs()
        run = catalog.run(info.id)
    assert rows["digits"] == pytest.approx(run.faithfulness, abs=1e-6)  # its own task: the stored faithfulness
    lm = load_model("toy")
    nodes = {n for n in run.components if n not in ("input", "logits")}
    direct = Evaluator(lm, build_task("months:bare", lm, 24)).faithfulness(nodes)
    assert rows["months:bare"] == pytest.approx(direct, abs=1e-6)
    assert run.evaluations["months:bare"] == pytest.approx(direct, abs=1e-6)  # --save recorded EVALUATED_ON


def test_evaluate_refuses_feature_circuits(tmp_path: Path) -> None:
    store = f"kuzu:{tmp_path / 'c.kuzu'}"
    runner = CliRunner()
    assert runner.invoke(main, ["features", "discover", "--model", "toy", "--sae", "toy:resid2", "--task", "digits",
                                "--threshold", "0.8", "--prompts", "16", "--store", store]).exit_code == 0
    bad = runner.invoke(main, ["evaluate", "--on", "months", "--store", store])
    assert bad.exit_code == 1 and "feature circuit" in bad.stderr

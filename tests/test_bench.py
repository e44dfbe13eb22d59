import json

import torch
from typer.testing import CliRunner

from nca_cli.bench import agreement, bench_state, benchmark_model
from nca_cli.engine import DenseStep
from nca_cli.cli import app
from nca_cli.engine import NCAConfig

from . import reference


def test_bench_reference_is_the_plain_formulation():
    """The bench's reference (the library's dense step) agrees with the tests' own formulation (wrap edges)."""
    model = benchmark_model(NCAConfig(channels=8, hidden=16, padding="wrap"), torch.device("cpu"))
    ref = DenseStep(model)
    x = bench_state(model, 2, 16, 16, "full", "cpu")
    fire = torch.rand(2, 16, 16) < 0.5
    with torch.no_grad():
        theirs = reference.step(model, x, fire, padding="wrap")
        ours = ref(x.permute(0, 3, 1, 2), fire).permute(0, 2, 3, 1)
    assert torch.allclose(ours, theirs, atol=1e-6)
    assert agreement(model, ref, x) < 1e-5


def test_bench_command_reports_and_writes_json(tmp_path):
    out = tmp_path / "b.json"
    result = CliRunner().invoke(app, ["bench", "--batch", "2", "--grid", "16", "--channels", "8", "--hidden", "16",
                                      "--steps", "2", "--repeats", "2", "--json", str(out)])
    assert result.exit_code == 0, result.output
    assert "Engine and reference agree" in result.output
    report = json.loads(out.read_text())
    assert report["agreement_max_abs_diff"] < 1e-4
    assert len(report["timings"]) == 8 and report["repeats"] == 2
    assert set(report["speedup"]) == {"train_pattern", "infer_pattern", "train_full", "infer_full"}
    for t in report["timings"]:
        assert t["ms_per_step"] > 0 and t["cell_updates_per_s"] > 0 and t["peak_memory_mb"] > 0
    assert report["matmul_gflops"]["float32"] > 0


def test_bench_rejects_bad_shapes():
    result = CliRunner().invoke(app, ["bench", "--grid", "2"])
    assert result.exit_code == 1
    assert result.output.strip() == ("Error: --batch, --hidden, --steps and --repeats must be positive, "
                                     "--grid at least 3, --channels at least 4")

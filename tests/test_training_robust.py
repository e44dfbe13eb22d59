"""Training on a slow machine: the rate is not dropped absurdly early, a model below the bar ends
with a warning that says what to do, and --init continues a finished model from its weights."""

import shlex

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import nca_cli.training.finish as finish
import nca_cli.training.trainer as training
from nca_cli.cli import app
from nca_cli.formats.model_file import load_model
from nca_cli.growth.quality import Quality
from nca_cli.training import Trainer, TrainConfig

from .conftest import TINY_MODEL, TINY_TRAIN

runner = CliRunner()
# TINY_ARGS without its iterations: a run of 100 planned, the rate dropping at 82 of them.
RECIPE = ["--size", "12", "--pad", "4", "--batch", "4", "--pool-size", "8", "--steps-min", "8", "--steps-max", "12",
          "--seed", "3", "--device", "cpu", "--no-plots"]
SLOW = ["--channels", "8", "--hidden", "16", *RECIPE, "--iterations", "100", "--lr-decay-at", "82",
        "--time-budget", "10s"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


class SlowClock:
    """The trainer's clock on a machine where every iteration takes a second: each reading is one
    second after the last (the loop reads it once before and once after an iteration)."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory, disc_png):
    """A run cut short by its 10-second budget on a machine doing one iteration a second: 10 of
    its 100 iterations. Returns (model path, CliRunner result)."""
    out = tmp_path_factory.mktemp("slow") / "disc.safetensors"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "time", SlowClock())
        result = invoke("train", disc_png, "-o", out, *SLOW)
    return out, result


def warning_for(out, disc_png, quality: dict, iterations: int, pace: str, more: int, drop: int, took: str,
                ended: str = "The time budget ended the run", needed: int = 1100) -> str:
    """The warning a short model gets, written out independently of the command's code."""
    command = (f"nca train {disc_png} " + " ".join(RECIPE) + f" -o {out} --init {out} --iterations {more} "
               f"--lr-decay-at {drop} --time-budget none")
    return (f"Warning: this model falls short of a good one: grown {quality['grow_loss']:.4f} and regrown "
            f"{quality['regrow_loss']:.4f}, where a good model has grown <= 0.006 and regrown <= 0.016. {ended} "
            f"after {iterations} iterations, at {pace} iterations per second on this machine; the default "
            f"recipe reaches that on the lizard in about {needed:,} iterations, so {more:,} more would take "
            f"about {took} here. Continue training it with:\n  {command}")


def test_a_slow_machine_keeps_its_rate_and_ends_with_a_warning_and_a_model(slow_run, disc_png):
    out, result = slow_run
    assert result.exit_code == 0, result.output
    training_info = load_model(out).training  # the model is written all the same
    assert training_info["stopped"] == "time budget" and training_info["iterations_done"] == 10
    # By the wall time alone the rate would drop at 82% of the budget (iteration 9 of 10); it may
    # not before 30% of the planned 82 iterations, so it keeps its full rate.
    assert training_info["lr_dropped_at"] is None
    assert "The time budget ended the run before iteration 25, the earliest it may bring the rate drop " \
           "forward to: the rate stayed at 0.002" in result.stdout
    assert result.stdout.rstrip().endswith(f"Wrote {out}")
    # 10 iterations in 10 s; 1090 more of the 1100 a good model takes, dropping at 82% of them.
    assert result.stderr.strip() == warning_for(out, disc_png, training_info, 10, "1.00", 1090, round(0.82 * 1090),
                                                "18m10s")


def test_the_time_budget_brings_the_drop_no_earlier_than_its_floor(disc_target, monkeypatch):
    monkeypatch.setattr(training, "time", SlowClock())
    config = TrainConfig.from_dict({**TINY_TRAIN.to_dict(), "iterations": 20, "lr_decay_at": 10, "lr": 1e-3})
    assert config.earliest_drop == 3
    for budget, drop in ((4.0, 3), (10.0, 5)):  # the wall time asks for a drop at 2 s, then at 5 s
        trainer = Trainer(TINY_MODEL, config, disc_target)
        rates = []
        assert trainer.run(time_budget=budget, on_iteration=lambda t, _: rates.append(
            t.optimizer.param_groups[0]["lr"])) == "time budget"
        assert trainer.iteration == budget and trainer.decay_from == drop
        assert rates == pytest.approx([1e-3] * drop + [1e-4] * (int(budget) - drop))


def test_the_warnings_command_continues_from_the_models_weights(disc_png, tmp_path, monkeypatch):
    out = tmp_path / "disc.safetensors"
    monkeypatch.setattr(finish, "GOOD_ITERATIONS", 14)  # a good model would take 4 more iterations
    monkeypatch.setattr(training, "time", SlowClock())
    first = invoke("train", disc_png, "-o", out, *SLOW)
    command = first.stderr.strip().splitlines()[-1].strip()
    assert command == (f"nca train {disc_png} " + " ".join(RECIPE) + f" -o {out} --init {out} --iterations 4 "
                       f"--lr-decay-at 3 --time-budget none")
    saved = load_model(out).model.state_dict()
    starts = []
    real_step = Trainer.train_step

    def recording_step(self):
        if not starts:
            starts.append(({k: v.clone() for k, v in self.model.state_dict().items()},
                           {k: v.clone() for k, v in self.averaged.state_dict().items()}))
        return real_step(self)

    monkeypatch.setattr(Trainer, "train_step", recording_step)
    result = invoke(*shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    for weights in starts[0]:  # the first iteration starts from the file's weights, average and all
        assert weights.keys() == saved.keys() and all(torch.equal(weights[k], saved[k]) for k in saved)
    info = load_model(out).training
    assert info["started_from"] == str(out) and info["iterations_before"] == 10
    assert info["iterations_done"] == 4 and info["lr_dropped_at"] == 3
    assert "after 4 iterations (14 in all)" in result.stderr
    assert "it has had as many iterations as the default recipe takes to reach that on the lizard (14); 14 more " \
           "would take about 14s here" in result.stderr


@pytest.mark.parametrize("extra, message", [
    (["--channels", "12"], "Error: --init {m} is a model with --channels 8; leave --channels out to use the "
                           "model's, or start a new run without --init"),
    (["--padding", "wrap"], "Error: --init {m} is a model with --padding zero; leave --padding out to use the "
                            "model's, or start a new run without --init"),
])
def test_an_init_that_conflicts_with_the_options_is_one_error_line(slow_run, disc_png, tmp_path, extra, message):
    model = slow_run[0]
    result = invoke("train", disc_png, "-o", tmp_path / "new.safetensors", "--init", model, *RECIPE, *extra)
    assert result.exit_code == 1
    assert result.stderr.strip() == message.format(m=model)
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_init_for_other_targets_is_one_error_line(slow_run, disc_png, tmp_path):
    model = slow_run[0]
    body = tmp_path / "body.npy"
    cube = np.zeros((6, 6, 6, 4), np.uint8)
    cube[1:5, 1:5, 1:5] = (200, 80, 20, 255)
    np.save(body, cube)
    result = invoke("train", body, "-o", tmp_path / "b.safetensors", "--init", model, "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: --init {model} is a 2D model; it cannot train on a 3D target"
    result = invoke("train", disc_png, "🦎", "-o", tmp_path / "g.safetensors", "--init", model, "--size", "12",
                    "--pad", "4", "--device", "cpu")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: --init {model} is a model of one target; this run gives 2 targets"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["body.npy"]


def test_the_shortfall_is_measured_against_the_bar(disc_target):
    trainer = Trainer(TINY_MODEL, TINY_TRAIN, disc_target)
    trainer.iteration, trainer.elapsed = 100, 50.0
    good = Quality(grow_loss=0.006, regrow_loss=0.016, runs=8, steps=200)
    assert finish.shortfall(trainer, good) is None  # at the bar is good
    for grown, regrown in ((0.0061, 0.001), (0.001, 0.0161), (float("nan"), 0.001)):
        short = finish.shortfall(trainer, Quality(grow_loss=grown, regrow_loss=regrown, runs=8, steps=200))
        # 2 iterations a second; the 1000 of 1100 still missing take 500 s; TINY_TRAIN has no drop
        # (2450 of 6 iterations), so the continuation drops at the default recipe's 2450 / 3000.
        assert (short.pace, short.more, short.seconds) == (2.0, 1000, 500.0)
        assert short.lr_decay_at == round(1000 * 2450 / 3000)
    trainer.iterations_before = 1500  # continued from a model trained for 1500: as many again
    short = finish.shortfall(trainer, Quality(grow_loss=0.01, regrow_loss=0.02, runs=8, steps=200))
    assert (short.iterations, short.more) == (1600, 1600)
    import dataclasses

    persist = Trainer(TINY_MODEL, dataclasses.replace(TINY_TRAIN, mode="persist"), disc_target)
    persist.iteration, persist.elapsed = 100, 50.0
    # A model not trained to heal is judged on its growth alone.
    assert finish.shortfall(persist, Quality(grow_loss=0.005, regrow_loss=0.03, runs=8, steps=200)) is None
    assert not finish.shortfall(persist, Quality(grow_loss=0.007, regrow_loss=0.03, runs=8, steps=200)).regrows

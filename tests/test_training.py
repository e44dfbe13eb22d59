import math

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from nca_cli.engine import rgba_loss
from nca_cli.errors import NCAError
from nca_cli.targets import load_target
from nca_cli.training import Trainer, TrainConfig, load_state, save_state

from .conftest import TINY_MODEL, TINY_TRAIN


def make_trainer(target, **changes) -> Trainer:
    return Trainer(TINY_MODEL, TrainConfig.from_dict({**TINY_TRAIN.to_dict(), **changes}), target)


def test_training_reduces_the_loss(disc_target):
    trainer = make_trainer(disc_target, iterations=60, mode="persist", lr=3e-3)
    trainer.run()
    assert trainer.iteration == 60 and len(trainer.losses) == 60
    first, last = sum(trainer.losses[:5]) / 5, trainer.final_loss(5)
    assert last < 0.8 * first, (first, last)


def test_same_seed_same_model_and_resume_ends_where_an_uninterrupted_run_would(disc_target, tmp_path):
    straight = make_trainer(disc_target)
    straight.run()
    again = make_trainer(disc_target)
    again.run()
    for a, b in zip(straight.model.parameters(), again.model.parameters()):
        assert torch.equal(a, b)

    half = make_trainer(disc_target, iterations=3)
    half.run()
    save_state(half, tmp_path / "state.safetensors")
    resumed = load_state(tmp_path / "state.safetensors", disc_target, iterations=6)
    assert resumed.iteration == 3
    resumed.run()
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)
    for a, b in zip(straight.averaged.parameters(), resumed.averaged.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(straight.pool, resumed.pool)
    assert resumed.losses == pytest.approx(straight.losses)


def test_resume_refuses_another_target(disc_target, tmp_path):
    trainer = make_trainer(disc_target, iterations=1)
    trainer.run()
    save_state(trainer, tmp_path / "state.safetensors")
    other = load_target("🦎", size=12, pad=4)
    with pytest.raises(NCAError, match="was trained on another target"):
        load_state(tmp_path / "state.safetensors", other)


def test_non_finite_loss_rolls_back_instead_of_breaking_the_model(disc_target, monkeypatch):
    trainer = make_trainer(disc_target, iterations=4)
    trainer.run()
    before = [p.detach().clone() for p in trainer.model.parameters()]
    average_before = [p.detach().clone() for p in trainer.averaged.parameters()]
    pool_before = trainer.pool.clone()
    real_rollout = trainer.model.rollout
    monkeypatch.setattr(trainer.model, "rollout", lambda x, n, **kw: real_rollout(x, n, **kw) * float("nan"))
    trainer.config = TrainConfig.from_dict({**trainer.config.to_dict(), "iterations": 6})
    trainer.run()
    assert trainer.rollbacks == 2
    assert all(math.isnan(v) for v in trainer.losses[-2:])
    for a, b in zip(before + average_before, [*trainer.model.parameters(), *trainer.averaged.parameters()]):
        assert torch.equal(a, b)
    assert trainer.updates == 4
    assert torch.equal(pool_before, trainer.pool)


def test_saved_model_is_the_moving_average_of_the_weights(disc_target):
    trainer = make_trainer(disc_target, iterations=12, average=0.5)
    expected = [p.detach().clone() for p in trainer.model.parameters()]

    def fold(t: Trainer, loss: float) -> None:
        decay = t.config.average_decay(t.updates)
        for avg, p in zip(expected, t.model.parameters()):
            avg.mul_(decay).add_(p.detach(), alpha=1 - decay)

    trainer.run(on_iteration=fold)
    assert trainer.result is trainer.averaged
    for avg, got, last in zip(expected, trainer.averaged.parameters(), trainer.model.parameters()):
        torch.testing.assert_close(got, avg)
        assert not torch.equal(got, last)
    plain = make_trainer(disc_target, average=0.0)
    assert plain.result is plain.model


def test_average_decay_is_low_for_the_first_updates():
    config = TrainConfig(average=0.99)
    assert config.average_decay(1) == pytest.approx(2 / 11)
    assert config.average_decay(5000) == 0.99
    assert TrainConfig(average=0.0).average_decay(5000) == 0.0
    with pytest.raises(ValueError, match="weight average"):
        TrainConfig(average=1.0)


def test_resume_from_a_checkpoint_without_a_weight_average(disc_target, tmp_path):
    trainer = make_trainer(disc_target, iterations=3)
    trainer.run()
    path = tmp_path / "state.safetensors"
    save_state(trainer, path)
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
    tensors = {k: v for k, v in load_file(str(path)).items() if not k.startswith("averaged.")}
    save_file(tensors, str(path), metadata=meta)
    resumed = load_state(path, disc_target, iterations=6)
    for a, b in zip(resumed.averaged.parameters(), trainer.model.parameters()):
        assert torch.equal(a, b)
    resumed.run()
    assert resumed.iteration == 6


def test_dead_samples_go_back_to_the_seed(disc_target):
    trainer = make_trainer(disc_target)
    x = trainer.seed.repeat(3, 1, 1, 1) * 0.5
    x[1] = 0  # everything dead
    reset = trainer._reset_dead(x)
    assert torch.equal(reset[1], trainer.seed[0])
    assert torch.equal(reset[0], x[0])


def test_pool_sampling_seeds_the_worst_and_wounds_the_best(disc_target):
    trainer = make_trainer(disc_target, batch=4, damage_count=2)
    trainer.pool = disc_target.rgba.new_zeros(trainer.pool.shape)
    trainer.pool[..., :4] = disc_target.rgba  # every pool sample is the perfect pattern ...
    trainer.pool[..., 4:] = 1.0
    trainer.pool[0, ..., 3] = 0.0  # ... except the first, whose alpha is gone
    idx, x = trainer.sample_batch()
    losses = rgba_loss(x, disc_target.rgba)
    assert torch.equal(x[0], trainer.seed[0])
    assert (x[-2:, ..., 3] == 0).flatten(1).sum(1).gt((disc_target.rgba[..., 3] == 0).sum()).all()  # wounded
    assert losses[1] == pytest.approx(0.0, abs=1e-7)


def test_train_config_validation():
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainConfig(mode="fly")
    with pytest.raises(ValueError, match=r"^steps_max must be at least the shortest rollout \(10 steps\), got 5$"):
        TrainConfig(steps_min=10, steps_max=5)
    with pytest.raises(ValueError, match="^steps_min must be at least 1, got 0$"):
        TrainConfig(steps_min=0)
    with pytest.raises(ValueError, match="^batch must be at least 1, got 0$"):
        TrainConfig(batch=0)
    assert TrainConfig(lr=1.0, lr_decay_at=5).learning_rate(4) == 1.0
    assert TrainConfig(lr=1.0, lr_decay_at=5).learning_rate(5) == pytest.approx(0.1)


def test_learning_rate_drops_at_the_earlier_of_the_two_iterations():
    cfg = TrainConfig(lr=1.0, lr_decay_at=5, iterations=10)
    assert cfg.decay_fraction == 0.5
    assert cfg.learning_rate(3, decay_from=3) == pytest.approx(0.1)
    assert cfg.learning_rate(2, decay_from=3) == 1.0
    assert cfg.learning_rate(5, decay_from=8) == pytest.approx(0.1)


def test_a_time_budget_shorter_than_the_schedule_drops_the_rate_at_the_same_fraction(disc_target, tmp_path,
                                                                                      monkeypatch):
    import nca_cli.training.trainer as training

    clock = iter(range(10 ** 6))  # every call of the clock is one second later: an iteration takes 1 s
    monkeypatch.setattr(training.time, "perf_counter", lambda: float(next(clock)))
    trainer = make_trainer(disc_target, iterations=20, lr_decay_at=10, lr=1e-3)  # the earliest drop: 3
    rates = []
    assert trainer.run(time_budget=10.0, on_iteration=lambda t, _: rates.append(
        t.optimizer.param_groups[0]["lr"])) == "time budget"
    assert trainer.iteration == 10  # the budget ends the run, not the 20 iterations
    assert trainer.decay_from == 5  # half the budget, as lr_decay_at is half the iterations
    assert rates == pytest.approx([1e-3] * 5 + [1e-4] * 5)
    assert trainer.summary("time budget")["lr_dropped_at"] == 5
    save_state(trainer, tmp_path / "state.safetensors")
    assert load_state(tmp_path / "state.safetensors", disc_target).decay_from == 5

    # Without a budget (or with one it does not reach) the iteration schedule is kept exactly.
    trainer = make_trainer(disc_target, iterations=6, lr_decay_at=4)
    trainer.run(time_budget=1e9)
    assert trainer.decay_from == 4 and trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * trainer.config.lr)


def test_expected_iterations_follow_the_time_budget(disc_target):
    trainer = make_trainer(disc_target, iterations=100)
    assert trainer.expected_iterations(10.0) == 100  # nothing measured yet
    trainer.iteration, trainer.elapsed = 20, 4.0  # 0.2 s an iteration: 30 more fit in the 6 s left
    assert trainer.expected_iterations(10.0) == 50
    assert trainer.expected_iterations(60.0) == 100 and trainer.expected_iterations(None) == 100
    trainer.elapsed = 12.0  # over the budget: it ends now
    assert trainer.expected_iterations(10.0) == 20


def test_a_run_can_change_its_target_and_recipe_between_iterations(disc_target):
    trainer = make_trainer(disc_target, iterations=4)
    trainer.iterate()
    other = load_target("🦎", size=12, pad=4)  # the same 20x20 grid: the pool is kept
    pool = trainer.pool.clone()
    trainer.set_target(other)
    assert torch.equal(trainer.pool, pool) and torch.equal(trainer.target_rgba, other.rgba)
    trainer.reconfigure(lr=1e-3, damage_count=2, steps_min=4, steps_max=6)
    assert trainer.config.lr == 1e-3 and trainer.config.learning_rate(trainer.iteration) == 1e-3
    trainer.iterate()
    assert trainer.iteration == 2 and len(trainer.losses) == 2
    bigger = load_target("🦎", size=16, pad=4)  # another grid: the pool restarts from seeds
    trainer.set_target(bigger)
    assert trainer.pool.shape[1:3] == (24, 24) and torch.equal(trainer.pool[0], trainer.seed[0])
    trainer.iterate()
    with pytest.raises(NCAError, match="pool_size cannot change during a run"):
        trainer.reconfigure(pool_size=16)
    with pytest.raises(NCAError, match="damage_count must be from 0 to the batch size less one"):
        trainer.reconfigure(damage_count=9)


def test_a_new_rate_drop_replaces_the_old_one(disc_target):
    trainer = make_trainer(disc_target, lr_decay_at=2)
    trainer.decay_from = 1  # as a time budget would have brought it forward
    trainer.reconfigure(lr_decay_at=10)
    assert trainer.decay_from == 10
    assert trainer.config.learning_rate(9, trainer.decay_from) == trainer.config.lr
    assert trainer.config.learning_rate(10, trainer.decay_from) == pytest.approx(trainer.config.lr * 0.1)
    trainer.reconfigure(lr=1e-3)  # other changes leave the drop where it is
    assert trainer.decay_from == 10


def test_resume_without_a_target_uses_the_one_stored_in_the_state(disc_target, tmp_path):
    trainer = make_trainer(disc_target, iterations=2)
    trainer.run()
    save_state(trainer, tmp_path / "state.safetensors")
    resumed = load_state(tmp_path / "state.safetensors")
    assert resumed.iteration == 2 and resumed.target.sha256 == disc_target.sha256
    assert resumed.target.name == disc_target.name and torch.equal(resumed.target_rgba, disc_target.rgba)
    tensors = load_file(tmp_path / "state.safetensors")
    with safe_open(str(tmp_path / "state.safetensors"), framework="pt") as f:
        meta = f.metadata()
    del tensors["target"]
    save_file(tensors, tmp_path / "no-target.safetensors", metadata=meta)
    with pytest.raises(NCAError, match="is damaged: the tensor target is missing"):
        load_state(tmp_path / "no-target.safetensors")


def test_curriculum_shortens_early_rollouts_and_warms_the_rate_up():
    cfg = TrainConfig(short_first=400, lr_warmup=50)
    assert cfg.rollout_range(0) == (16, 24) and cfg.rollout_range(200) == (40, 60)
    assert cfg.rollout_range(399)[1] <= 96 and cfg.rollout_range(400) == (64, 96)
    assert cfg.learning_rate(0) == pytest.approx(2e-3 / 50) and cfg.learning_rate(49) == 2e-3
    plain = TrainConfig()
    assert plain.rollout_range(0) == (64, 96) and plain.learning_rate(0) == 2e-3  # off by default
    with pytest.raises(NCAError, match="must not be negative"):
        TrainConfig(short_first=-1)


def test_the_overgrowth_penalty_scores_alpha_where_the_target_is_empty_on_samples_that_hold_their_body(disc_target):
    torch.manual_seed(0)
    trainer = make_trainer(disc_target, overgrowth=5.0, batch=3, damage_count=1)
    torch.nn.init.normal_(trainer.model.w2.weight, std=0.05)  # a rule that changes the pattern
    trainer.pool = torch.rand_like(trainer.pool)  # samples alive all over the grid
    batch = trainer.draw()
    fires = [torch.rand(batch.x.shape[:-1]) < 0.5 for _ in range(4)]
    x = trainer.model.rollout(batch.x.clone(), 4, fire=lambda k: fires[k]).detach()
    # Written out cell by cell: alpha squared summed where the target is empty, over 4 x cells.
    target = disc_target.rgba
    H, W = target.shape[:2]
    expected = []
    for i in range(3):
        mse = float(((x[i, ..., :4] - target) ** 2).mean())
        penalty = sum(float(x[i, r, c, 3]) ** 2 for r in range(H) for c in range(W) if target[r, c, 3] == 0) / (4 * H * W)
        # The first restarted from the seed, the last wounded: only the middle one holds its body.
        expected.append(mse + (5.0 * penalty if i == 1 else 0.0))
        assert penalty > 0 or i == 0
    assert batch.held.tolist() == [False, True, False]
    loss = trainer.learn(batch, 4, fire=lambda k: fires[k])
    assert loss == pytest.approx(sum(expected) / 3, rel=1e-5)


def test_the_overgrowth_weight_is_checked():
    with pytest.raises(NCAError, match="overgrowth must be a number of at least 0, got -1"):
        TrainConfig(overgrowth=-1.0)

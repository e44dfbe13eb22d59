"""The learned rule (the engine on one-hot states) against a dense formulation written here; the
observations; learning Life and Brian's Brain; reading back and reporting; the model file."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from nca_cli.errors import NCAError
from nca_cli.rules.learn import LearnConfig, learn
from nca_cli.rules.learned import encode_states, predict, rule_model, run_model, step_scores
from nca_cli.rules.neighbourhoods import all_codes, decode, encode, neighbourhoods
from nca_cli.rules.notation import parse_rule
from nca_cli.rules.observed import load_runs, observe, pack_codes, simulated_runs, unpack_codes
from nca_cli.rules.readback import ReadBack, family_fits, nearest_life_like, read_back
from nca_cli.rules.report import agreement_lines, unconstrained_lines
from nca_cli.rules.simulate import run
from nca_cli.rules.tables import tabulate


def random_rule_model(states=3, padding="wrap", seed=0):
    model = rule_model(states, bands=9, hidden=16, padding=padding, seed=seed)
    with torch.no_grad():
        torch.nn.init.normal_(model.w2.weight, std=0.5)
        model.perception_weight.add_(0.3 * torch.randn(model.perception_weight.shape))
    return model


def dense_scores(model, grid: torch.Tensor, padding: str) -> torch.Tensor:
    """The step written plainly: one-hot, the outside state 0 (bounded) or wrapped, each kernel
    applied to each channel, band-major, the MLP, plus the state itself. (B, H, W) -> (B, H, W, states)"""
    states = model.config.channels
    x = F.one_hot(grid.long(), states).float().permute(0, 3, 1, 2)  # (B, C, H, W)
    if padding == "wrap":
        xp = F.pad(x, (1, 1, 1, 1), mode="circular")
    else:
        empty = torch.zeros(states)
        empty[0] = 1
        xp = F.pad(x - empty[None, :, None, None], (1, 1, 1, 1)) + empty[None, :, None, None]
    kernels = model.perception_weight.detach().reshape(-1, 1, 3, 3)  # (K, 1, 3, 3)
    bands = [F.conv2d(xp[:, c:c + 1], kernels) for c in range(states)]  # each (B, K, H, W)
    perceived = torch.stack(bands, dim=2).flatten(1, 2)  # (B, K*C, H, W): band-major
    hidden = F.relu(torch.einsum("bihw,oi->bohw", perceived, model.w1.weight) + model.w1.bias[:, None, None])
    update = torch.einsum("bihw,oi->bohw", hidden, model.w2.weight) + model.w2.bias[:, None, None]
    return (x + update).permute(0, 2, 3, 1)


@pytest.mark.parametrize("padding", ["wrap", "zero"])
def test_the_learned_rule_steps_as_a_dense_formulation(padding):
    model = random_rule_model(padding=padding)
    grid = torch.randint(0, 3, (2, 7, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ours = step_scores(model, encode_states(grid, 3))
    assert torch.allclose(ours, dense_scores(model, grid, padding), atol=1e-5)
    later = run_model(model, grid.numpy().astype(np.uint8), 1)
    assert np.array_equal(later, ours.argmax(-1).numpy())


@pytest.mark.parametrize("padding", ["wrap", "zero"])
def test_predictions_per_configuration_are_the_grid_step(padding):
    """Each configuration on its own 3x3 tile gives what the cell gets stepped in a whole grid."""
    model = random_rule_model(padding=padding, seed=2)
    grid = np.random.default_rng(0).integers(0, 3, (1, 12, 10)).astype(np.uint8)
    stepped = run_model(model, grid, 1)
    codes = encode(neighbourhoods(grid, padding), 3).ravel()
    predicted, margins = predict(model, codes)
    assert np.array_equal(predicted, stepped.ravel()) and (margins >= 0).all()


def test_observations_count_transitions_and_refuse_two_outcomes():
    runs = simulated_runs(parse_rule("life"), 2, (8, 8), 3, "wrap", 0)
    observed = observe(runs, 2, "wrap")
    assert observed.transitions == 2 * 3 * 64 and observed.counts.sum() == observed.transitions
    assert np.array_equal(observed.next, parse_rule("life").next_state(decode(observed.codes, 2)))
    noisy = runs.copy()
    noisy[0, 1] = 1 - noisy[0, 1]  # not a rule any more
    with pytest.raises(NCAError, match="the runs are not one rule on the Moore neighbourhood with wrap edges"):
        observe(noisy, 2, "wrap")


@pytest.mark.parametrize("array, states, message", [
    (np.zeros((3, 4, 4), np.float32), None, "runs.npy holds float32 values; runs are integer states, (T, H, W) or (N, T, H, W)"),
    (np.zeros((4, 4), np.uint8), None, "runs.npy holds an array of shape (4, 4); runs are (T, H, W) or (N, T, H, W)"),
    (np.full((2, 3, 3), 3, np.int64), 2, "runs.npy holds states up to 3, more than the 2 states (0..1) of the rule"),
    (np.full((2, 3, 3), -1, np.int8), None, "runs.npy holds the state -1; states are 0 or more"),
])
def test_bad_runs_give_one_clear_error(tmp_path, array, states, message):
    path = tmp_path / "runs.npy"
    np.save(path, array)
    with pytest.raises(NCAError) as info:
        load_runs(path, states)
    assert str(info.value) == message.replace("runs.npy", str(path))


def test_seen_codes_pack_and_unpack():
    codes = np.array([0, 5, 6, 511, 262143])
    assert np.array_equal(unpack_codes(pack_codes(codes)), codes)
    with pytest.raises(NCAError, match="the stored configurations are damaged"):
        unpack_codes("not base64!")


def test_family_fits_count_the_transitions_off_each_family():
    life = tabulate(parse_rule("life"))
    skewed = life.next.copy()
    row = [0b000000111, 0b111000000, 0b100100100, 0b001001001]  # three in a row on one side: 3i, 4 ways
    skewed[np.isin(life.codes, row)] = 0  # no birth there
    fits = {f.family: f for f in family_fits(2, life.codes, skewed)}
    assert fits["B/S"].distance == 4 and fits["B/S"].nearest.notation == "B3/S23"
    assert fits["Hensel"].distance == 0 and fits["Hensel"].nearest.notation == "B3-i/S23"
    assert fits["table (permute)"].distance == 4 and fits["table (rotate4reflect)"].distance == 0
    skewed[life.codes == row[0]] = 1  # one of the four born again: one transition off each family
    assert [f.distance for f in family_fits(2, life.codes, skewed)] == [3, 1, 3, 1]
    hensel_rule = tabulate(parse_rule("B2-a/S12"))
    assert nearest_life_like(2, hensel_rule.codes, hensel_rule.next, True).distance == 0
    assert nearest_life_like(2, hensel_rule.codes, hensel_rule.next, False).distance == 8  # the eight 2a births
    brain = tabulate(parse_rule("/2/3"))
    fit = nearest_life_like(3, brain.codes, brain.next, False)
    assert (fit.distance, fit.nearest.notation, fit.family) == (0, "B2/S/C3", "Generations")


def test_reports_write_differences_and_unseen_configurations_as_notation():
    life = tabulate(parse_rule("life"))
    seen = ~np.isin(life.codes, [0b111111111, 0b111101111])  # all but the two with eight live neighbours
    readback = ReadBack(2, life.codes, life.next, np.ones(512), seen, True, family_fits(2, life.codes, life.next),
                        parse_rule("life"))
    lines = agreement_lines(readback, parse_rule("highlife"))
    assert lines == ["Agreement with B36/S23 (highlife): 484/512 neighbourhoods",
                     "  B6 (28): the learned rule gives 0, B36/S23 gives 1"]
    unseen = unconstrained_lines(readback)
    assert unseen[0] == ("Unconstrained by the data: 2 of 512 neighbourhoods were never observed; 2 of them not even "
                         "turned or mirrored. The learned rule's guesses, by the classes they fall in:")
    assert unseen[1:] == ["  B8 (1): gives 0", "  S8 (1): gives 0"]


def test_learns_life_from_soups_exactly_and_reads_it_back():
    runs = simulated_runs(parse_rule("B3/S23"), 4, (32, 32), 4, "wrap", 0)
    observed = observe(runs, 2, "wrap")
    assert len(observed.codes) == 512
    result = learn(observed, LearnConfig(seed=0))
    assert result.exact and result.check.wrong == 0 and result.check.margin >= 1.0
    readback = read_back(result.model, observed.codes)
    assert readback.rule.notation == "B3/S23" and readback.complete and readback.seen.all()
    truth = parse_rule("life").next_state(decode(all_codes(2), 2))
    assert np.array_equal(readback.next, truth)
    soup = np.random.default_rng(5).integers(0, 2, (1, 40, 40)).astype(np.uint8)
    assert np.array_equal(run_model(result.model, soup, 60), run(parse_rule("life"), soup, 60, "wrap"))


def test_learns_brians_brain_on_a_bounded_grid():
    rule = parse_rule("brians-brain")
    runs = simulated_runs(rule, 12, (40, 40), 6, "zero", 1)
    observed = observe(runs, 3, "zero")
    result = learn(observed, LearnConfig(seed=1), padding="zero")
    assert result.exact
    readback = read_back(result.model, observed.codes)
    seen = readback.seen
    truth = rule.next_state(decode(readback.codes, 3))
    assert np.array_equal(readback.next[seen], truth[seen])  # every observed configuration
    start = runs[:2, 0]
    assert np.array_equal(run_model(result.model, start, 6), run(rule, start, 6, "zero"))

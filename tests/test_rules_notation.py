"""Rule notations, Hensel classes and the hand-written simulators, against known patterns and an
obvious cell-by-cell formulation written here."""

import itertools

import numpy as np
import pytest

from nca_cli.errors import NCAError
from nca_cli.rules import hensel
from nca_cli.rules.neighbourhoods import all_codes, canonical, decode, encode, neighbourhoods
from nca_cli.rules.notation import LifeLike, Table, WireWorld, parse_rule, rule_name
from nca_cli.rules.simulate import random_soups, run, step, trajectories
from nca_cli.rules.tables import exact_symmetry, majority, tabulate


def picture(text: str) -> np.ndarray:
    """Rows of '.', 'o' (1) or digits -> (H, W) uint8."""
    rows = [r.strip() for r in text.strip().splitlines()]
    return np.array([[1 if c == "o" else 0 if c == "." else int(c) for c in r] for r in rows], dtype=np.uint8)


def slow_step(grid: np.ndarray, birth: set, survive: set, states: int, wrap: bool) -> np.ndarray:
    """A Generations step written cell by cell, counting live neighbours one at a time."""
    H, W = grid.shape
    out = np.zeros_like(grid)
    for y, x in itertools.product(range(H), range(W)):
        live = 0
        for dy, dx in itertools.product((-1, 0, 1), repeat=2):
            yy, xx = y + dy, x + dx
            if (dy, dx) == (0, 0):
                continue
            if wrap:
                yy, xx = yy % H, xx % W
            elif not (0 <= yy < H and 0 <= xx < W):
                continue
            live += grid[yy, xx] == 1
        c = grid[y, x]
        if c == 0:
            out[y, x] = 1 if live in birth else 0
        elif c == 1:
            out[y, x] = 1 if live in survive else 2 % states
        else:
            out[y, x] = (c + 1) % states
    return out


@pytest.mark.parametrize("text, notation, family", [
    ("B3/S23", "B3/S23", "B/S"), ("b3s23", "B3/S23", "B/S"), ("23/3", "B3/S23", "B/S"), ("life", "B3/S23", "B/S"),
    ("Conway", "B3/S23", "B/S"), ("HighLife", "B36/S23", "B/S"), ("seeds", "B2/S", "B/S"),
    ("Day and Night", "B3678/S34678", "B/S"), ("/2/3", "B2/S/C3", "Generations"),
    ("Brian's Brain", "B2/S/C3", "Generations"), ("B2/S/3", "B2/S/C3", "Generations"),
    ("345/2/4", "B2/S345/C4", "Generations"), ("B2-a/S12", "B2-a/S12", "Hensel"),
    ("B2cein/S12", "B2-ak/S12", "Hensel"), ("B2aceikn3/S23", "B23/S23", "B/S"), ("B2-aceikn3/S23", "B3/S23", "B/S"),
    ("B4-qjrtwz/S", "B4aceikny/S", "Hensel"), ("wireworld", "wireworld", "table"),
])
def test_notations_parse_and_print_canonically(text, notation, family):
    rule = parse_rule(text)
    assert (rule.notation, rule.family) == (notation, family)
    assert parse_rule(rule.notation) == rule


@pytest.mark.parametrize("text, message", [
    ("B9/S23", "invalid rule 'B9/S23': expected B/S notation (B3/S23), Generations (B2/S/C3 or Golly's /2/3), "
               "Hensel notation (B2-a/S12) or a named rule (life, highlife, seeds, daynight, brians-brain, "
               "star-wars, replicator, maze, life-without-death, wireworld)"),
    ("B2z/S1", "invalid rule 'B2z/S1': 'z' is not a shape of 2 neighbours (letters: aceikn)"),
    ("B2-/S1", "invalid rule 'B2-/S1': '2-' must be followed by the letters to leave out"),
    ("B3/S23/C40", "invalid rule 'B3/S23/C40': a rule has 2 to 8 states, got 40"),
])
def test_unparseable_rules_name_the_notations(text, message):
    with pytest.raises(NCAError) as info:
        parse_rule(text)
    assert str(info.value) == message


def test_hensel_classes_partition_the_neighbourhoods_by_symmetry():
    """Each class is one orbit of the square's symmetries: 51 classes, sizes summing to 256."""
    assert len(hensel.CLASSES) == 51
    hoods = decode(np.arange(512), 2)
    orbits = canonical(np.where(np.arange(9) == 4, 0, hoods), 2, "rotate4reflect")
    classes = hensel.classes_of(hoods)
    for index in range(51):
        members = classes == index
        assert len(np.unique(orbits[members])) == 1  # one orbit per class
        count = int(hensel.CLASSES[index][0])
        assert (hoods[members].sum(1) - hoods[members, 4] == count).all()
    assert len(np.unique(orbits)) == 51
    assert sum(np.bincount(classes)) == 512


def test_glider_has_period_4_and_moves_one_cell_diagonally():
    glider = np.zeros((1, 10, 10), np.uint8)
    glider[0, 1:4, 1:4] = picture(".o.\n..o\nooo")
    life = parse_rule("life")
    later = run(life, glider, 4, "wrap")
    assert np.array_equal(later, np.roll(glider, (1, 1), axis=(1, 2)))
    phases = trajectories(life, glider, 3, "wrap")[0, 1:]
    assert not any(np.array_equal(p, glider[0]) for p in phases)  # not back earlier, up to the move
    on_torus = run(life, glider, 40, "wrap")  # 10 periods: round the 10x10 torus once
    assert np.array_equal(on_torus, glider)


def test_blinker_oscillates_and_a_bounded_grid_loses_it_at_the_edge():
    blinker = np.zeros((1, 5, 5), np.uint8)
    blinker[0, 2, 1:4] = 1
    life = parse_rule("B3/S23")
    assert np.array_equal(step(life, blinker, "zero")[0], blinker[0].T)
    assert np.array_equal(run(life, blinker, 2, "zero"), blinker)
    edge = np.zeros((1, 4, 4), np.uint8)
    edge[0, 0, 0:3] = 1  # against the top edge: on a plane it dies, on a torus it blinks through the edge
    assert step(life, edge, "zero").sum() == 2
    assert step(life, edge, "wrap").sum() == 3


@pytest.mark.parametrize("text, birth, survive, states", [
    ("B3/S23", {3}, {2, 3}, 2), ("B36/S23", {3, 6}, {2, 3}, 2), ("B2/S", {2}, set(), 2),
    ("B3678/S34678", {3, 6, 7, 8}, {3, 4, 6, 7, 8}, 2), ("/2/3", {2}, set(), 3), ("345/2/4", {2}, {3, 4, 5}, 4),
])
@pytest.mark.parametrize("padding", ["wrap", "zero"])
def test_totalistic_rules_match_a_cell_by_cell_step(text, birth, survive, states, padding):
    rule = parse_rule(text)
    soups = random_soups(states, 2, (9, 11), np.random.default_rng(3))
    for grid in soups:
        expected = slow_step(grid, birth, survive, states, padding == "wrap")
        assert np.array_equal(step(rule, grid[None], padding)[0], expected)


def test_wireworld_diode_passes_electrons_one_way():
    diode = picture("""
        .....33........
        333333.33333333
        .....33........""")
    ww = parse_rule("wireworld")

    def arrives(grid, target):
        seen = []
        run(ww, grid[None], 40, "zero", on_step=lambda k, g: seen.append(g[0][target] == 1))
        return any(seen)

    rightwards, leftwards = diode.copy(), diode.copy()
    rightwards[1, 0:2] = (2, 1)  # tail, head: an electron moving right
    leftwards[1, 13:15] = (1, 2)
    assert arrives(rightwards, (1, 14))
    assert not arrives(leftwards, (1, 0))


def test_wireworld_next_states_by_hand():
    ww = WireWorld()
    hoods = np.array([[0, 0, 0, 0, 1, 0, 0, 0, 0], [0, 0, 0, 0, 2, 0, 0, 0, 0], [1, 0, 0, 0, 3, 0, 0, 0, 0],
                      [1, 1, 0, 0, 3, 0, 0, 0, 0], [1, 1, 1, 0, 3, 0, 0, 0, 0], [0, 0, 0, 0, 3, 0, 0, 0, 2],
                      [1, 1, 1, 1, 0, 1, 1, 1, 1]], np.uint8)
    assert ww.next_state(hoods).tolist() == [2, 3, 1, 1, 3, 3, 0]


def test_codes_round_trip_and_neighbourhoods_follow_the_grid():
    codes = np.array([0, 1, 5, 19682])
    assert np.array_equal(encode(decode(codes, 3), 3), codes)
    grid = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    hoods = neighbourhoods(grid, "wrap")
    assert hoods[0, 0, 0].tolist() == [11, 8, 9, 3, 0, 1, 7, 4, 5]
    assert neighbourhoods(grid, "zero")[0, 0, 0].tolist() == [0, 0, 0, 0, 0, 1, 0, 4, 5]


def test_tables_find_the_symmetry_a_rule_has():
    assert tabulate(parse_rule("wireworld")).symmetry == "permute"
    assert tabulate(parse_rule("B2-a/S12")).symmetry == "rotate4reflect"
    life = tabulate(parse_rule("life"))
    assert life.symmetry == "permute" and len(life.codes) == 512
    skewed = life.next.copy()
    skewed[life.codes == 0b000000011] = 1  # one asymmetric birth
    assert exact_symmetry(2, life.codes, skewed) == "none"
    assert majority(2, life.codes, skewed, "permute")[0] == 1
    table = Table(2, life.codes, skewed, "none")
    assert table.next_state(decode(np.array([0b000000011, 0b110000000]), 2)).tolist() == [1, 0]
    assert rule_name(parse_rule("B36/S23")) == "highlife" and rule_name(LifeLike(frozenset(), frozenset())) is None
    assert len(all_codes(4)) == 4 ** 9

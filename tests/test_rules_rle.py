"""RLE patterns in and out: LifeWiki's and Golly's examples, round trips, and bad files."""

import numpy as np
import pytest

from nca_cli.errors import NCAError
from nca_cli.rules.rle import format_rle, load_rle, read_rle, save_rle

GLIDER = """#N Glider
#C The smallest, most common, and first discovered spaceship.
x = 3, y = 3, rule = B3/S23
bo$2bo$3o!
"""


def test_reads_the_lifewiki_glider():
    pattern = read_rle(GLIDER)
    assert pattern.cells.tolist() == [[0, 1, 0], [0, 0, 1], [1, 1, 1]]
    assert pattern.rule.notation == "B3/S23" and pattern.grid is None and pattern.padding is None


def test_reads_multistate_cells_topology_and_position():
    text = "#CXRLE Pos=-4,-3\nx = 5, y = 2, rule = WireWorld:T8,6\n.A2B$C3.pA!\n"
    pattern = read_rle(text)
    assert pattern.cells.tolist() == [[0, 1, 2, 2, 0], [3, 0, 0, 0, 25]]
    assert pattern.rule.notation == "wireworld"
    assert (pattern.grid, pattern.padding, pattern.position) == ((6, 8), "wrap", (-4, -3))
    assert read_rle("x = 2, y = 1, rule = B3/S23:P10,20\n2o!").padding == "zero"


def test_runs_of_rows_and_lines_split_anywhere():
    pattern = read_rle("x = 4, y = 5\n2o\n$\n3$\n3bo!")
    expected = np.zeros((5, 4), np.uint8)
    expected[0, :2] = 1
    expected[4, 3] = 1
    assert np.array_equal(pattern.cells, expected) and pattern.rule is None


@pytest.mark.parametrize("states", [2, 3, 8])
def test_round_trips_random_patterns(states, tmp_path):
    rng = np.random.default_rng(states)
    cells = rng.integers(0, states, (23, 91)).astype(np.uint8)
    cells[:3] = 0  # empty rows at the top and a gap in the middle
    cells[10:12] = 0
    cells[-1] = 0
    text = format_rle(cells, "B2/S/C3" if states == 3 else None, states=states)
    assert all(len(line) <= 70 for line in text.splitlines())
    back = read_rle(text).cells
    assert np.array_equal(back[:, :91], cells[:len(back)]) and not cells[len(back):].any()
    save_rle(tmp_path / "p.rle", cells, "B3/S23" if states == 2 else None, "wrap", states=states)
    loaded = load_rle(tmp_path / "p.rle")
    assert np.array_equal(loaded.cells[:, :91], cells[:len(loaded.cells)])


def test_writes_the_glider_as_golly_does():
    cells = read_rle(GLIDER).cells
    assert format_rle(cells, "B3/S23") == "x = 3, y = 3, rule = B3/S23\nbo$2bo$3o!\n"
    assert format_rle(cells, "B3/S23", "wrap", position=True).splitlines()[:2] == [
        "#CXRLE Pos=-1,-1", "x = 3, y = 3, rule = B3/S23:T3,3"]


def test_a_header_rule_not_known_here_is_kept_by_name():
    # e.g. the name of a Golly rule file that `nca rule export` wrote: Golly and nca read one pattern
    pattern = read_rle("x = 3, y = 3, rule = Learned:T16,12\nbo$2bo$3o!", "p.rle")
    assert pattern.rule is None and pattern.rule_name == "Learned"
    assert pattern.grid == (12, 16) and pattern.padding == "wrap" and int(pattern.cells.sum()) == 5
    known = read_rle(GLIDER)
    assert known.rule is not None and known.rule.notation == "B3/S23" and known.rule_name == "B3/S23"


@pytest.mark.parametrize("text, message", [
    ("x = 3, y = 3, rule = B3/S23\nb2o$0o!", "p.rle: malformed run-length data at '0o!'"),
    ("x = 3, y = 3, rule = B3/S23\nb2o$3q!", "p.rle: malformed run-length data at '3q!'"),
    ("x = 3, y = 3, rule = B3/S23\n3o$2!", "p.rle: malformed run-length data at '2!'"),
    ("x = 3, y = 3, rule = B3/S23:K3,3\n3o!", "p.rle: unsupported grid 'K3,3' (a torus :Tw,h or a plane :Pw,h)"),
    ("3o$3o!", "p.rle is not an RLE pattern: no header line 'x = <width>, y = <height>, rule = <rule>'"),
])
def test_bad_patterns_give_one_clear_error(text, message):
    with pytest.raises(NCAError) as info:
        read_rle(text, "p.rle")
    assert str(info.value) == message

"""Golly as the independent reference: its own algorithms against our simulators (which checks the
Hensel letters and Generations), and our rule files loaded by bgolly against our simulators."""

from pathlib import Path

import numpy as np
import pytest

from nca_cli.errors import NCAError
from nca_cli.rules import hensel
from nca_cli.rules.golly import check_rule_name, rule_file
from nca_cli.rules.notation import LifeLike, Table, parse_rule
from nca_cli.rules.simulate import random_soups, run
from nca_cli.rules.tables import exact_symmetry, tabulate

from .golly_run import needs_bgolly, run_bgolly

GOLLY_RULES = Path("/usr/share/golly/Rules")


def generations_text(rule: LifeLike) -> str:
    """Golly's Generations notation, survival first: S/B/C."""
    return (f"{hensel.format_conditions(rule.survive)}/{hensel.format_conditions(rule.birth)}/{rule.states}")


@needs_bgolly
def test_random_hensel_rules_match_golly(tmp_path):
    """Every letter of Hensel's notation, as Golly reads it, against our simulator."""
    rng = np.random.default_rng(7)
    covered = set()
    for _ in range(12):
        birth = frozenset(c for c in hensel.CLASSES if c != "0" and rng.random() < 0.35)
        survive = frozenset(c for c in hensel.CLASSES if rng.random() < 0.4)
        rule = LifeLike(birth, survive)
        covered |= birth | survive
        soup = random_soups(2, 1, (24, 24), rng)
        ours = run(rule, soup, 6, "wrap")[0]
        assert np.array_equal(run_bgolly(soup[0], generations_text(rule), 6, tmp_path, 2, "Generations"), ours), \
            rule.notation
    assert len(covered) >= 48  # nearly every class takes part


@needs_bgolly
@pytest.mark.parametrize("text", ["B3/S23", "B36/S23", "B3678/S34678", "/2/3", "345/2/4"])
def test_totalistic_and_generations_rules_match_golly(tmp_path, text):
    rule = parse_rule(text)
    soup = random_soups(rule.states, 1, (32, 32), np.random.default_rng(1))
    ours = run(rule, soup, 30, "wrap")[0]
    assert np.array_equal(run_bgolly(soup[0], generations_text(rule), 30, tmp_path, rule.states, "Generations"), ours)


@needs_bgolly
@pytest.mark.skipif(not (GOLLY_RULES / "WireWorld.rule").exists(), reason="Golly's supplied WireWorld.rule not found")
def test_wireworld_matches_golly_supplied_rule(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "WireWorld.rule").write_text((GOLLY_RULES / "WireWorld.rule").read_text())
    soup = random_soups(4, 1, (32, 32), np.random.default_rng(2))
    ours = run(parse_rule("wireworld"), soup, 30, "wrap")[0]
    assert np.array_equal(run_bgolly(soup[0], "WireWorld", 30, tmp_path, 4, "RuleLoader", folder), ours)


@needs_bgolly
@pytest.mark.parametrize("text", ["B36/S23", "B2-a/S12", "/2/3", "B2ce3-k/S1e2/C4", "wireworld"])
def test_our_rule_files_run_in_bgolly_as_our_simulator(tmp_path, text):
    rule = parse_rule(text)
    (tmp_path / "Mine.rule").write_text(rule_file(rule, "Mine"))
    soup = random_soups(rule.states, 1, (32, 32), np.random.default_rng(3))
    ours = run(rule, soup, 25, "wrap")[0]
    assert np.array_equal(run_bgolly(soup[0], "Mine", 25, tmp_path, rule.states, "RuleLoader", tmp_path), ours)


@needs_bgolly
def test_a_listed_table_without_symmetry_runs_in_bgolly(tmp_path):
    table = tabulate(parse_rule("B3/S23"))
    skewed = table.next.copy()
    skewed[[3, 6, 40, 129]] ^= 1  # a few transitions that break every symmetry
    rule = Table(2, table.codes, skewed, exact_symmetry(2, table.codes, skewed))
    assert rule.symmetry == "none"
    (tmp_path / "Skewed.rule").write_text(rule_file(rule, "Skewed"))
    soup = random_soups(2, 1, (24, 24), np.random.default_rng(4))
    ours = run(rule, soup, 12, "wrap")[0]
    assert np.array_equal(run_bgolly(soup[0], "Skewed", 12, tmp_path, 2, "RuleLoader", tmp_path), ours)


def test_rule_files_say_what_golly_needs():
    text = rule_file(parse_rule("B3/S23"), "Life-learned", "Learned from soups.")
    lines = text.splitlines()
    assert lines[0] == "@RULE Life-learned" and "Learned from soups." in lines
    assert lines[lines.index("@TABLE") + 1:lines.index("@TABLE") + 4] == [
        "n_states:2", "neighborhood:Moore", "symmetries:permute"]
    assert "0,1,1,1,dead3,dead4,dead5,dead6,dead7,1" in lines  # born on three
    with pytest.raises(NCAError, match="invalid Golly rule name 'my rule'"):
        check_rule_name("my rule")

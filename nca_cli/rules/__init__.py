"""Classic cellular automata: hand-written rules, learning them with an NCA, and reading them back.

neighbourhoods  Moore neighbourhoods of integer grids, their codes and symmetries
hensel          Hensel's classes of live neighbours (isotropic non-totalistic notation)
notation        rules as written: B/S, Generations B/S/C, Hensel, named rules, tables
simulate        the hand-written rules run on a torus or a bounded grid; random soups
tables          a rule's transitions listed per configuration, and the symmetries they have
rle             patterns in Golly's and LifeWiki's .rle format
golly           Golly rule files (@RULE/@TABLE)
observed        runs of states and the distinct transitions seen in them
learned         the learned rule: the engine's NCA on one-hot states
learn           training it: transitions, then rollouts, with fresh attempts
readback        the learned rule's transitions, its notation and the nearest rule of each family
report          agreement, differences and unconstrained transitions as lines of text
running         running a learned or hand-written rule, comparing two, pictures of states
saved           learned rules in model files (kind "rule")
"""

from .notation import NAMES, LifeLike, Rule, Table, WireWorld, parse_rule, rule_name

__all__ = ["NAMES", "LifeLike", "Rule", "Table", "WireWorld", "parse_rule", "rule_name"]

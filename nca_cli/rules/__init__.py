"""Classic cellular automata: hand-written rules, learning them with an NCA, and reading them back.

neighbourhoods  Moore neighbourhoods of integer grids, their codes and symmetries
hensel          Hensel's classes of live neighbours (isotropic non-totalistic notation)
notation        rules as written: B/S, Generations B/S/C, Hensel, named rules, tables
simulate        the hand-written rules run on a torus or a bounded grid; random soups
tables          a rule's transitions listed per configuration, and the symmetries they have
rle             patterns in Golly's and LifeWiki's .rle format
golly           Golly rule files (@RULE/@TABLE)
"""

from .notation import NAMES, LifeLike, Rule, Table, WireWorld, parse_rule, rule_name

__all__ = ["NAMES", "LifeLike", "Rule", "Table", "WireWorld", "parse_rule", "rule_name"]

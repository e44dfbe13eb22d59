"""nca: grow, train, damage, rotate, export and benchmark Neural Cellular Automata."""

__version__ = "0.1.0"

"""Targets: what a model learns to grow. A picture file or an emoji, fitted and padded onto a grid;
several of them on one grid for a conditional model (a goal set)."""

from .goals import GoalSet, load_goals
from .images import load_target, render_emoji
from .target import Target

__all__ = ["GoalSet", "Target", "load_goals", "load_target", "render_emoji"]

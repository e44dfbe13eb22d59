"""Targets: what a model learns to grow. A picture file or an emoji, fitted and padded onto a grid."""

from .images import load_target, render_emoji
from .target import Target

__all__ = ["Target", "load_target", "render_emoji"]

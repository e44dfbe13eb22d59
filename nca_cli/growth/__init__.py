"""Growing, wounding and turning patterns with a model, and measuring how well it does.

run        RenderOptions and render_run: a rollout whose frames stream to a video, GIF, PNG or .npy
damage     wound shapes as cell masks
recovery   the wound experiment (heal after each wound) and the batched robustness sweep
rotation   targets turned to score growth with turned perception
quality    grown and regrown losses, the figures that training reports
"""

from .damage import Wound, apply_damage, circle_mask
from .quality import Quality, grow_from_seed, measure_quality
from .recovery import Recovery, SweepResult, WoundReport, sweep, wound_experiment
from .rotation import rotate_image, turned_losses
from .run import RenderOptions, canvas_shape, render_run

__all__ = ["Wound", "apply_damage", "circle_mask", "Quality", "grow_from_seed", "measure_quality", "Recovery",
           "SweepResult", "WoundReport", "sweep", "wound_experiment", "rotate_image", "turned_losses",
           "RenderOptions", "canvas_shape", "render_run"]

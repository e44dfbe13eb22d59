"""Training by backpropagation through time.

config   TrainConfig, the recipe, and the three modes (grow, persist, regen)
trainer  Trainer: the training step and the loop (time budget, schedule, rollbacks)
resume   the resume state: save and load everything needed to continue a run
finish   ending a run: measure, write the model and its summary, plots
optimise what every training loop shares: gradient normalisation, the budget's rate drop
"""

from .config import GOALS_RECIPE, MODES, TrainConfig
from .finish import FinishedRun, finish_training, save_interrupted
from .resume import load_state, resume_path, save_state
from .trainer import Trainer

__all__ = ["GOALS_RECIPE", "MODES", "TrainConfig", "FinishedRun", "finish_training", "save_interrupted", "load_state",
           "resume_path", "save_state", "Trainer"]

"""Use nca as a library: train a short regenerating rule, grow the bundled lizard, wound it and
read the recovery report, and export it as ONNX. None of it goes through the command line.

Run: python examples/library_api.py  (about a minute on 2 CPU cores; writes library_* files here)
"""

from pathlib import Path

from nca_cli.engine import NCAConfig, seed_state
from nca_cli.export import export_model
from nca_cli.formats.model_file import load_model
from nca_cli.growth import RenderOptions, Wound, render_run, wound_experiment
from nca_cli.targets import load_target
from nca_cli.training import Trainer, TrainConfig, finish_training

# Train a regenerating rule (a short run: nca train's default is 3000 iterations)
target = load_target("🦎", size=40, pad=16)
trainer = Trainer(NCAConfig(), TrainConfig(mode="regen", iterations=150, lr_decay_at=120), target)
stopped = trainer.run(time_budget=60)
finished = finish_training(trainer, "library_lizard.safetensors", None, stopped, plots=False)
print(f"{trainer.iteration} iterations: grown {finished.quality.grow_loss:.4f}, "
      f"regrown {finished.quality.regrow_loss:.4f}")

# Grow the bundled, fully trained lizard from its seed into a GIF
loaded = load_model("lizard")
seed = seed_state(loaded.model.config, *loaded.target.shape)
render_run(loaded.model, seed, RenderOptions(Path("library_grow.gif"), steps=200, every=2))

# Wound it after 150 steps and read the recovery report
report = wound_experiment(loaded.model, seed, Wound(shape="circle", radius=8), [150],
                          RenderOptions(Path("library_heal.mp4"), steps=300), target=loaded.target.rgba)
for r in report.recoveries:
    print(f"wound at {r.step}: loss {r.before:.4f} -> {r.after:.4f} -> {r.final:.4f}, healed at {r.recovered_at}")

# Export one step as ONNX
export_model(loaded, "onnx", Path("library_lizard.onnx"))

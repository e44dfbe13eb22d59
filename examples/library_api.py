"""Use nca as a library: load the bundled lizard, grow it, wound it, and save a few frames.

Run: python examples/library_api.py  (writes library_*.png into the current folder)
"""

import torch
from PIL import Image

from nca_cli.checkpoint import load_model
from nca_cli.damage import apply_damage, circle_mask
from nca_cli.engine import render_rgb, rgba_loss, seed_state

loaded = load_model("lizard")  # a bundled model by name, or a path to a .safetensors file
model, target = loaded.model, loaded.target
H, W = target.shape
generator = torch.Generator().manual_seed(0)

with torch.no_grad():
    x = seed_state(model.config, H, W)  # (1, H, W, C): one living cell in the centre
    x = model.rollout(x, 200, generator=generator)
    print(f"grown:   loss {rgba_loss(x, target.rgba).item():.5f}")
    Image.fromarray(render_rgb(x[0]).numpy()).resize((288, 288), Image.NEAREST).save("library_grown.png")

    cut = circle_mask(H, W, torch.tensor([36.0]), torch.tensor([40.0]), torch.tensor([10.0]))
    x = apply_damage(x, cut)
    print(f"wounded: loss {rgba_loss(x, target.rgba).item():.5f}")
    x = model.rollout(x, 200, generator=generator)
    print(f"healed:  loss {rgba_loss(x, target.rgba).item():.5f}")
    Image.fromarray(render_rgb(x[0]).numpy()).resize((288, 288), Image.NEAREST).save("library_healed.png")

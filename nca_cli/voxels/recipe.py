"""Training defaults for voxel bodies, chosen by measurement (docs/3d.md): a 3D step senses 27
neighbours rather than 9 and a body has a few thousand living cells, so the 2D recipe's rollouts
and pool would not fit the time budget."""

# The overgrowth penalty keeps a body's outline free of faint cells; it is taken on the batch's
# samples that hold their body, so one of the four is left unwounded (docs/3d.md).
VOXEL_RECIPE = {"iterations": 1000, "lr_decay_at": 800, "time_budget": "20m", "batch": 4, "pool_size": 128,
                "steps_min": 32, "steps_max": 44, "overgrowth": 12.0, "damage_count": 2}
# 12 channels and 96 hidden units cost a quarter less per iteration than the pictures' 16 and 128:
# in the same training time the body was as good and healed better (docs/3d.md).
VOXEL_MODEL = {"channels": 12, "hidden": 96}
VOXEL_SWEEP_RADII = "2:8:2"  # voxels: balls up to a third of a 26-voxel body

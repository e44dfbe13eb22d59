"""Training defaults for voxel bodies, chosen by measurement (docs/3d.md): a 3D step senses 27
neighbours rather than 9 and a body has a few thousand living cells, so the 2D recipe's rollouts
and pool would not fit the time budget."""

VOXEL_RECIPE = {"iterations": 1000, "lr_decay_at": 800, "time_budget": "20m", "batch": 4, "pool_size": 128,
                "steps_min": 40, "steps_max": 56}
VOXEL_MODEL = {"channels": 16, "hidden": 128}
VOXEL_SWEEP_RADII = "2:8:2"  # voxels: balls up to a third of a 26-voxel body

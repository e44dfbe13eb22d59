"""Voxel bodies: 3D targets, pictures and files of what a 3D model grows (D up).

vox       MagicaVoxel .vox files, read and written from the format's description
meshes    .obj, .stl, .ply, .glb meshes voxelised with trimesh, colours included
targets   a .vox, mesh or .npy body fitted onto a padded grid: the Target a 3D model grows
render    shaded voxels seen by an orbiting camera (turntable frames, still views)
outputs   a grown body as a coloured mesh of its faces (.ply, .obj) or a .vox model
metrics   occupancy IoU and colour error against the target's voxels
recipe    the training defaults for voxel bodies
"""

from .metrics import body_scores, colour_mse, occupancy_iou
from .outputs import BODY_SUFFIXES, write_body
from .targets import VOXEL_SUFFIXES, is_voxel_spec, load_voxel_target
from .vox import read_vox, write_vox

__all__ = ["body_scores", "colour_mse", "occupancy_iou", "BODY_SUFFIXES", "write_body", "VOXEL_SUFFIXES",
           "is_voxel_spec", "load_voxel_target", "read_vox", "write_vox"]

#!/usr/bin/env bash
# The main job: train a regenerating lizard (about 10 minutes on 2 CPU cores), then watch it grow.
set -euo pipefail
nca train 🦎 --regen -o lizard.safetensors
nca grow lizard.safetensors --steps 400 -o lizard.mp4

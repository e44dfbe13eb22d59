#!/usr/bin/env bash
# Train on your own picture: any PNG/JPEG/WebP works; transparent pixels are empty space.
# A quick persistent (non-regenerating) run of 5 minutes, then a GIF and a strip of snapshots.
set -euo pipefail
here=$(dirname "$0")
nca train "$here/heart.png" --mode persist --time-budget 5m -o heart.safetensors
nca grow heart.safetensors --steps 200 -o heart.gif
nca grow heart.safetensors --steps 200 --every 25 --strip --scale 2 -o heart-strip.png

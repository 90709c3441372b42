#!/usr/bin/env bash
# Set up everything layerlab needs on a fresh Debian machine; cheap to run again.
#  - Debian packages: the real Fashion-MNIST files and Chromium for the browser tests.
#  - .venv with layerlab and its dependencies. torch is pinned to 2.13.0, the CPU build
#    that lies on this project's machines (any other request pulls a multi-GB CUDA build).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(dataset-fashion-mnist chromium)
missing=()
for pkg in "${debs[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
stamp=.venv/.layerlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "setup: installing layerlab into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev,ray,onnx]" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import layerlab, torch; assert torch.__version__.startswith('2.13.0'), torch.__version__"
  touch "$stamp"
fi

#!/usr/bin/env bash
# Install sceneforge with everything its default path needs, on Debian/Ubuntu:
#   system libraries for headless OpenGL (EGL + Mesa) and Open3D, torch 2.13.0 (CPU build) first,
#   then the package in editable mode with its test dependencies; where npm is available, the
#   Khronos glTF validator into .tools/gltf-validator (the GLB export tests run it).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libegl1 libgl1-mesa-dri libusb-1.0-0 libgomp1)
missing=()
for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
    elif command -v sudo >/dev/null 2>&1; then
        sudo apt-get update -qq && sudo apt-get install -y -qq "${missing[@]}" >/dev/null
    else
        echo "setup: please install these system packages first: ${missing[*]}" >&2
        exit 1
    fi
fi

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build.
python -m pip install -q torch==2.13.0
python -m pip install -q -e ".[test]"

validator=.tools/gltf-validator
if [ -d "$validator/node_modules/gltf-validator" ]; then
    :
elif command -v npm >/dev/null 2>&1; then
    npm install --silent --no-audit --no-fund --prefix "$validator" gltf-validator@2.0.0-dev.3.10
else
    echo "setup: npm not found: the Khronos glTF-validator tests will be skipped" >&2
fi
echo "setup: sceneforge $(python -c 'import sceneforge; print(sceneforge.__version__)') installed"

#!/usr/bin/env bash
# Everything the GPU check carries that the device machine lacks, prepared here (online):
#   bash scripts/gpu_wheels.sh [DIR]      # default .whl (ignored by git)
# 1. The wheels splatfilm needs beyond that machine's image (Python 3.12, x86-64 manylinux, with
#    torch, numpy, numba, imageio, pillow, scipy, pyyaml, tqdm, jaxtyping, rich and ninja already
#    there): gsplat (its CUDA sources; the check builds them there) and splines. Pinned, no
#    dependencies pulled; the folder must stay under 60 MB (the device call carries at most
#    64 MiB with the checkout).
# 2. The demo film's physics, baked with pybullet (not on that machine) into
#    scenes/set/.splatfilm-cache, which the call carries too.
# Then, on the device:  bash scripts/gpu_check.sh --wheels .whl --out "$OUT"
# with carry: .whl and scenes/set/.splatfilm-cache.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.whl}"
python="${SPLATFILM_PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}"
WHEELS=(gsplat==1.5.3 splines==0.3.3)
mkdir -p "$dir"
rm -f "$dir"/*.whl
platforms=()
for p in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$p")
done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$dir" "${WHEELS[@]}"
bytes=$(du -cb "$dir"/*.whl | tail -1 | cut -f1)
echo "wheels in $dir: $(ls "$dir" | tr '\n' ' ')($((bytes / 1000000)) MB)"
if [ "$bytes" -ge 60000000 ]; then
    echo "error: $dir: the wheels take $((bytes / 1000000)) MB; the check carries at most 60" >&2
    exit 2
fi
"$python" scripts/gpu_check.py --bake

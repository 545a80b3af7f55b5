#!/usr/bin/env bash
# The CUDA checks, on a machine with an NVIDIA GPU and no .NET: expects .gpu/ as prepared by
#   ../shared/gpu/pack-runtime.sh .gpu && dotnet publish src/PagedKv.Cli -c Release -o .gpu/app
# and writes logs to ${OUT:-.gpu/out}.
set -uo pipefail
out=${OUT:-.gpu/out}; mkdir -p "$out"
mkdir -p .gpu/dn && tar -C .gpu/dn -xJf .gpu/dotnet-runtime.tar.xz || exit 1
export DOTNET_ROOT=$PWD/.gpu/dn PATH=$PWD/.gpu/dn:$PATH COLUMNS=140
app=".gpu/app/PagedKv.Cli.dll"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
status=0
timeout 240 dotnet $app verify --ops 150000 --seq-ops 100000 --accelerator cuda --gather-cases 500 --seed 1 2>&1 | tee "$out/verify-cuda.log" || status=1
for dtype in f32 f16; do
  timeout 90 dotnet $app bench-gather --accelerator cuda --pool-mib 1024 --dtype $dtype --iterations 20 2>&1 | tee "$out/bench-$dtype.log" || status=1
done
exit $status

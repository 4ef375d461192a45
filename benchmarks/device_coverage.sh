#!/usr/bin/env bash
# One GPU session's coverage work, in resumable pieces that each fit a deadline (DESIGN: 15 minutes of
# device time a session). Run from the repository root on the GPU machine:
#
#   bash benchmarks/device_coverage.sh OUT_DIR [SECONDS]
#
# 1. SLIC coverage injections of the lens in COVERAGE_NOISE at COVERAGE_SIZE (default: HST F814W at
#    16 x 16, 100 injections on 100 distinct held-out tiles; same seed, settings and injections as the
#    committed Gaussian runs in benchmarks/results/coverage/lens16-hst-f814w), one batch of 100; batch
#    files land in OUT_DIR/lens<size>-<noise>/slic/: copy that folder into the committed one and report
#    with --report-only. The HST model is a score U-Net: on 2 CPU cores one batch of 10 did not
#    finish in 20 minutes. (JWST F150W's model has no net and runs on a CPU.)
# 2. benchmarks/coverage.py at 64 x 64 for SLIC: one batch of 128 injections against one injection
#    per batch, 50 warmup + 50 draws each (OUT_DIR/coverage_gpu.json).
# Each stage is stopped at the deadline (SECONDS from the start, default 540); what a stage finished
# before that is on disk. Needs numpy, jax, numpyro, equinox, jaxtyping, scipy and tqdm; not ArviZ
# (the report is made where the folders are merged: numpyro-slic coverage --report-only).
set -uo pipefail
out=${1:?usage: benchmarks/device_coverage.sh OUT_DIR [SECONDS]}
deadline=$((SECONDS + ${2:-540}))
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
left() { echo $((deadline - SECONDS)); }
python3 -c "import jax, numpyro; print('jax', jax.__version__, 'numpyro', numpyro.__version__, jax.devices())"
noise=${COVERAGE_NOISE:-hst-f814w} size=${COVERAGE_SIZE:-16}
timeout "$(left)" python3 -m numpyro_slic.cli coverage --size "$size" --noise "$noise" \
    --likelihoods slic --injections "${COVERAGE_INJECTIONS:-100}" --batch-size "${COVERAGE_BATCH:-100}" \
    ${COVERAGE_FLAGS:-} --no-report --out "$out/lens$size-$noise" 2>&1 | tee "$out/coverage.log"
echo "coverage stage: rc ${PIPESTATUS[0]}, $(left) s left"
[ "$(left)" -gt 30 ] || exit 0
timeout "$(left)" python3 benchmarks/coverage.py --size "${BENCH_SIZE:-64}" --likelihoods slic \
    --batch "${BENCH_BATCH:-128}" --one-at-a-time 1 ${BENCH_FLAGS:-} --out "$out/coverage_gpu.json" 2>&1 | tee "$out/bench.log"
echo "benchmark stage: rc ${PIPESTATUS[0]}, $(left) s left"

#!/usr/bin/env bash
# The resolved NAS ground truth on one GPU, then the proxy report against it: one resumable job.
#
#   scripts/nas_ground_truth_device.sh            # on a machine with a CUDA GPU; rerun to resume
#
# 1. the ground truth: NAS_GT_ARCHS architectures x NAS_GT_EPOCHS full-data epochs x the seeds NAS_GT_SEEDS,
#    the standard protocol (batch 256, SGD lr 0.01, x 0.1 at half the epochs), shared by NAS_WORKERS worker
#    processes on the one GPU through the study storage, checkpointed per architecture, seed and epoch;
# 2. the proxy studies and their controls for the proxy seeds NAS_SEEDS, shared the same way: DM, then DM whose
#    embedding networks are drawn from the search space (model=space:convnet);
# 3. one report per proxy under NAS_RESULTS/<dataset>/<proxy>: nas_report.md (what the ground truth is, its
#    seed-to-seed SD beside the spread of its top 10, every statistic), nas_correlation.csv and nas_scores.csv,
#    whose machine columns name the GPU that timed each trial, and nas_scatter.png; with OUT set, the tables
#    and reports are also copied to $OUT/<dataset>/<proxy>/.
#
# On an H200 the defaults are sized to take about ten minutes (estimated from the sample's FLOPs, not yet timed
# there). It installs nothing: PYTHON (default: .venv/bin/python if present, else python3) must import torch,
# optuna, sqlalchemy, pandas, scipy and matplotlib (where no package index can be reached, install wheels of
# optuna, alembic, mako, colorlog and sqlalchemy first); cl_nas is used from this checkout. The data comes from
# CL_NAS_DATA (FashionMNIST/raw, MNIST/raw; *.gz files there are unpacked first). The workers share a SQLite
# file under NAS_RUN (or NAS_STORAGE=postgresql://... to add workers on other machines, which then also need
# NAS_RUN/checkpoints on a shared file system). Every setting is an environment variable; NAS_DEVICE=cpu with
# tiny values runs the same steps on a CPU (the test suite does).
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE=${NAS_DEVICE:-cuda}
DATASET=${NAS_DATASET:-fashionmnist}
GT_ARCHS=${NAS_GT_ARCHS:-48}
GT_EPOCHS=${NAS_GT_EPOCHS:-8}
GT_SEEDS=${NAS_GT_SEEDS:-0 1 2}
SEEDS=${NAS_SEEDS:-0 1 2}
WORKERS=${NAS_WORKERS:-4}
PROXY_FLAGS=${NAS_PROXY_FLAGS:---proxy dm --ipc 10 --param iterations=1000 --param batch_real=64 --epochs 20}
CONTROLS=${NAS_CONTROLS:-random herding earlystop naswot}
EXTRA=${NAS_EXTRA:-}
RUN=${NAS_RUN:-runs/nas_device/$DATASET}
STORAGE=${NAS_STORAGE:-sqlite:///$RUN/optuna.db}
RESULTS=${NAS_RESULTS:-benchmarks/results/nas_device}/$DATASET
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

"$PYTHON" -c "import torch, optuna, sqlalchemy, pandas, scipy, matplotlib" || {
    echo "nas_ground_truth_device: $PYTHON lacks a package above; install them (make env, or pip wheels)" >&2
    exit 2
}
if [ "$DEVICE" != cpu ]; then
    "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
        echo "nas_ground_truth_device: no CUDA device visible to $PYTHON (NAS_DEVICE=cpu runs it on the CPU)" >&2
        exit 2
    }
fi
if [ -n "${CL_NAS_DATA:-}" ]; then
    find "$CL_NAS_DATA" -name '*.gz' 2> /dev/null | while read -r archive; do
        [ -e "${archive%.gz}" ] || gunzip -k "$archive"
    done
fi
mkdir -p "$RUN" "$RESULTS"

# shellcheck disable=SC2086  # the flag variables are word lists on purpose
COMMON=(--dataset "$DATASET" --trials "$GT_ARCHS" --gt-archs "$GT_ARCHS" --gt-epochs "$GT_EPOCHS" --gt-seeds $GT_SEEDS
        --storage "$STORAGE" --checkpoint-dir "$RUN/checkpoints" --cache "$RUN/cache" --device "$DEVICE" $EXTRA)

# Run benchmarks/nas.py with the given flags in NAS_WORKERS processes (all but the last with --no-report, the
# last in the foreground); logs under $RUN/<name>.worker<i>.log. Fails if any worker fails.
shared() {
    local name=$1 pids=() i
    shift
    for i in $(seq 2 "$WORKERS"); do
        "$PYTHON" benchmarks/nas.py "${COMMON[@]}" "$@" --no-report > "$RUN/$name.worker$i.log" 2>&1 &
        pids+=($!)
    done
    "$PYTHON" benchmarks/nas.py "${COMMON[@]}" "$@" 2>&1 | tee "$RUN/$name.worker1.log"
    for i in "${pids[@]}"; do
        wait "$i" || { echo "nas_ground_truth_device: a $name worker failed; see $RUN/$name.worker*.log" >&2; exit 1; }
    done
}

start=$(date +%s)
# shellcheck disable=SC2086
shared ground-truth $PROXY_FLAGS --ground-truth-only
echo "nas_ground_truth_device: ground truth done after $(( $(date +%s) - start )) s"
# shellcheck disable=SC2086
shared dm $PROXY_FLAGS --seeds $SEEDS --controls $CONTROLS --out "$RESULTS/dm"
# shellcheck disable=SC2086
shared dm-space $PROXY_FLAGS --param model=space:convnet --seeds $SEEDS --controls $CONTROLS --out "$RESULTS/dm-space"
echo "nas_ground_truth_device: done after $(( $(date +%s) - start )) s; reports in $RESULTS"
if [ -n "${OUT:-}" ]; then
    for report in dm dm-space; do
        mkdir -p "$OUT/$DATASET/$report"
        cp "$RESULTS/$report"/nas_*.csv "$RESULTS/$report/nas_report.md" "$OUT/$DATASET/$report/"
    done
fi

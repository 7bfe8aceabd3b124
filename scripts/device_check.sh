#!/usr/bin/env bash
# One GPU check, about 8 minutes on an H200: the device-taking tests on the GPU, DM at the DM paper's real
# batch with its curve under the dm protocol, and APM at its full 2500 iterations under the apm protocol,
# beside random real images and a DM set labelled by the same teacher. Rows carry the GPU in `machine`.
#
#   scripts/device_check.sh                 # on a machine with CUDA: rows go to $OUT (default benchmarks/results)
#   QUICK=1 scripts/device_check.sh cpu     # the same commands at toy budgets on digits (a test runs this)
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICE="${1:-cuda}"
OUT="${OUT:-benchmarks/results}"
DATA="${CL_NAS_DATA:-$(cd .. && pwd)/shared/data}"
PY=".venv/bin/python"
mkdir -p "$OUT"
if [ "${QUICK:-0}" = 1 ]; then  # toy budgets: the code paths, in seconds
  DATASETS="digits"; IPC=2; DM_IT=4; DM_SNAP="2 4"; APM_IT=2; EPOCHS="--eval-epochs 2 --eval-seeds 1"
  NET="convnet:depth=2,width=16"; APM_EXTRA="--param apm.teacher_epochs=1 --param apm.student_epochs=2 --param apm.checkpoints=1"
  TESTS=(tests/test_protocols.py)
else
  [ -x "$PY" ] || make env
  DATASETS="mnist fashionmnist"; IPC=10; DM_IT=20000; DM_SNAP="1000 5000 20000"; APM_IT=2500; EPOCHS=""
  NET="convnet"; APM_EXTRA=""
  TESTS=(tests/test_protocols.py tests/test_train.py tests/test_condense_learned.py tests/test_models.py)
fi

echo "== tests on $DEVICE"
CL_NAS_TEST_DEVICE="$DEVICE" "$PY" -m pytest -q -x "${TESTS[@]}" 2>&1 | tee "$OUT/device_check_pytest.log" | tail -n 3

for dataset in $DATASETS; do
  echo "== DM on $dataset: the paper's real batch (256 per class), curve under the dm protocol"
  "$PY" benchmarks/time_to_quality.py --dataset "$dataset" --method dm --ipc "$IPC" --device "$DEVICE" \
    --param iterations="$DM_IT" --param batch_real=256 --param model="$NET" --snapshots $DM_SNAP \
    --protocol dm $EPOCHS --data-root "$DATA" --work "$OUT/work" --out "$OUT/condense_curve.csv"
done

for dataset in $DATASETS; do
  echo "== APM on $dataset at $APM_IT iterations under the apm protocol, beside random and DM with the same teacher"
  "$PY" benchmarks/condense.py --datasets "$dataset" --methods apm random dm --ipcs "$IPC" --device "$DEVICE" \
    --param apm.iterations="$APM_IT" --param apm.model="$NET" $APM_EXTRA --param dm.iterations="$DM_IT" \
    --param dm.batch_real=256 --param dm.model="$NET" --protocol apm $EPOCHS --models "$NET" --data-root "$DATA" \
    --cache "$OUT/cache" --out "$OUT/condense_quality.csv"
done
echo "== done: rows in $OUT"

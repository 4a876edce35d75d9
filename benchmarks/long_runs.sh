#!/usr/bin/env bash
# The long reproductions behind docs/RESULTS.md and docs/ATTACKS.md, each resumable (run
# the same command again after an interruption). What each step runs and writes:
# benchmarks/README.md.
#
#   benchmarks/long_runs.sh [models|autoattack|front|grid|gridaa|grid10|all|keep|report]
#
# DATA (default ../shared/data/mnist; empty: tensorflow-datasets), RUNS (runs), PYTHON
# (python), SHARDS (2: processes side by side, one TensorFlow thread each) and KEEP
# (benchmarks/measured) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA-../shared/data/mnist}
RUNS=${RUNS:-runs}
PYTHON=${PYTHON:-python}
SHARDS=${SHARDS:-2}
KEEP=${KEEP:-benchmarks/measured}
DATA_FLAG=()
if [ -n "$DATA" ]; then DATA_FLAG=(--data_dir "$DATA"); fi
MODELS_OUT=$RUNS/mnist_10ep_aa
GRID_OUT=$RUNS/robustness_per_cost
GRID10_OUT=$RUNS/robustness_per_cost_10ep
# Result files kept in git: RUNS file, then its name in KEEP.
KEPT=(
    "$GRID_OUT/results.jsonl" robustness_per_cost.jsonl
    "$GRID_OUT/autoattack/results.jsonl" robustness_per_cost_autoattack.jsonl
    "$GRID10_OUT/results.jsonl" robustness_per_cost_10ep.jsonl
)
# The recommended recipes and the paper's first; AutoAttack on the first four.
FRONT_RUNNERS=natural_relu,nfgsm_eps0.1_relu,nfgsm+logit_l1_c0.03_gelu,logit_l1_c0.03_gelu,nfgsm_eps0.1_gelu,logit_l1_c0.03_gelu_pf0.5,nfgsm+logit_l1_c0.03_gelu_pf0.5,fgsm_rs_eps0.1_relu,logit_sql2_c0.1_relu,xent_sql2_c10_relu
AA_RECIPES=natural_relu,nfgsm_eps0.1_relu,nfgsm+logit_l1_c0.03_gelu,logit_l1_c0.03_gelu
TEN_EPOCH_MODELS=fgsm_rs_at,logit_reg,xent_reg,natural

# `sharded COMMAND...`: `COMMAND... i/SHARDS` for every i, side by side, one TensorFlow
# thread each; fails if one of them failed (the grid's recipes; AutoAttack shards itself).
sharded() {
    local i pids=() failed=0
    for ((i = 0; i < SHARDS; i++)); do
        TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 "$@" "$i/$SHARDS" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait "$i" || failed=1; done
    return "$failed"
}

# `autoattack_on FOLDER OUT NAMES [FLAGS]`: AutoAttack on FOLDER/NAME.keras for each of the
# comma-separated NAMES, 1,000 test images in resumable chunks of 100 over SHARDS processes
# (merged into OUT/NAME), then the result lines (FLAGS: autoattack_lines.py's).
autoattack_on() {
    local folder=$1 out=$2 names=$3 name
    shift 3
    for name in ${names//,/ }; do
        "$PYTHON" -m keras_gradreg evaluate "$folder/$name.keras" --dataset mnist "${DATA_FLAG[@]}" \
            --num_examples 1000 --batch_size 100 --attacks autoattack --eps 0.1,0.2,0.3 \
            --worst_case_only --resume "$out/$name/chunks" --processes "$SHARDS" --overwrite \
            --out "$out/$name"
    done
    "$PYTHON" benchmarks/autoattack_lines.py --out "$out" --models "$names" "$@"
}

models() {
    # Done when results.json is newer than every model.
    local name
    for name in ${TEN_EPOCH_MODELS//,/ } ""; do
        if [ -z "$name" ]; then
            echo "models: trained and evaluated ($MODELS_OUT/results.json); skipped"
            return
        fi
        [ "$MODELS_OUT/$name.keras" -ot "$MODELS_OUT/results.json" ] || break
    done
    "$PYTHON" examples/mnist.py "${DATA_FLAG[@]}" --test_size 1000 \
        --baselines fgsm_rs --resume --out "$MODELS_OUT"
}

autoattack() {
    autoattack_on "$MODELS_OUT" "$MODELS_OUT/autoattack" "$TEN_EPOCH_MODELS" \
        --compare "$MODELS_OUT"
}

# `merge SOURCE TARGET`: appends to TARGET the lines of SOURCE it lacks.
merge() {
    [ -s "$1" ] || return 0
    mkdir -p "$(dirname "$2")"
    touch "$2"
    grep -vxFf "$2" "$1" >> "$2" || true
}

# `kept keep|restore`: the grids' result lines from RUNS into KEEP, or back.
kept() {
    local i
    for ((i = 0; i < ${#KEPT[@]}; i += 2)); do
        if [ "$1" = keep ]; then merge "${KEPT[i]}" "$KEEP/${KEPT[i + 1]}"
        else merge "$KEEP/${KEPT[i + 1]}" "${KEPT[i]}"; fi
    done
}

# `grid_settings EPOCHS OUT [FLAGS]`: the grids' shared settings (cost: CPU time, the
# steadier one on a shared machine).
grid_settings() {
    local epochs=$1 out=$2
    shift 2
    "$PYTHON" benchmarks/robustness_per_cost.py "${DATA_FLAG[@]}" \
        --epochs "$epochs" --test_size 1000 --save_models --cost cpu \
        --out "$out" "$@"
}

# `grid_of EPOCHS OUT RECIPES`: the recipes in shards, then the report.
grid_of() {
    sharded grid_settings "$1" "$2" --recipes "$3" --shard
    grid_settings "$1" "$2" --report
}

front() { grid_of 3 "$GRID_OUT" "$FRONT_RUNNERS"; }

grid() {
    front
    grid_of 3 "$GRID_OUT" "$FRONT_RUNNERS,all"
}

gridaa() {
    grid_of 3 "$GRID_OUT" "$AA_RECIPES"
    autoattack_on "$GRID_OUT" "$GRID_OUT/autoattack" "$AA_RECIPES"
}

grid10() { grid_of 10 "$GRID10_OUT" "$AA_RECIPES"; }

report() {
    if [ -s "$GRID_OUT/results.jsonl" ]; then grid_settings 3 "$GRID_OUT" --report; fi
    if [ -s "$GRID10_OUT/results.jsonl" ]; then grid_settings 10 "$GRID10_OUT" --report; fi
}

case "${1:-all}" in
    models|autoattack) "$1" ;;
    front|grid|gridaa|grid10|report) kept restore && "$1" ;;
    keep) kept keep && echo "kept: the grids' result lines are in $KEEP (commit them)" ;;
    all) kept restore && models && autoattack && front && gridaa && grid10 && grid ;;
    *) echo "usage: $0 [models|autoattack|front|grid|gridaa|grid10|all|keep|report]" >&2
       exit 2 ;;
esac

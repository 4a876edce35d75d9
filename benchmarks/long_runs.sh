#!/usr/bin/env bash
# The long reproductions behind docs/RESULTS.md and docs/ATTACKS.md: hours of
# CPU on 2 cores, so each step is resumable. Run the same command again after
# an interruption and it goes on: finished models, AutoAttack chunks and
# grid recipes are kept, and the model in training goes on from its last
# finished epoch.
#
#   benchmarks/long_runs.sh [models|autoattack|front|grid|gridaa|grid10|all|status|keep|report]
#                                                        (default: all)
#
# models:     the 10-epoch MNIST models of the paper's example (Natural,
#             Xent-reg, Logit-reg, FGSM-RS at eps 0.3), evaluated with the
#             paper's attacks on 1,000 test images          -> runs/mnist_10ep_aa
# autoattack: the standard AutoAttack ensemble on those models, 1,000 test
#             images, eps 0.1 / 0.2 / 0.3, in chunks of 100, beside the
#             paper's attacks' worst case on the same images -> .../autoattack
# front:      the robustness-per-cost grid's front-runners (the recommended
#             recipes, the paper's penalty, the cheaper penalty, FGSM-RS) on
#             the full training set (3 epochs, 1,000 test images), models
#             saved for AutoAttack; first the two rows first timed with
#             TensorFlow's default threads timed again (--retime) as the workers time theirs
#                                                   -> runs/robustness_per_cost
# grid:       `front`, then the rest of the grid (all 21 recipes)
# gridaa:     the grid's recipes the README recommends, natural training and
#             the paper's penalty alone (trained first where missing, as in
#             `grid`), then the standard AutoAttack ensemble on their saved
#             models (1,000 test images, chunks of 100)
#                                                 -> .../robustness_per_cost/autoattack
# grid10:     the same four recipes trained for 10 epochs (full training set,
#             1,000 test images)                  -> runs/robustness_per_cost_10ep
# all:        models, autoattack, front, gridaa, grid10, grid, in that order
#             (what the README's recommendation rests on first: the
#             front-runners, AutoAttack on the recommended ones and their 10
#             epochs; then the rest of the grid)
# status:     where each step stands (models trained, AutoAttack units and
#             grid recipes done); reads the files only, runs nothing
# report:     the grids' tables and charts (robustness_per_cost.md, .png in
#             each grid's folder) from the result lines RUNS and KEEP hold,
#             training and attacking nothing: seconds, from a fresh clone
# keep:       copies the grids' finished result lines (and AutoAttack's on
#             them) into KEEP, to be committed: the machine that runs these
#             may not keep runs/ from one run to the next. Every grid
#             step first takes back into RUNS the lines KEEP holds and RUNS
#             lacks, so a fresh machine goes on where the kept lines end.
#             Models are not kept: a recipe whose model is gone is not
#             trained again, and AutoAttack on it needs the same network
#             (training is seeded; AutoAttack refuses other clean predictions)
#
# DATA (default ../shared/data/mnist, the four MNIST IDX .gz files; empty
# for tensorflow-datasets), RUNS (default runs), PYTHON (default python) and
# WORKERS (default 2: processes side by side for AutoAttack and the grids)
# override the folders, the interpreter and the processes; KEEP (default
# benchmarks/measured) is the folder of the kept result lines.
set -euo pipefail
cd "$(dirname "$0")/.."

DATA=${DATA-../shared/data/mnist}
RUNS=${RUNS:-runs}
PYTHON=${PYTHON:-python}
# Processes side by side, one TensorFlow thread each (2 on 2 cores: 1.33x one
# process's throughput, docs/ATTACKS.md); AA_WORKERS is its older name.
WORKERS=${WORKERS:-${AA_WORKERS:-2}}
# AutoAttack's images (the first of the test set), chunk and radii.
AA_IMAGES=1000
AA_CHUNK=100
AA_EPS=0.1,0.2,0.3
DATA_FLAG=()
if [ -n "$DATA" ]; then DATA_FLAG=(--data_dir "$DATA"); fi
MODELS_OUT=$RUNS/mnist_10ep_aa
GRID_OUT=$RUNS/robustness_per_cost
GRID10_OUT=$RUNS/robustness_per_cost_10ep
KEEP=${KEEP:-benchmarks/measured}
# Result files kept in git: RUNS file, then its name in KEEP.
KEPT=(
    "$GRID_OUT/results.jsonl" robustness_per_cost.jsonl
    "$GRID_OUT/autoattack/results.jsonl" robustness_per_cost_autoattack.jsonl
    "$GRID10_OUT/results.jsonl" robustness_per_cost_10ep.jsonl
)
# The recommended recipes and the paper's first, then the rest of the grid.
# AutoAttack (hours per model) goes to the first four only.
FRONT_RUNNERS=natural_relu,nfgsm_eps0.1_relu,nfgsm+logit_l1_c0.03_gelu,logit_l1_c0.03_gelu,nfgsm_eps0.1_gelu,logit_l1_c0.03_gelu_pf0.5,nfgsm+logit_l1_c0.03_gelu_pf0.5,fgsm_rs_eps0.1_relu,logit_sql2_c0.1_relu,xent_sql2_c10_relu
AA_RECIPES=natural_relu,nfgsm_eps0.1_relu,nfgsm+logit_l1_c0.03_gelu,logit_l1_c0.03_gelu
# The grid's rows timed with TensorFlow's default threads.
RETIME=natural_relu,nfgsm_eps0.1_relu
# The models of examples/mnist.py --baselines fgsm_rs, in AutoAttack's order
# (the one most likely to mask first).
TEN_EPOCH_MODELS=fgsm_rs_at,logit_reg,xent_reg,natural

models() {
    # Done when results.json is newer than every model (the evaluation alone
    # takes most of an hour; --resume would redo it).
    local name evaluated=0
    if [ -f "$MODELS_OUT/results.json" ]; then
        evaluated=1
        for name in ${TEN_EPOCH_MODELS//,/ }; do
            if [ ! "$MODELS_OUT/$name.keras" -ot "$MODELS_OUT/results.json" ]; then
                evaluated=0
            fi
        done
    fi
    if [ "$evaluated" = 1 ]; then
        echo "models: trained and evaluated ($MODELS_OUT/results.json); skipped"
        return
    fi
    "$PYTHON" examples/mnist.py "${DATA_FLAG[@]}" --test_size 1000 \
        --baselines fgsm_rs --resume --out "$MODELS_OUT"
}

autoattack() {
    local list=""
    for name in ${TEN_EPOCH_MODELS//,/ }; do
        list="$list${list:+,}$MODELS_OUT/$name.keras"
    done
    "$PYTHON" benchmarks/autoattack_eval.py "${DATA_FLAG[@]}" --models "$list" \
        --num_examples "$AA_IMAGES" --chunk "$AA_CHUNK" --eps "$AA_EPS" \
        --compare "$MODELS_OUT" --workers "$WORKERS" --out "$MODELS_OUT/autoattack"
}

# `merge SOURCE TARGET`: appends to TARGET the lines of SOURCE it lacks (the
# same text); result lines are appended whole, so a line is the unit.
merge() {
    [ -s "$1" ] || return 0
    mkdir -p "$(dirname "$2")"
    touch "$2"
    grep -vxFf "$2" "$1" >> "$2" || true
}

keep() {
    local i
    for ((i = 0; i < ${#KEPT[@]}; i += 2)); do
        merge "${KEPT[i]}" "$KEEP/${KEPT[i + 1]}"
    done
    echo "kept: the grids' result lines are in $KEEP (commit them)"
}

restore() {
    local i
    for ((i = 0; i < ${#KEPT[@]}; i += 2)); do
        merge "$KEEP/${KEPT[i + 1]}" "${KEPT[i]}"
    done
}

# The grid's settings; then --recipes NAMES --workers N. The report's cost
# is CPU time: the machine is shared, so wall time is the noisier of the two.
grid_run() {
    grid_settings 3 "$GRID_OUT" "$@"
}

# `grid_settings EPOCHS OUT [FLAGS]`: the grids' shared settings.
grid_settings() {
    local epochs=$1 out=$2
    shift 2
    "$PYTHON" benchmarks/robustness_per_cost.py "${DATA_FLAG[@]}" \
        --epochs "$epochs" --test_size 1000 --save_models --cost cpu \
        --out "$out" "$@"
}

front() {
    # The rows timed before --workers existed, timed again as a worker times
    # its recipes (one thread, against natural training just before), so
    # that every cost of the table has the same kind of reference.
    TF_NUM_INTRAOP_THREADS=1 TF_NUM_INTEROP_THREADS=1 \
        grid_run --retime --recipes "$RETIME"
    grid_run --recipes "$FRONT_RUNNERS" --workers "$WORKERS"
}

grid() {
    front
    # The rest of the grid (`all`); the front-runners are done by now.
    grid_run --recipes "$FRONT_RUNNERS,all" --workers "$WORKERS"
}

report() {
    # --report needs the grid's own settings: the same flags as grid_run.
    if [ -s "$GRID_OUT/results.jsonl" ]; then
        grid_run --report
    fi
    if [ -s "$GRID10_OUT/results.jsonl" ]; then
        grid_settings 10 "$GRID10_OUT" --report
    fi
}

grid10() {
    grid_settings 10 "$GRID10_OUT" --recipes "$AA_RECIPES" --workers "$WORKERS"
}

aa_recipe_models() {
    grid_run --recipes "$AA_RECIPES" --workers "$WORKERS"
}

gridaa() {
    # Its models first: the grid's settings and folder (so `grid` skips them),
    # under the grid's lock (so they never train beside a `grid` run).
    locked aa_recipe_models grid
    local list=""
    for name in ${AA_RECIPES//,/ }; do
        list="$list${list:+,}$GRID_OUT/$name.keras"
    done
    "$PYTHON" benchmarks/autoattack_eval.py "${DATA_FLAG[@]}" --models "$list" \
        --num_examples "$AA_IMAGES" --chunk "$AA_CHUNK" --eps "$AA_EPS" \
        --workers "$WORKERS" --out "$GRID_OUT/autoattack"
}

# One process per step: a second run of a step (e.g. `grid` beside an `all`
# that reaches it) waits for the first, then finds its work done.
# `locked FUNCTION [LOCK]`: runs FUNCTION holding the lock of step LOCK
# (default: the function's own name).
locked() {
    mkdir -p "$RUNS"
    if command -v flock > /dev/null; then
        ( flock 9; "$1" ) 9> "$RUNS/.long_runs.${2:-$1}.lock"
    else
        "$1"
    fi
}

case "${1:-all}" in
    models|autoattack) locked "$1" ;;
    grid|gridaa|grid10) restore && locked "$1" ;;
    front) restore && locked front grid ;;
    keep) keep ;;
    report) restore && report ;;
    status) "$PYTHON" benchmarks/_long_runs_status.py "$RUNS" \
        "$TEN_EPOCH_MODELS" "$AA_RECIPES" "$AA_IMAGES" "$AA_CHUNK" "$AA_EPS" ;;
    all) restore && locked models && locked autoattack && locked front grid \
        && locked gridaa && locked grid10 && locked grid ;;
    *) echo "usage: $0 [models|autoattack|front|grid|gridaa|grid10|all|status|keep|report]" >&2
       exit 2 ;;
esac

#!/usr/bin/env bash
# The real-data evaluations of BENCHMARKS.md (issue 4), one after another, each under /usr/bin/time -v
# (wall time and peak memory go to <out>/time.txt). Rerunning resumes from each run's cache.
#
# Usage: bash benchmarks/run_real_evaluations.sh [RUNS_DIR] [NAME ...]
#   RUNS_DIR defaults to runs; the datasets must be in RUNS_DIR/data
#   (python benchmarks/prepare_real_data.py --out RUNS_DIR/data). NAMEs pick runs (default: all).
set -euo pipefail
RUNS=${1:-runs}
shift || true
D=$RUNS/data
E=$RUNS/eval
mkdir -p "$E"
MODELS=mean,ridge,ps-lasso,leap-ps-lasso
COMMON=(--models "$MODELS" --seeds 5 --quiet)

run() {
  local name=$1
  shift
  if [ "${#SELECTED[@]}" -gt 0 ] && [[ ! " ${SELECTED[*]} " =~ " $name " ]]; then return; fi
  mkdir -p "$E/$name"
  echo "== $name: leapscreen evaluate $* --out $E/$name ${COMMON[*]}"
  /usr/bin/time -v -o "$E/$name/time.txt" leapscreen evaluate "$@" --out "$E/$name" "${COMMON[@]}"
  grep -E "Elapsed|Maximum resident" "$E/$name/time.txt"
}
SELECTED=("$@")

GDSC=(--latent-dim 128 --n-genes 5000 --min-labels 75)
run gdsc2_ln_ic50_unseen_lines --data "$D/gdsc2_ln_ic50" --task unseen-cell-lines --repeats 10 \
  "${GDSC[@]}" --sensitive low
run crispr22q1_unseen_lines --data "$D/crispr22q1_classes" --task unseen-cell-lines --repeats 10 \
  --latent-dim 128 --n-genes 5000 --min-labels 50 --sensitive high
run transfer_gdsc2_to_ccle2012 --data "$D/gdsc2_ln_ic50" --task transfer \
  --target "$D/ccle2012_ln_ic50" --latent-dim 128 --n-genes 5000 --min-labels 15 --sensitive low
run transfer_gdsc2_to_gdsc1 --data "$D/gdsc2_ln_ic50" --task transfer \
  --target "$D/gdsc1_ln_ic50" --target-fraction 0.2 "${GDSC[@]}" --sensitive low
run chronos_liver_nb_smoke --data "$D/chronos_liver_nb" --task unseen-cell-lines --repeats 3 \
  --latent-dim 16 --n-genes 2000 --min-labels 20 --sensitive low
run gdsc2_aac_unseen_lines --data "$D/gdsc2_aac" --task unseen-cell-lines --repeats 10 \
  "${GDSC[@]}" --sensitive high
run gdsc2_ln_ic50_unseen_lineage --data "$D/gdsc2_ln_ic50" --task unseen-lineage \
  --max-lineages 10 "${GDSC[@]}" --sensitive low
run gdsc2_aac_unseen_lineage --data "$D/gdsc2_aac" --task unseen-lineage \
  --max-lineages 10 "${GDSC[@]}" --sensitive high

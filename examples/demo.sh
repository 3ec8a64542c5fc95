#!/usr/bin/env bash
# The tour on the embedded store: import the shipped example circuits, ask the cross-circuit questions, draw them.
set -euo pipefail
out=${1:-demo}
rm -rf "$out" && mkdir -p "$out"
export CIRCUITDB_STORE="kuzu:$out/circuitdb.kuzu"
cdb=.venv/bin/circuitdb

for task in numerals numwords months; do
  for threshold in 0.97 0.9 0.8; do
    $cdb import seqcont "examples/seqcont/${task}_circuit_thres_${threshold}.json" \
      --model gpt2-small --task "$task" --threshold "$threshold"
  done
done
$cdb import eap-ig examples/eap-ig/ioi_graph.json --model gpt2-small --task ioi --method eap-ig

$cdb runs
$cdb shared --model gpt2-small --task numerals --task numwords --task months --threshold 0.8
$cdb venn --model gpt2-small --task numerals --task numwords --task months --threshold 0.8 -o "$out/venn.png"
$cdb diff --model gpt2-small --task numerals --task months --threshold 0.8
$cdb ladder --model gpt2-small --task months
$cdb similarity --method prune -o "$out/similarity.png"
$cdb export --task numerals --task numwords --task months --threshold 0.8 -o "$out/overlap.png"
$cdb export --task numerals --task numwords --task months --threshold 0.8 --only-shared -o "$out/shared.svg"
$cdb export --task ioi -o "$out/ioi.png"
$cdb export --method prune -o "$out/runs.json"
echo "demo: catalog, pictures and export in $out/"

// Edge count and total |weight| of each run in $run_ids.
MATCH ()-[e:EDGE]->()
WHERE e.run_id IN $run_ids
RETURN e.run_id AS run, count(*) AS size, sum(abs(e.weight)) AS mass

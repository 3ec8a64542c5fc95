// Edges (sender, receiver, q/k/v input) present in every one of the runs $run_ids; weight = mean over runs.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
WITH a, b, e.input AS input, count(*) AS n_runs, avg(e.weight) AS mean_weight,
     min(e.weight) AS min_weight
WHERE n_runs = $n
RETURN a.name AS sender, b.name AS receiver, input, mean_weight, min_weight

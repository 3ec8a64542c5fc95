// Edges (sender, receiver, q/k/v input) present in every one of the runs $run_ids; weight = mean over runs. Ends are
// names and positions, or names alone unless $by_position (then a run's weight is its highest); aggregated per run
// first, as in shared.cypher.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
WITH CASE WHEN $by_position THEN a.name ELSE coalesce(a.base, a.name) END AS sender, CASE WHEN $by_position THEN b.name ELSE coalesce(b.base, b.name) END AS receiver, e.input AS input, e.run_id AS run,
     max(e.weight) AS weight
WITH sender, receiver, input, count(*) AS n_runs, avg(weight) AS mean_weight, min(weight) AS min_weight
WHERE n_runs = $n
RETURN sender, receiver, input, mean_weight, min_weight

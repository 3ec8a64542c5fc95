// Edges of run $run_a and run $run_b: membership in each and the weight in each.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id = $run_a OR e.run_id = $run_b
RETURN a.name AS sender, b.name AS receiver, e.input AS input,
       sum(CASE WHEN e.run_id = $run_a THEN 1 ELSE 0 END) AS in_a,
       sum(CASE WHEN e.run_id = $run_b THEN 1 ELSE 0 END) AS in_b,
       max(CASE WHEN e.run_id = $run_a THEN e.weight ELSE null END) AS weight_a,
       max(CASE WHEN e.run_id = $run_b THEN e.weight ELSE null END) AS weight_b

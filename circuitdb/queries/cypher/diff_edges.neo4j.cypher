// Edges of run $run_a and run $run_b: membership in each and the weight in each (ends by name alone, the highest
// weight, unless $by_position).
// Neo4j packs the rows into one list of lists (`rows`, columns as in the Kuzu variant): a record costs the
// driver far more to decode than a list does.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id = $run_a OR e.run_id = $run_b
WITH CASE WHEN $by_position THEN a.name ELSE coalesce(a.base, a.name) END AS sender, CASE WHEN $by_position THEN b.name ELSE coalesce(b.base, b.name) END AS receiver, e.input AS input,
       max(CASE WHEN e.run_id = $run_a THEN 1 ELSE 0 END) AS in_a,
       max(CASE WHEN e.run_id = $run_b THEN 1 ELSE 0 END) AS in_b,
       max(CASE WHEN e.run_id = $run_a THEN e.weight ELSE null END) AS weight_a,
       max(CASE WHEN e.run_id = $run_b THEN e.weight ELSE null END) AS weight_b
RETURN collect([sender, receiver, input, in_a, in_b, weight_a, weight_b]) AS rows

// Weighted edges of the runs $run_ids, one row per edge and run.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
RETURN e.run_id AS run, a.name AS sender, b.name AS receiver, e.input AS input, e.weight AS weight

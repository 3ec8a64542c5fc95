// For each edge of any of the runs $run_ids: the runs that contain it (its Venn region).
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
RETURN a.name AS sender, b.name AS receiver, e.input AS input, collect(e.run_id) AS runs

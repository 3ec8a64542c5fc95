// For each edge of any of the runs $run_ids: the runs that contain it (its Venn region); ends by name and position,
// or by name alone unless $by_position.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
RETURN CASE WHEN $by_position THEN a.name ELSE coalesce(a.base, a.name) END AS sender, CASE WHEN $by_position THEN b.name ELSE coalesce(b.base, b.name) END AS receiver, e.input AS input, collect(DISTINCT e.run_id) AS runs

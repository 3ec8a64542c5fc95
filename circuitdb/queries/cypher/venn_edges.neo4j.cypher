// For each edge of any of the runs $run_ids: the runs that contain it (its Venn region); ends by name and position,
// or by name alone unless $by_position.
// Neo4j packs the rows into one list of lists (`rows`, columns as in the Kuzu variant): a record costs the
// driver far more to decode than a list does.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
WITH CASE WHEN $by_position THEN a.name ELSE coalesce(a.base, a.name) END AS sender, CASE WHEN $by_position THEN b.name ELSE coalesce(b.base, b.name) END AS receiver, e.input AS input, collect(DISTINCT e.run_id) AS runs
RETURN collect([sender, receiver, input, runs]) AS rows

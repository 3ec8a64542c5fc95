// For each component of any of the runs $run_ids: the runs that include it (its Venn region); a component is its name
// and position, or its name alone unless $by_position.
// Neo4j packs the rows into one list of lists (`rows`, columns as in the Kuzu variant): a record costs the
// driver far more to decode than a list does.
MATCH (r:Run)-[:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
WITH CASE WHEN $by_position THEN c.name ELSE coalesce(c.base, c.name) END AS component, c.kind AS kind, c.layer AS layer, collect(DISTINCT r.id) AS runs
RETURN collect([component, kind, layer, runs]) AS rows

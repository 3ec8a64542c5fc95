// For each component of any of the runs $run_ids: the runs that include it (its Venn region).
MATCH (r:Run)-[:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
RETURN c.name AS component, c.kind AS kind, c.layer AS layer, collect(r.id) AS runs

// Components of run $run_a and run $run_b: membership in each and the score in each (the highest, by name alone when
// not $by_position).
// Neo4j packs the rows into one list of lists (`rows`, columns as in the Kuzu variant): a record costs the
// driver far more to decode than a list does.
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id = $run_a OR r.id = $run_b
WITH CASE WHEN $by_position THEN c.name ELSE coalesce(c.base, c.name) END AS component, c.kind AS kind, c.layer AS layer,
       max(CASE WHEN r.id = $run_a THEN 1 ELSE 0 END) AS in_a,
       max(CASE WHEN r.id = $run_b THEN 1 ELSE 0 END) AS in_b,
       max(CASE WHEN r.id = $run_a THEN i.score ELSE null END) AS score_a,
       max(CASE WHEN r.id = $run_b THEN i.score ELSE null END) AS score_b
RETURN collect([component, kind, layer, in_a, in_b, score_a, score_b]) AS rows

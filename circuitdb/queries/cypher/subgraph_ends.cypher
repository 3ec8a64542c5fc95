// The members named $names of one run $run_id (the ends of the edges a subgraph shows), with their scores.
MATCH (r:Run {id: $run_id})-[i:INCLUDES]->(c:Component)
WHERE c.name IN $names
RETURN c.name AS component, c.kind AS kind, c.layer AS layer, i.score AS score

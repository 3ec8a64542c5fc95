// Components of the runs $run_ids, one row per membership, with the component's measured score.
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
RETURN r.id AS run, c.name AS component, c.kind AS kind, c.layer AS layer, i.score AS score

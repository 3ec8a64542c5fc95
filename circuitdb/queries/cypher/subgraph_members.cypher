// The $top strongest members (by |score|; unscored ends such as input and logits first) of one run $run_id.
MATCH (r:Run {id: $run_id})-[i:INCLUDES]->(c:Component)
WITH c, i ORDER BY CASE WHEN i.score IS NULL THEN 1 ELSE 0 END DESC, abs(i.score) DESC, c.name LIMIT $top
RETURN c.name AS component, c.kind AS kind, c.layer AS layer, i.score AS score

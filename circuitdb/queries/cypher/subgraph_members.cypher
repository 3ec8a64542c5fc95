// The $top strongest members of one run $run_id: input and logits first, then by |score| (unscored ones last).
MATCH (r:Run {id: $run_id})-[i:INCLUDES]->(c:Component)
WITH c, i ORDER BY CASE WHEN c.kind IN ['embed', 'logits'] THEN 1 ELSE 0 END DESC, coalesce(abs(i.score), -1.0) DESC,
     c.name LIMIT $top
RETURN c.name AS component, c.kind AS kind, c.layer AS layer, i.score AS score

// Components called $cname (canonical), in any model, or in $model when given.
MATCH (c:Component)
WHERE c.name = $cname AND ($model IS NULL OR c.model_id = $model)
RETURN c.id AS id, c.model_id AS model, c.kind AS kind
ORDER BY id

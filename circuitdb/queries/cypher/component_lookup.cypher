// Components called $cname (canonical), in any model ($model '': a null parameter has no type on ladybug), or in $model.
MATCH (c:Component)
WHERE c.name = $cname AND ($model = '' OR c.model_id = $model)
RETURN c.id AS id, c.model_id AS model, c.kind AS kind
ORDER BY id

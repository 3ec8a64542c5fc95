// Stored cross-model matches from features of model $model_a to features of model $model_b.
MATCH (f:Component)-[m:RELATES]->(g:Component)
WHERE m.kind = 'match' AND f.model_id = $model_a AND g.model_id = $model_b
RETURN f.name AS feature, g.name AS match, m.weight AS correlation

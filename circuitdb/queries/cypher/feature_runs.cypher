// How many runs include each SAE feature (of model $model, or every model when it is '') that some run includes.
MATCH (r:Run)-[:INCLUDES]->(c:Component)
WHERE c.kind = 'sae_feature' AND ($model = '' OR c.model_id = $model)
RETURN c.id AS id, count(r) AS runs

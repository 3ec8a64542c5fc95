// The catalog's SAE features (of model $model, or every model when it is ''), with how many relations each has
// stored; how many runs include each is `feature_runs` (ladybug cannot follow INCLUDES from a component in an
// OPTIONAL MATCH: it is stored from the run's side only).
MATCH (c:Component)
WHERE c.kind = 'sae_feature' AND ($model = '' OR c.model_id = $model)
OPTIONAL MATCH (c)-[x:RELATES]-(:Component)
RETURN c.id AS id, c.model_id AS model, c.name AS feature, c.dictionary AS dictionary, c.layer AS layer,
       count(x) AS relations

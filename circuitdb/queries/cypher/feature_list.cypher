// The catalog's SAE features (of model $model, or every model when it is ''), with how many runs include each and
// how many relations each has stored; those in most runs first, at most $limit.
MATCH (c:Component)
WHERE c.kind = 'sae_feature' AND ($model = '' OR c.model_id = $model)
OPTIONAL MATCH (r:Run)-[:INCLUDES]->(c)
WITH c, count(r) AS runs
OPTIONAL MATCH (c)-[x:RELATES]-(:Component)
RETURN c.model_id AS model, c.name AS feature, c.dictionary AS dictionary, c.layer AS layer, runs,
       count(x) AS relations
ORDER BY runs DESC, relations DESC, model, feature
LIMIT $limit

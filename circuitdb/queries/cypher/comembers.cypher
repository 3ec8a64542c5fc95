// Co-membership, derived not stored: components sharing circuits (runs) with $id, and how many.
MATCH (a:Component {id: $id})<-[:INCLUDES]-(r:Run)-[:INCLUDES]->(b:Component)
WHERE b.id <> a.id AND b.kind IN ['sae_feature', 'error', 'head', 'mlp', 'neuron']
RETURN b.id AS other, b.model_id AS model, count(*) AS runs

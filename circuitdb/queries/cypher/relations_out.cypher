// Stored relations leaving component $id (cosine pairs are stored once, from the lower-numbered end).
MATCH (a:Component {id: $id})-[x:RELATES]->(b:Component)
RETURN b.id AS other, b.model_id AS model, x.kind AS kind, x.weight AS weight, x.source AS source

// Steering vectors, or the one with id $id ('' for all: a null parameter has no type to infer on ladybug).
MATCH (s:SteeringVector)
WHERE $id = '' OR s.id = $id
RETURN s.id AS id, s.model_id AS model, s.name AS name, s.layer AS layer, s.description AS description,
       s.dim AS dim, s.norm AS norm, s.vector AS vector
ORDER BY id

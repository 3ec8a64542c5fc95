// The downstream features a steering vector shifts, with the delta measured at coefficient coef.
MATCH (s:SteeringVector {id: $id})-[x:SHIFTS]->(c:Component)
RETURN c.name AS feature, x.layer AS layer, x.delta AS delta, x.coef AS coef

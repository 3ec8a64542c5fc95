// The features a steering vector decomposes into, per method.
MATCH (s:SteeringVector {id: $id})-[x:DECOMPOSES_INTO]->(c:Component)
RETURN c.name AS feature, x.method AS method, x.coef AS coef

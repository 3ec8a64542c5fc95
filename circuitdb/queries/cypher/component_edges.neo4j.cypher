// Neo4j variant of component_edges.cypher.
MATCH (c:Component {id: $id})-[e:EDGE]->(b:Component)
WHERE e.run_id = $run_id
WITH 'out' AS direction, b.name AS other, e.input AS input, e.weight AS weight
ORDER BY abs(weight) DESC LIMIT $top
RETURN direction, other, input, weight
UNION ALL
MATCH (a:Component)-[e:EDGE]->(c:Component {id: $id})
WHERE e.run_id = $run_id
WITH 'in' AS direction, a.name AS other, e.input AS input, e.weight AS weight
ORDER BY abs(weight) DESC LIMIT $top
RETURN direction, other, input, weight

// The edges of run $run_id into and out of component $id, strongest first, at most $top each way.
MATCH (c:Component {id: $id})<-[:SENDER]-(e:Edge)-[:RECEIVER]->(b:Component)
WHERE e.run_id = $run_id
WITH 'out' AS direction, b.name AS other, e.input AS input, e.weight AS weight
ORDER BY abs(weight) DESC LIMIT $top
RETURN direction, other, input, weight
UNION ALL
MATCH (a:Component)<-[:SENDER]-(e:Edge)-[:RECEIVER]->(c:Component {id: $id})
WHERE e.run_id = $run_id
WITH 'in' AS direction, a.name AS other, e.input AS input, e.weight AS weight
ORDER BY abs(weight) DESC LIMIT $top
RETURN direction, other, input, weight

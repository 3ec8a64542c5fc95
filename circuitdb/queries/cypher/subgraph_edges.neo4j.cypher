// Neo4j variant of subgraph_edges.cypher (ties by the relationship's element id).
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id = $run_id AND abs(e.weight) >= $min_weight
WITH a, e, b ORDER BY abs(e.weight) DESC, elementId(e) LIMIT $top
RETURN a.name AS sender, b.name AS receiver, e.input AS input, e.weight AS weight,
       a.kind AS sender_kind, a.layer AS sender_layer, b.kind AS receiver_kind, b.layer AS receiver_layer

// The $top strongest edges (by |weight|, at least $min_weight) of one run $run_id: the store sorts and cuts, so a run
// of 30,000 edges sends only what a picture shows. Ties by the edge's number, so the same call gives the same edges.
MATCH (e:Edge)
WHERE e.run_id = $run_id AND abs(e.weight) >= $min_weight
WITH e ORDER BY abs(e.weight) DESC, e.id LIMIT $top
MATCH (a:Component)<-[:SENDER]-(e)-[:RECEIVER]->(b:Component)
RETURN a.name AS sender, b.name AS receiver, e.input AS input, e.weight AS weight,
       a.kind AS sender_kind, a.layer AS sender_layer, b.kind AS receiver_kind, b.layer AS receiver_layer

// Edges of a few runs $run_ids, one row per run: senders and receivers as node numbers (those run_members gives
// beside the names: numbers cost the store no property read and the driver less to decode), inputs and weights, as
// aligned lists (none of them is ever null). For many runs use run_edges_batch.cypher.
MATCH (a:Component)<-[:SENDER]-(e:Edge)-[:RECEIVER]->(b:Component)
WHERE e.run_id IN $run_ids
RETURN e.run_id AS run, collect(offset(id(a))) AS senders, collect(offset(id(b))) AS receivers,
       collect(e.input) AS inputs, collect(e.weight) AS weights

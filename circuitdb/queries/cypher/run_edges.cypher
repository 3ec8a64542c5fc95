// Edges of a few runs $run_ids, one row per run: senders, receivers, inputs and weights as aligned lists (none of
// them is ever null). For many runs use run_edges_batch.cypher.
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
RETURN e.run_id AS run, collect(a.name) AS senders, collect(b.name) AS receivers, collect(e.input) AS inputs,
       collect(e.weight) AS weights

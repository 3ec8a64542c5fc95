// Neo4j variant of run_edges_batch.cypher (node numbers are id(a), id(b)).
UNWIND $run_ids AS run
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id = run
RETURN run, collect(id(a)) AS senders, collect(id(b)) AS receivers, collect(e.input) AS inputs,
       collect(e.weight) AS weights

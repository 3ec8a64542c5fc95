// Neo4j variant of run_edges.cypher (node numbers are id(a), id(b)).
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id IN $run_ids
RETURN e.run_id AS run, collect(id(a)) AS senders, collect(id(b)) AS receivers, collect(e.input) AS inputs,
       collect(e.weight) AS weights

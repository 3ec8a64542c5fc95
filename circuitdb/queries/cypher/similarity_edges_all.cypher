// similarity_edges.cypher when $run_ids is every run of the catalog: Kuzu has no index on the run of an edge, so
// joining the list with the edges costs more than the scan of all edges it comes to anyway (the list is only
// checked for being non-empty, as Kuzu refuses a parameter a query does not use).
MATCH (a:Component)<-[:SENDER]-(e:Edge)-[:RECEIVER]->(b:Component)
WHERE size($run_ids) > 0
RETURN e.run_id AS run, collect(offset(id(a))) AS senders, collect(offset(id(b))) AS receivers,
       collect(CASE e.input WHEN 'q' THEN 1 WHEN 'k' THEN 2 WHEN 'v' THEN 3 ELSE 0 END) AS inputs,
       collect(CASE WHEN $weighted THEN abs(e.weight) END) AS weights

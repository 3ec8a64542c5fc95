// Neo4j variant of similarity_edges_all.cypher: the index on the run of an edge makes the join the fast way, as in
// similarity_edges.neo4j.cypher (a scan of all edges grouped by run takes several times longer).
UNWIND $run_ids AS run
MATCH (a)-[e:EDGE]->(b)
WHERE e.run_id = run
RETURN run, collect(id(a)) AS senders, collect(id(b)) AS receivers,
       collect(CASE e.input WHEN 'q' THEN 1 WHEN 'k' THEN 2 WHEN 'v' THEN 3 ELSE 0 END) AS inputs,
       collect(CASE WHEN $weighted THEN abs(e.weight) END) AS weights

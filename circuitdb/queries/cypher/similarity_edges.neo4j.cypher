// Neo4j variant of similarity_edges.cypher (node numbers are id(a), id(b)). EDGE only ever joins Components, so the
// ends are not tested for their label.
UNWIND $run_ids AS run
MATCH (a)-[e:EDGE]->(b)
WHERE e.run_id = run
RETURN run, collect(id(a)) AS senders, collect(id(b)) AS receivers,
       collect(CASE e.input WHEN 'q' THEN 1 WHEN 'k' THEN 2 WHEN 'v' THEN 3 ELSE 0 END) AS inputs,
       collect(CASE WHEN $weighted THEN abs(e.weight) END) AS weights

// Neo4j variant of similarity.cypher: the node numbers are id(c) (stable while the node exists; components are never
// deleted). INCLUDES only ever leads to a Component, so c is not tested for its label (a store read per membership:
// half the query's time).
MATCH (r:Run)-[i:INCLUDES]->(c)
WHERE r.id IN $run_ids
RETURN r.id AS run, collect(id(c)) AS items,
       collect(CASE WHEN $weighted THEN coalesce(abs(i.score), 1.0) END) AS weights

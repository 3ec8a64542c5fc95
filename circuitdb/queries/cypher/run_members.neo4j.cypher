// Neo4j variant of run_members.cypher (node numbers are id(c); lists count from 0, and a list comprehension
// unwraps the scores).
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
RETURN r.id AS run, collect(c.name) AS components, collect(id(c)) AS nodes, [s IN collect([i.score]) | s[0]] AS scores

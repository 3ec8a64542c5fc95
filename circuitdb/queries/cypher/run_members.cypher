// Members of the runs $run_ids, one row per run: component names, their node numbers (offsets, which run_edges
// uses for the ends of edges) and their scores as aligned lists (a score is collected inside a one-item list, so a
// missing one stays in place as null).
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
RETURN r.id AS run, collect(c.name) AS components, collect(offset(id(c))) AS nodes,
       list_transform(collect([i.score]), s -> s[1]) AS scores

// Each run of $run_ids with its edge keys (sender id > receiver id < input) and, when $weighted, their |weight| as
// an aligned list (the runs are joined with the edges as in run_edges_batch.cypher).
UNWIND $run_ids AS run
MATCH (a:Component)-[e:EDGE]->(b:Component)
WHERE e.run_id = run
RETURN run, collect(a.id + '>' + b.id + '<' + e.input) AS items, collect(CASE WHEN $weighted THEN abs(e.weight) END) AS weights

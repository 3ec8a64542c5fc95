// Each run of $run_ids with its edges as aligned lists: sender and receiver as the store's node numbers, the input as
// a number (q 1, k 2, v 3, none 0) and, when $weighted, |weight| (the runs are joined with the edges as in
// run_edges_batch.cypher). Sender, receiver and input together are the edge's key.
UNWIND $run_ids AS run
MATCH (a:Component)<-[:SENDER]-(e:Edge)-[:RECEIVER]->(b:Component)
WHERE e.run_id = run
RETURN run, collect(offset(id(a))) AS senders, collect(offset(id(b))) AS receivers,
       collect(CASE e.input WHEN 'q' THEN 1 WHEN 'k' THEN 2 WHEN 'v' THEN 3 ELSE 0 END) AS inputs,
       collect(CASE WHEN $weighted THEN abs(e.weight) END) AS weights

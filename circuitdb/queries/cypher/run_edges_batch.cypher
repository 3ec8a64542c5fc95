// run_edges.cypher for many runs: the list of runs is joined with the edges (where IN would compare every edge
// with every id on Kuzu), so the cost does not grow with the number of runs asked.
UNWIND $run_ids AS run
MATCH (a:Component)<-[:SENDER]-(e:Edge)-[:RECEIVER]->(b:Component)
WHERE e.run_id = run
RETURN run, collect(offset(id(a))) AS senders, collect(offset(id(b))) AS receivers, collect(e.input) AS inputs,
       collect(e.weight) AS weights

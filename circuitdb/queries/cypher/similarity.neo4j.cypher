// Neo4j variant of similarity.cypher (same answers): pair the runs of each component from its collected list,
// which avoids joining every membership with every other one.
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
WITH c, r.id AS run, coalesce(abs(i.score), 1.0) AS s ORDER BY run
WITH c, collect(run) AS runs, collect(s) AS ss WHERE size(runs) > 1
UNWIND range(0, size(runs) - 2) AS x
UNWIND range(x + 1, size(runs) - 1) AS y
RETURN runs[x] AS run_a, runs[y] AS run_b, count(*) AS shared,
       sum(CASE WHEN ss[x] < ss[y] THEN ss[x] ELSE ss[y] END) AS shared_min

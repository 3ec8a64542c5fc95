// Pairwise overlap of the component sets of the runs $run_ids: shared count and sum of min |score|
// (a missing score counts as 1). Jaccard = shared / (size_a + size_b - shared).
MATCH (a:Run)-[ia:INCLUDES]->(c:Component)<-[ib:INCLUDES]-(b:Run)
WHERE a.id IN $run_ids AND b.id IN $run_ids AND a.id < b.id
WITH a.id AS run_a, b.id AS run_b, coalesce(abs(ia.score), 1.0) AS sa, coalesce(abs(ib.score), 1.0) AS sb
RETURN run_a, run_b, count(*) AS shared, sum(CASE WHEN sa < sb THEN sa ELSE sb END) AS shared_min

// Pairwise overlap of the edge sets of the runs $run_ids: shared count and sum of min |weight|.
MATCH (s:Component)-[ea:EDGE]->(t:Component), (s)-[eb:EDGE]->(t)
WHERE ea.run_id IN $run_ids AND eb.run_id IN $run_ids AND ea.run_id < eb.run_id AND ea.input = eb.input
WITH ea.run_id AS run_a, eb.run_id AS run_b, abs(ea.weight) AS wa, abs(eb.weight) AS wb
RETURN run_a, run_b, count(*) AS shared, sum(CASE WHEN wa < wb THEN wa ELSE wb END) AS shared_min

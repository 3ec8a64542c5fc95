// Components included in every one of the runs $run_ids ($n = how many runs), with mean and min score.
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
WITH c, count(*) AS n_runs, avg(i.score) AS mean_score, min(i.score) AS min_score
WHERE n_runs = $n
RETURN c.name AS component, c.kind AS kind, c.layer AS layer, mean_score, min_score

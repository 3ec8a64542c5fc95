// Components included in every one of the runs $run_ids ($n = how many runs), with mean and min score; a component
// is its name and position, or its name alone unless $by_position (then a run's score is its highest at any position).
// Aggregated per run first: Kuzu 0.11 nulls other aggregates beside a count(DISTINCT ...).
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
WITH CASE WHEN $by_position THEN c.name ELSE coalesce(c.base, c.name) END AS component, c.kind AS kind, c.layer AS layer, r.id AS run,
     max(i.score) AS score
WITH component, kind, layer, count(*) AS n_runs, avg(score) AS mean_score, min(score) AS min_score
WHERE n_runs = $n
RETURN component, kind, layer, mean_score, min_score

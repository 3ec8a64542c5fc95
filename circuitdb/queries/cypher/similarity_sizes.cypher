// Size and total |score| (a missing score counts as 1) of each run in $run_ids.
MATCH (r:Run)-[i:INCLUDES]->(:Component)
WHERE r.id IN $run_ids
RETURN r.id AS run, count(*) AS size, sum(coalesce(abs(i.score), 1.0)) AS mass

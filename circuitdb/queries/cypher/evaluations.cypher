// Performance of the circuits of the runs $run_ids on other tasks' data.
MATCH (r:Run)-[e:EVALUATED_ON]->(t:Task)
WHERE r.id IN $run_ids
RETURN r.id AS run, t.id AS task, e.performance AS performance

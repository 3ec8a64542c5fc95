// Performance of run $run_id's circuit on other tasks' data.
MATCH (r:Run {id: $run_id})-[e:EVALUATED_ON]->(t:Task)
RETURN t.id AS task, e.performance AS performance

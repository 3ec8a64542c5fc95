// The packed score list of one run $run_id (every edge and node an importer scored, in the circuit or not).
MATCH (r:Run {id: $run_id})
RETURN r.scores AS scores

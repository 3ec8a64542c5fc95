// Each run of $run_ids with the components it includes, as the store's own node numbers (offsets: cheaper to send and
// to compare than ids), and, when $weighted, their |score| (a missing score counts as 1) as an aligned list: one row
// per run keeps the rows few however large the runs are.
MATCH (r:Run)-[i:INCLUDES]->(c:Component)
WHERE r.id IN $run_ids
RETURN r.id AS run, collect(offset(id(c))) AS items,
       collect(CASE WHEN $weighted THEN coalesce(abs(i.score), 1.0) END) AS weights

// Every run in the catalog with its model, task and sizes.
MATCH (r:Run)-[:ON_MODEL]->(m:Model), (r)-[:FOR_TASK]->(t:Task)
RETURN r.id AS id, m.id AS model, t.id AS task, r.method AS method, r.ablation AS ablation,
       r.metric AS metric, r.threshold AS threshold, r.faithfulness AS faithfulness,
       r.completeness AS completeness, r.n_nodes AS n_nodes, r.n_edges AS n_edges,
       r.created_at AS created_at

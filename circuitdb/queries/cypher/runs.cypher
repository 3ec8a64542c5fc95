// Every run in the catalog with its model, task and sizes.
MATCH (r:Run)-[:ON_MODEL]->(m:Model), (r)-[:FOR_TASK]->(t:Task)
RETURN r.id AS id, m.id AS model, t.id AS task, r.method AS method, r.ablation AS ablation,
       r.metric AS metric, r.threshold AS threshold, r.faithfulness AS faithfulness,
       r.completeness AS completeness, r.direction AS direction,
       r.faithfulness_normalised AS faithfulness_normalised, r.edge_faithfulness AS edge_faithfulness, r.kl AS kl,
       r.accuracy AS accuracy, r.cpr AS cpr, r.cmd AS cmd, r.n_nodes AS n_nodes, r.n_edges AS n_edges,
       r.created_at AS created_at, r.cut AS cut

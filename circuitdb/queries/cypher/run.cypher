// The runs $run_ids with their model, task, provenance and the run each nests in.
MATCH (r:Run)-[:ON_MODEL]->(m:Model), (r)-[:FOR_TASK]->(t:Task)
WHERE r.id IN $run_ids
OPTIONAL MATCH (r)-[:NESTS_IN]->(p:Run)
RETURN r.id AS id, r.method AS method, r.ablation AS ablation, r.metric AS metric, r.threshold AS threshold,
       r.faithfulness AS faithfulness, r.completeness AS completeness, r.direction AS direction,
       r.faithfulness_normalised AS faithfulness_normalised, r.edge_faithfulness AS edge_faithfulness, r.kl AS kl,
       r.accuracy AS accuracy, r.cpr AS cpr, r.cmd AS cmd, r.params AS params,
       r.dataset_hash AS dataset_hash, r.seed AS seed, r.versions AS versions, r.created_at AS created_at,
       r.scores AS scores, r.cut AS cut,
       m.id AS model, m.n_layers AS n_layers, m.n_heads AS n_heads, m.d_model AS d_model, m.source AS source,
       t.id AS task, t.family AS family, t.description AS description, t.n_prompts AS n_prompts,
       p.id AS nests_in

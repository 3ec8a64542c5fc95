// The stored shape of the models $models (those the catalog knows), to check a run's components fit.
MATCH (m:Model)
WHERE m.id IN $models
RETURN m.id AS id, m.n_layers AS n_layers, m.n_heads AS n_heads

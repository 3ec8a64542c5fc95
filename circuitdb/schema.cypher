// circuitdb on Neo4j 5: constraints and indexes (the Kuzu DDL lives in circuitdb/store/kuzu.py).
// Ingest MERGEs on these keys, so concurrent writers cannot create duplicates.
CREATE CONSTRAINT model_id IF NOT EXISTS FOR (m:Model) REQUIRE m.id IS UNIQUE;
CREATE CONSTRAINT task_id IF NOT EXISTS FOR (t:Task) REQUIRE t.id IS UNIQUE;
CREATE CONSTRAINT run_id IF NOT EXISTS FOR (r:Run) REQUIRE r.id IS UNIQUE;
CREATE CONSTRAINT component_id IF NOT EXISTS FOR (c:Component) REQUIRE c.id IS UNIQUE;
CREATE CONSTRAINT steering_id IF NOT EXISTS FOR (s:SteeringVector) REQUIRE s.id IS UNIQUE;
CREATE INDEX component_kind IF NOT EXISTS FOR (c:Component) ON (c.model_id, c.kind);
CREATE INDEX run_select IF NOT EXISTS FOR (r:Run) ON (r.method, r.threshold);
CREATE INDEX edge_run IF NOT EXISTS FOR ()-[e:EDGE]-() ON (e.run_id);
CREATE INDEX relates_kind IF NOT EXISTS FOR ()-[x:RELATES]-() ON (x.kind);

// Neo4j variant of component_names.cypher.
MATCH (c:Component)
WHERE id(c) IN $nodes
RETURN id(c) AS node, c.name AS name

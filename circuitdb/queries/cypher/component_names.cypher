// Names of the components with the node numbers $nodes (as run_members gives them).
MATCH (c:Component)
WHERE offset(id(c)) IN $nodes
RETURN offset(id(c)) AS node, c.name AS name

// How many circuits (runs) include component $id.
MATCH (a:Component {id: $id})<-[:INCLUDES]-(r:Run)
RETURN count(*) AS runs

// Every run that includes component $id, with the component's score there.
MATCH (c:Component {id: $id})<-[i:INCLUDES]-(r:Run)
RETURN r.id AS run, i.score AS score, c.kind AS kind, c.layer AS layer

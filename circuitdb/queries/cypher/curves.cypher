// The runs $run_ids with their params (which hold the faithfulness curve of the method's edge ranking) and CPR / CMD.
MATCH (r:Run)
WHERE r.id IN $run_ids
RETURN r.id AS run, r.params AS params, r.cpr AS cpr, r.cmd AS cmd

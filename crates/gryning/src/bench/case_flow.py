# The DuckDB baseline of `gryning bench`: the case-flow table by code and year computed from the
# same NDJSON file gryning imported, with SQL written from docs/contract.md's definitions:
# crimes by CrimeReported.occurred_on and current crime code (the last CrimeReported or
# CrimeReclassified naming the crime, in log order); cases by CaseOpened.occurred_on and current
# lead code (the last CaseOpened or CaseReclassified); distinct cases with a referral dated in
# the year, by current lead code. Usage: python case_flow.py EVENTS.ndjson QUERIES
# Prints one JSON object: duckdb's version, the load time, each query's time, and the rows.
import json
import sys
import time

import duckdb

path, queries = sys.argv[1], int(sys.argv[2])
con = duckdb.connect()
columns = {
    "occurredOn": "VARCHAR",
    "caseId": "VARCHAR",
    "caseOpened": "STRUCT(leadCrimeCode VARCHAR)",
    "caseReclassified": "STRUCT(leadCrimeCode VARCHAR)",
    "crimeReported": "STRUCT(crimeId VARCHAR, crimeCode VARCHAR)",
    "crimeReclassified": "STRUCT(crimeId VARCHAR, crimeCode VARCHAR)",
    "caseReferredToProsecutor": "JSON",
}
started = time.perf_counter()
# Log order is file order (gryning imports in file order): pos numbers the lines as read.
con.execute(
    "CREATE TABLE ev AS SELECT row_number() OVER () AS pos, * FROM read_json(?, "
    "format = 'newline_delimited', columns = ?, maximum_object_size = 1048576)",
    [path, columns],
)
load = time.perf_counter() - started

QUERY = """
WITH crime_codes AS (
    SELECT caseId AS case_id, crimeReported.crimeId AS crime_id, crimeReported.crimeCode AS code, pos
    FROM ev WHERE crimeReported IS NOT NULL
    UNION ALL
    SELECT caseId, crimeReclassified.crimeId, crimeReclassified.crimeCode, pos
    FROM ev WHERE crimeReclassified IS NOT NULL
),
current_crime AS (
    SELECT case_id, crime_id, arg_max(code, pos) AS code FROM crime_codes GROUP BY case_id, crime_id
),
lead_codes AS (
    SELECT caseId AS case_id, caseOpened.leadCrimeCode AS code, pos FROM ev WHERE caseOpened IS NOT NULL
    UNION ALL
    SELECT caseId, caseReclassified.leadCrimeCode, pos FROM ev WHERE caseReclassified IS NOT NULL
),
current_lead AS (
    SELECT case_id, arg_max(code, pos) AS code FROM lead_codes GROUP BY case_id
),
reported AS (
    SELECT substr(e.occurredOn, 1, 4) AS period, c.code, count(*) AS reported
    FROM ev e JOIN current_crime c ON e.caseId = c.case_id AND e.crimeReported.crimeId = c.crime_id
    WHERE e.crimeReported IS NOT NULL GROUP BY ALL
),
cases AS (
    SELECT substr(e.occurredOn, 1, 4) AS period, l.code, count(*) AS cases
    FROM ev e JOIN current_lead l ON e.caseId = l.case_id
    WHERE e.caseOpened IS NOT NULL GROUP BY ALL
),
referred AS (
    SELECT substr(e.occurredOn, 1, 4) AS period, l.code, count(DISTINCT e.caseId) AS referred
    FROM ev e JOIN current_lead l ON e.caseId = l.case_id
    WHERE e.caseReferredToProsecutor IS NOT NULL GROUP BY ALL
)
SELECT period, code, coalesce(reported, 0), coalesce(cases, 0), coalesce(referred, 0)
FROM reported FULL JOIN cases USING (period, code) FULL JOIN referred USING (period, code)
ORDER BY period, code
"""

times = []
rows = None
for _ in range(queries):
    started = time.perf_counter()
    rows = con.execute(QUERY).fetchall()
    times.append(time.perf_counter() - started)
print(json.dumps({
    "version": duckdb.__version__,
    "load_s": load,
    "query_s": times,
    "rows": [[p, c, int(r), int(k), int(f)] for (p, c, r, k, f) in rows],
}))

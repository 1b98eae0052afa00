"""Runs gapwatch's ClickHouse statements on current ClickHouse, embedded through chDB.

Input (argv[1]): JSON list of {"name", "sql"}. Output: one JSON line per statement,
{"name", "ok", "result" | "error"}, result in TabSeparated. Exit 0 even when a
statement fails; the Go test (TestStatementsOnCurrentClickHouse) judges.
"""
import json
import os
import sys
import tempfile

os.environ["TZ"] = "UTC"  # DateTime results below are compared as UTC text

from chdb import session  # noqa: E402

stmts = json.load(open(sys.argv[1]))
with tempfile.TemporaryDirectory() as path:
    s = session.Session(path)
    version = str(s.query("SELECT version()", "TabSeparated")).strip()
    print(json.dumps({"name": "version", "ok": True, "result": version}))
    for st in stmts:
        try:
            res = s.query(st["sql"], "TabSeparated")
            print(json.dumps({"name": st["name"], "ok": True, "result": str(res)}))
        except Exception as e:  # report, keep going
            print(json.dumps({"name": st["name"], "ok": False, "error": str(e)[:2000]}))
    s.close()

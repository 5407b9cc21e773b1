"""Cuts every recorded Yahoo chart body in a replay folder to the sessions before a day.

Usage: python3 tests/cut_yahoo.py <replay>/query1.finance.yahoo.com 2026-03-02 [BODY-GLOB]

BODY-GLOB picks the bodies cut (default: every one), e.g. v8_finance_chart_BTC-USD.

Used by tests/crash/run.sh (a lake prepared on a shorter history) and tests/clients/run.sh (a
night on bitcoin's history to 2026-06-02, then the whole snapshot, on S3).
"""
import datetime
import glob
import json
import sys

cut = datetime.datetime.fromisoformat(sys.argv[2]).replace(tzinfo=datetime.timezone.utc).timestamp()
pick = sys.argv[3] if len(sys.argv) > 3 else "*"
for path in glob.glob(sys.argv[1] + "/" + pick + ".body.json"):
    body = json.load(open(path))
    r = body["chart"]["result"][0]
    keep = sum(1 for t in r["timestamp"] if t < cut)
    r["timestamp"] = r["timestamp"][:keep]
    for group in r["indicators"].values():
        for series in group:
            for k in series:
                series[k] = series[k][:keep]
    json.dump(body, open(path, "w"))

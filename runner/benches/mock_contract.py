"""The Python side of the benchmark: mock.py's contract in a few lines of our own.
Usage: python3 mock_contract.py <src_1> ... <src_n> <job.json>"""
import json
import shutil
import sys

*sources, job_file = sys.argv[1:]
with open(job_file, encoding="utf-8") as f:
    doc = json.load(f)
for source, job in zip(sources, doc["jobs"]):
    shutil.copy(source, job["outputs"][0])
# mock.py then validates the document; so do we, as cheaply.
assert set(doc) == {"common", "jobs"} and all(len(j["outputs"]) >= 1 for j in doc["jobs"])

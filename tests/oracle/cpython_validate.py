"""The CPython oracle for validate mode: what validate.py prints and how it exits,
written for our tests (no LLVM code). Usage: python3 cpython_validate.py ARG... JOB_FILE"""
import json
import sys

distributor_args = sys.argv[1:-1]
print(f"{distributor_args=}")
with open(sys.argv[-1], encoding="utf-8") as f:
    doc = json.load(f)  # a load error is a traceback and exit status 1, as in validate.py
print(json.dumps(doc, indent=4))


def strings(value, at_least):
    return type(value) is list and len(value) >= at_least and all(type(s) is str for s in value)


def valid_job(job):
    return (type(job) is dict and set(job) == {"args", "inputs", "outputs"}
            and strings(job["args"], 0) and strings(job["inputs"], 2) and strings(job["outputs"], 1))


common = doc.get("common") if type(doc) is dict else None
valid = (type(doc) is dict and set(doc) == {"common", "jobs"}
         and type(common) is dict and set(common) == {"linker_output", "args", "inputs"}
         and type(common["linker_output"]) is str
         and strings(common["args"], 1) and strings(common["inputs"], 0)
         and type(doc["jobs"]) is list and all(valid_job(job) for job in doc["jobs"]))
sys.exit(0 if valid else 1)

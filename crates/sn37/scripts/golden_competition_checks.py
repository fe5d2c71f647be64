#!/usr/bin/env python3
"""Golden cases for the competition-file checks of `assay_sn37::competition`, from taoverse itself.

taoverse's `EvalTask.__post_init__` (src/taoverse/model/eval/task.py) is what SN37 runs on every
task of its schedule: the weight must be positive, NONE normalization takes no kwargs, and
INVERSE_EXPONENTIAL needs a `ceiling`. This script builds an EvalTask for each case and records
whether taoverse accepts it.

Usage (taoverse's eval module needs nothing beyond the standard library):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install --no-deps taoverse==2.0.2
    /tmp/venv/bin/python crates/sn37/scripts/golden_competition_checks.py

Writes crates/sn37/tests/fixtures/competition_checks.json: a list of
{"id", "weight", "method", "kwargs", "accepted", "error"}.
"""
import json
import pathlib

import taoverse
from taoverse.model.eval.normalization import NormalizationId
from taoverse.model.eval.task import EvalTask

CASES = [
    (1.0, "none", {}),
    (0.5, "none", {}),
    (0.0, "none", {}),
    (-0.1, "none", {}),
    (1.0, "none", {"ceiling": 20.0}),
    (1.0, "none", {"celing": 20.0}),
    (1.0, "inverse_exponential", {"ceiling": 20.0}),
    (0.05, "inverse_exponential", {"ceiling": 40.0}),
    (1.0, "inverse_exponential", {}),
    (1.0, "inverse_exponential", {"celing": 20.0}),
    (0.0, "inverse_exponential", {"ceiling": 20.0}),
]

METHODS = {"none": NormalizationId.NONE, "inverse_exponential": NormalizationId.INVERSE_EXPONENTIAL}


def main():
    out = []
    for i, (weight, method, kwargs) in enumerate(CASES):
        try:
            # method_id / dataset_id 0 hit none of the method/dataset compatibility branches.
            EvalTask(
                name="T",
                method_id=0,
                dataset_id=0,
                normalization_id=METHODS[method],
                normalization_kwargs=dict(kwargs),
                weight=weight,
            )
            accepted, error = True, None
        except ValueError as e:
            accepted, error = False, str(e)
        out.append(
            {"id": i, "weight": weight, "method": method, "kwargs": kwargs,
             "accepted": accepted, "error": error}
        )
    path = pathlib.Path(__file__).resolve().parent.parent / "tests/fixtures/competition_checks.json"
    path.write_text(json.dumps({"taoverse": taoverse.__version__ if hasattr(taoverse, "__version__") else "2.0.2",
                                "cases": out}, indent=1) + "\n")
    print(f"wrote {len(out)} cases to {path}")


if __name__ == "__main__":
    main()

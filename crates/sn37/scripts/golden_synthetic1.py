#!/usr/bin/env python3
"""Golden references for SYNTHETIC-1 trace parsing (run by hand, not in CI): a restatement of
finetuning's Synthetic1SFTLoader._parse_verifiable_math / _parse_code_output_prediction and the
reference text its tokenize() builds.

Usage: python3 crates/sn37/scripts/golden_synthetic1.py > crates/sn37/tests/fixtures/synthetic1_parse.json
"""
import json
import re


def math_reference(message):
    found = re.findall(r"\\boxed\{(.*?)\}", message)
    answer = found[-1] if found else ""
    trace = message
    if found and answer:
        at = message.rfind(f"\\boxed{{{answer}}}")
        if at > -1:
            trace = message[:at].strip()
    return trace.strip() + " \\boxed{" + answer + "}"


def code_reference(message):
    found = re.findall(r'{"output": "(.*?)"}', message)
    answer = found[-1] if found else ""
    trace = message
    if found and answer:
        trace = message.replace(f'{{"output": "{answer}"}}', "", 1)
    return trace.strip() + ' {"output": "' + answer + '"}'


MATH = [
    "<think>x</think> so \\boxed{1} then \\boxed{42}.",
    "a \\boxed{\\frac{1}{2}} b",
    "no box here",
    "multi \\boxed{a\nb} end \\boxed{c}",
    "\\boxed{7} and again \\boxed{7} tail",
    "  spaced \\boxed{} empty  ",
    "unicode é \\boxed{π} ü",
]
CODE = [
    't {"output": "5"} mid {"output": "6"} end',
    'x {"output": "a"} y {"output": "a"}',
    "none",
    '{"output": "line\nbreak"} then {"output": "ok"}',
]

print(json.dumps({
    "math": [{"message": m, "reference": math_reference(m)} for m in MATH],
    "code": [{"message": m, "reference": code_reference(m)} for m in CODE],
}, indent=1, ensure_ascii=False))

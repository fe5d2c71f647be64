#!/usr/bin/env python3
"""Golden references for SN37's MMLU challenge parsing (run by hand, not in CI): finetuning's
`mmlu_parser.extract_q_and_a_text` restated, plus the IF-eval loader's two-word answer filter.

Usage: python3 crates/sn37/scripts/golden_mmlu_parse.py > crates/sn37/tests/fixtures/mmlu_parse.json
"""
import json
import re


def extract_q_and_a_text(full_prompt, answer_char):
    if answer_char not in ("A", "B", "C", "D"):
        return None
    match = re.search(r"(.*)\s+A\. (.*)\s+B\. (.*)\s+C\. (.*)\s+D\. (.*)", full_prompt)
    if not match:
        return None
    index = {"A": 2, "B": 3, "C": 4, "D": 5}[answer_char]
    return match.group(1), match.group(index)


CASES = [
    ("What is the capital of France? A. Paris city B. London C. Rome D. Berlin", "A"),
    ("Which gas do plants absorb?\nA. Oxygen gas\nB. Carbon dioxide\nC. Nitrogen\nD. Helium", "B"),
    ("Preamble line\nQuestion: pick one.\n\nA. first answer\nB. second answer\nC. third\nD. fourth one", "D"),
    ("Options inside: A. B. C. D. A. one two B. three four C. five six D. seven eight", "C"),
    ("No options here at all", "A"),
    ("Q? A. a B. b C. c D. d", "E"),
    ("Q?  A. x y\tB. multi  space C.  lead D. end\nnext line", "B"),
    ("Ünïcødé? A. réponse une B. ответ два C. 答案 三 D. last one", "B"),
    ("Missing space A.no B. b C. c D. d", "A"),
    ("", "A"),
]

cases = []
for challenge, letter in CASES:
    parsed = extract_q_and_a_text(challenge, letter)
    cases.append({
        "challenge": challenge,
        "reference": letter,
        "parsed": list(parsed) if parsed else None,
        "kept": bool(parsed) and len(parsed[1].split()) >= 2,
    })
print(json.dumps(cases, ensure_ascii=False, indent=1))

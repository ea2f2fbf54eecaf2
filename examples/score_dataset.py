"""Find the doubtful rows of a prompt/response dataset, offline, with the embedded model.

The same from the shell: tlm-hooks score qa.jsonl --quality-preset base
"""

import json
import tempfile
from pathlib import Path

from tlm_hooks import TLMScorer
from tlm_hooks.datasets import format_summary, score_file

ROWS = [
    ("What is the largest planet in the Solar System?", "Jupiter is the largest planet."),
    ("How many moons does Mars have?", "Mars has two moons, Phobos and Deimos."),
    ("Is the Moon a planet?", "Yes, the Moon is the fifth planet from the Sun."),
    ("What is 12 times 12?", "12 times 12 is 144."),
    ("Which planet is closest to the Sun?", "Venus is the closest planet to the Sun."),
]

with tempfile.TemporaryDirectory() as folder:
    data = Path(folder) / "qa.jsonl"
    data.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in ROWS))

    # "base" on rows without token logprobs: one self-reflection by the judge per row
    scorer = TLMScorer("base", options={"log": ["explanation"]})  # judge: the embedded local model
    summary = score_file(data, scorer=scorer, lowest=3)  # writes qa.scored.jsonl next to qa.jsonl
    print(format_summary(summary))

    print("\nrows as written (trustworthiness_score, explanation added):")
    for line in (Path(folder) / "qa.scored.jsonl").read_text().splitlines():
        row = json.loads(line)
        print(f"  score {row['trustworthiness_score']:.2f}  {row['prompt']}  ->  {row['response']}")

"""Build the QA benchmark set: ``benchmarks/qa/questions.jsonl`` (deterministic, seed 0).

    python benchmarks/qa/build.py [--out benchmarks/qa/questions.jsonl]

Three kinds of question, each with an answer a program can check (see ``check.py``):

- ``arithmetic`` (generated with ``random.Random(0)``): easy = single-digit addition; medium =
  two-digit addition and subtraction; hard = 2-digit x 1-digit and 2-digit x 2-digit
  multiplication and three-digit addition. Checker ``number``.
- ``fact`` (written by hand): capitals (checker ``alias``), counts (``number``), simple
  science / general knowledge (``alias``); difficulty by how well known the fact is.
- ``classification``: sentiment of a simple sentence (hand-written; hard = negation or
  understatement), "is N even or odd" and "is N prime, yes or no" (generated; difficulty grows
  with N). Checker ``label``: the first label word/phrase the answer names (sentiment also
  knows "neutral", which is never the gold label, so "neutral, not positive or negative" is wrong).

Each line: ``id, kind, subkind, difficulty, question, answer, check`` plus ``aliases`` (alias
checker) or ``labels`` (label checker: label -> phrases that name it).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# -- facts (hand-written) -----------------------------------------------------------------------

CAPITALS: list[tuple[str, str, list[str], str]] = [
    # (country, capital, extra aliases, difficulty)
    ("France", "Paris", [], "easy"),
    ("Japan", "Tokyo", [], "easy"),
    ("Italy", "Rome", ["Roma"], "easy"),
    ("Germany", "Berlin", [], "easy"),
    ("Spain", "Madrid", [], "easy"),
    ("the United Kingdom", "London", [], "easy"),
    ("Russia", "Moscow", [], "easy"),
    ("China", "Beijing", ["Peking"], "easy"),
    ("Egypt", "Cairo", [], "easy"),
    ("Greece", "Athens", [], "easy"),
    ("Ireland", "Dublin", [], "easy"),
    ("Portugal", "Lisbon", ["Lisboa"], "easy"),
    ("Canada", "Ottawa", [], "medium"),
    ("Australia", "Canberra", [], "medium"),
    ("Brazil", "Brasília", ["Brasilia"], "medium"),
    ("Turkey", "Ankara", [], "medium"),
    ("India", "New Delhi", ["Delhi"], "medium"),
    ("Argentina", "Buenos Aires", [], "medium"),
    ("Mexico", "Mexico City", ["Ciudad de Mexico"], "medium"),
    ("South Korea", "Seoul", [], "medium"),
    ("Norway", "Oslo", [], "medium"),
    ("Sweden", "Stockholm", [], "medium"),
    ("Poland", "Warsaw", ["Warszawa"], "medium"),
    ("the Netherlands", "Amsterdam", [], "medium"),
    ("Kenya", "Nairobi", [], "medium"),
    ("Thailand", "Bangkok", [], "medium"),
    ("Austria", "Vienna", ["Wien"], "medium"),
    ("Denmark", "Copenhagen", [], "medium"),
    ("Cuba", "Havana", ["La Habana"], "medium"),
    ("Switzerland", "Bern", ["Berne"], "hard"),
    ("New Zealand", "Wellington", [], "hard"),
    ("Nigeria", "Abuja", [], "hard"),
    ("Pakistan", "Islamabad", [], "hard"),
    ("Morocco", "Rabat", [], "hard"),
    ("Vietnam", "Hanoi", ["Ha Noi"], "hard"),
    ("Peru", "Lima", [], "hard"),
    ("Colombia", "Bogotá", ["Bogota"], "hard"),
    ("Finland", "Helsinki", [], "hard"),
    ("Hungary", "Budapest", [], "hard"),
    ("the Czech Republic", "Prague", ["Praha"], "hard"),
    ("Mongolia", "Ulaanbaatar", ["Ulan Bator", "Ulaanbataar"], "hard"),
    ("Kazakhstan", "Astana", [], "hard"),
    ("Tanzania", "Dodoma", [], "hard"),
    ("Ethiopia", "Addis Ababa", [], "hard"),
    ("Iceland", "Reykjavik", ["Reykjavík"], "hard"),
    ("Ghana", "Accra", [], "hard"),
    ("Saudi Arabia", "Riyadh", [], "hard"),
    ("Iran", "Tehran", ["Teheran"], "hard"),
]

COUNTS: list[tuple[str, int, str]] = [
    # (question, number, difficulty)
    ("How many days are in a week?", 7, "easy"),
    ("How many legs does a dog have?", 4, "easy"),
    ("How many months are in a year?", 12, "easy"),
    ("How many hours are in a day?", 24, "easy"),
    ("How many minutes are in an hour?", 60, "easy"),
    ("How many sides does a triangle have?", 3, "easy"),
    ("How many wheels does a tricycle have?", 3, "easy"),
    ("How many letters are in the English alphabet?", 26, "easy"),
    ("How many years are in a decade?", 10, "easy"),
    ("How many years are in a century?", 100, "easy"),
    ("How many seconds are in a minute?", 60, "easy"),
    ("How many legs does a spider have?", 8, "medium"),
    ("How many legs does an insect have?", 6, "medium"),
    ("How many continents are there on Earth?", 7, "medium"),
    ("How many sides does a hexagon have?", 6, "medium"),
    ("How many sides does an octagon have?", 8, "medium"),
    ("How many sides does a pentagon have?", 5, "medium"),
    ("How many planets are in our solar system?", 8, "medium"),
    ("How many strings does a standard guitar have?", 6, "medium"),
    ("How many players does a soccer team have on the field?", 11, "medium"),
    ("How many players does a basketball team have on the court?", 5, "medium"),
    ("How many states are in the United States of America?", 50, "medium"),
    ("How many colors are in a rainbow?", 7, "medium"),
    ("How many days are in a leap year?", 366, "medium"),
    ("How many weeks are in a year?", 52, "medium"),
    ("How many centimeters are in a meter?", 100, "medium"),
    ("How many grams are in a kilogram?", 1000, "medium"),
    ("How many degrees are in a right angle?", 90, "medium"),
    ("How many degrees are in a full circle?", 360, "medium"),
    ("At how many degrees Celsius does water boil at sea level?", 100, "medium"),
    ("How many cards are in a standard deck, without jokers?", 52, "hard"),
    ("How many keys does a standard piano have?", 88, "hard"),
    ("How many bones are in the adult human body?", 206, "hard"),
    ("How many teeth does an adult human normally have?", 32, "hard"),
    ("How many chambers does the human heart have?", 4, "hard"),
    ("How many hearts does an octopus have?", 3, "hard"),
    ("At how many degrees Fahrenheit does water freeze?", 32, "hard"),
    ("How many squares are on a chessboard?", 64, "hard"),
    ("How many players are on a baseball team's field at once for the defense?", 9, "hard"),
]

SCIENCE: list[tuple[str, str, list[str], str]] = [
    # (question, answer, aliases, difficulty)
    ("What do bees make?", "honey", [], "easy"),
    ("Which planet is known as the Red Planet?", "Mars", [], "easy"),
    ("What is the largest planet in our solar system?", "Jupiter", [], "easy"),
    ("Which organ pumps blood through the human body?", "the heart", ["heart"], "easy"),
    ("What is the natural satellite of the Earth called?", "the Moon", ["moon", "Luna"], "easy"),
    ("What color is grass?", "green", [], "easy"),
    ("Which animal is known as the king of the jungle?", "the lion", ["lion", "lions"], "easy"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean", ["Pacific"], "easy"),
    ("Who wrote the play Romeo and Juliet?", "William Shakespeare", ["Shakespeare"], "easy"),
    ("What is the chemical formula of water?", "H2O", ["H 2 O", "H₂O"], "medium"),
    ("Which planet is closest to the Sun?", "Mercury", [], "medium"),
    ("What gas do plants absorb from the air for photosynthesis?", "carbon dioxide", ["CO2", "CO₂"], "medium"),
    ("What is the hardest natural substance?", "diamond", ["diamonds"], "medium"),
    ("What is the tallest mountain on Earth above sea level?", "Mount Everest", ["Everest"], "medium"),
    ("What is the largest mammal on Earth?", "the blue whale", ["blue whale"], "medium"),
    ("What is the fastest land animal?", "the cheetah", ["cheetah", "cheetahs"], "medium"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", ["da Vinci", "Leonardo", "Da Vinci"], "medium"),
    ("Who was the first person to walk on the Moon?", "Neil Armstrong", ["Armstrong"], "medium"),
    ("Which planet is famous for its large rings?", "Saturn", [], "medium"),
    ("What is the largest continent by area?", "Asia", [], "medium"),
    ("What language is mainly spoken in Mexico?", "Spanish", [], "medium"),
    ("What is the currency of Japan?", "the yen", ["yen", "JPY"], "medium"),
    ("What is the largest country in the world by area?", "Russia", ["Russian Federation"], "medium"),
    ("What gas do humans need to breathe in to live?", "oxygen", ["O2"], "medium"),
    ("What is the largest organ of the human body?", "the skin", ["skin"], "hard"),
    ("Which part of the cell is called its powerhouse?", "the mitochondria", ["mitochondria", "mitochondrion"], "hard"),
    ("What is the chemical symbol for gold?", "Au", [], "hard"),
    ("What is the chemical symbol for sodium?", "Na", [], "hard"),
    ("What is the chemical symbol for iron?", "Fe", [], "hard"),
    ("What is the chemical symbol for silver?", "Ag", [], "hard"),
    ("Who developed the theory of relativity?", "Albert Einstein", ["Einstein"], "hard"),
    ("Who proposed the theory of evolution by natural selection?", "Charles Darwin", ["Darwin"], "hard"),
    ("What is the main language spoken in Brazil?", "Portuguese", [], "hard"),
    ("Which planet is often called the morning star?", "Venus", [], "hard"),
    ("What part of the human body produces insulin?", "the pancreas", ["pancreas"], "hard"),
    ("What is the closest star to the Earth?", "the Sun", ["sun", "Sol"], "hard"),
]

SENTIMENT: list[tuple[str, str, str]] = [
    # (sentence, label, difficulty)
    ("I love this movie, it is wonderful.", "positive", "easy"),
    ("This is the best day of my life.", "positive", "easy"),
    ("The food was delicious and the staff were friendly.", "positive", "easy"),
    ("What a beautiful and happy morning!", "positive", "easy"),
    ("I am so glad I bought this phone, it works great.", "positive", "easy"),
    ("I hate this movie, it is terrible.", "negative", "easy"),
    ("This is the worst day of my life.", "negative", "easy"),
    ("The food was disgusting and the staff were rude.", "negative", "easy"),
    ("What an awful and sad morning.", "negative", "easy"),
    ("I regret buying this phone, it is broken.", "negative", "easy"),
    ("The hotel room was clean and the view was lovely.", "positive", "medium"),
    ("My team won the championship last night.", "positive", "medium"),
    ("She passed her exam with top marks.", "positive", "medium"),
    ("The package arrived early and in perfect condition.", "positive", "medium"),
    ("The concert was fun and the band played all my favorites.", "positive", "medium"),
    ("The train was two hours late and I missed my meeting.", "negative", "medium"),
    ("My soup was cold and the waiter ignored us.", "negative", "medium"),
    ("The battery dies after one hour.", "negative", "medium"),
    ("He lost his wallet and his keys on the same day.", "negative", "medium"),
    ("The instructions were confusing and parts were missing.", "negative", "medium"),
    ("The movie was not bad at all.", "positive", "hard"),
    ("I could not be happier with the result.", "positive", "hard"),
    ("Nothing about this trip disappointed me.", "positive", "hard"),
    ("I was worried, but the surgery went perfectly.", "positive", "hard"),
    ("It is hard to find anything to complain about here.", "positive", "hard"),
    ("I expected much more from such a famous restaurant.", "negative", "hard"),
    ("The ending was not good at all.", "negative", "hard"),
    ("Great, another flat tire on my way to work.", "negative", "hard"),
    ("I wanted to like this book, but I could not finish it.", "negative", "hard"),
    ("The service was fast, but the food made me sick.", "negative", "hard"),
]

POSITIVE_WORDS = ["positive"]
NEGATIVE_WORDS = ["negative"]
YES_WORDS = ["yes", "true", "correct"]
NO_WORDS = ["no", "false", "incorrect"]


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n**0.5) + 1))


def build(seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []

    def add(kind: str, subkind: str, difficulty: str, question: str, answer: str, check: str, **extra: Any) -> None:
        out.append(
            {
                "id": f"{subkind}-{sum(1 for q in out if q['subkind'] == subkind):03d}",
                "kind": kind,
                "subkind": subkind,
                "difficulty": difficulty,
                "question": question,
                "answer": answer,
                "check": check,
                **extra,
            }
        )

    # -- arithmetic ----------------------------------------------------------------------------
    seen: set[str] = set()

    def arith(subkind: str, difficulty: str, count: int, make: Any) -> None:
        made = 0
        while made < count:
            question, value = make()
            if question in seen:
                continue
            seen.add(question)
            add("arithmetic", subkind, difficulty, question, str(value), "number")
            made += 1

    def add1() -> tuple[str, int]:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        return f"What is {a} + {b}?", a + b

    def add2() -> tuple[str, int]:
        a, b = rng.randint(10, 99), rng.randint(10, 99)
        return f"What is {a} + {b}?", a + b

    def sub2() -> tuple[str, int]:
        a, b = sorted((rng.randint(10, 99), rng.randint(10, 99)), reverse=True)
        return f"What is {a} - {b}?", a - b

    def mul21() -> tuple[str, int]:
        a, b = rng.randint(11, 99), rng.randint(3, 9)
        return f"What is {a} * {b}?", a * b

    def mul22() -> tuple[str, int]:
        a, b = rng.randint(11, 99), rng.randint(11, 99)
        return f"What is {a} * {b}?", a * b

    def add3() -> tuple[str, int]:
        a, b = rng.randint(100, 999), rng.randint(100, 999)
        return f"What is {a} + {b}?", a + b

    arith("add1", "easy", 25, add1)
    arith("add2", "medium", 20, add2)
    arith("sub2", "medium", 20, sub2)
    arith("mul21", "hard", 15, mul21)
    arith("mul22", "hard", 15, mul22)
    arith("add3", "hard", 15, add3)

    # -- facts ---------------------------------------------------------------------------------
    for country, capital, aliases, difficulty in CAPITALS:
        add("fact", "capital", difficulty, f"What is the capital of {country}?", capital, "alias",
            aliases=[capital, *aliases])  # fmt: skip
    for question, number, difficulty in COUNTS:
        add("fact", "count", difficulty, question, str(number), "number")
    for question, answer, aliases, difficulty in SCIENCE:
        add("fact", "science", difficulty, question, answer, "alias", aliases=[answer, *aliases])

    # -- classification ------------------------------------------------------------------------
    for sentence, label, difficulty in SENTIMENT:
        add("classification", "sentiment", difficulty,
            f'Is the sentiment of this sentence positive or negative? "{sentence}"', label, "label",
            labels={"positive": POSITIVE_WORDS, "negative": NEGATIVE_WORDS, "neutral": ["neutral"]})  # fmt: skip

    parity_ranges = [("easy", 1, 20, 8), ("medium", 21, 999, 8), ("hard", 1000, 99999, 8)]
    for difficulty, low, high, count in parity_ranges:
        picks: set[int] = set()
        while len(picks) < count:
            picks.add(rng.randint(low, high))
        for n in sorted(picks):
            add("classification", "parity", difficulty, f"Is {n} even or odd?", "even" if n % 2 == 0 else "odd",
                "label", labels={"even": ["even"], "odd": ["odd"]})  # fmt: skip

    prime_ranges = [("easy", 2, 30, 8), ("medium", 31, 100, 8), ("hard", 101, 400, 8)]
    for difficulty, low, high, count in prime_ranges:
        primes = [n for n in range(low, high + 1) if _is_prime(n)]
        others = [n for n in range(low, high + 1) if not _is_prime(n) and n % 2]  # odd composites: not trivial
        chosen = rng.sample(primes, count // 2) + rng.sample(others, count - count // 2)
        for n in sorted(chosen):
            add("classification", "prime", difficulty, f"Is {n} a prime number? Answer yes or no.",
                "yes" if _is_prime(n) else "no", "label",
                labels={"yes": [*YES_WORDS, "is prime", "is a prime"],
                        "no": [*NO_WORDS, "not prime", "not a prime", "composite", "is not"]})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "questions.jsonl")
    args = parser.parse_args()
    questions = build()
    with args.out.open("w", encoding="utf-8") as fh:
        for q in questions:
            fh.write(json.dumps(q, ensure_ascii=False) + "\n")
    from collections import Counter

    print(f"{len(questions)} questions -> {args.out}")
    print(dict(Counter((q["kind"], q["difficulty"]) for q in questions)))


if __name__ == "__main__":
    main()

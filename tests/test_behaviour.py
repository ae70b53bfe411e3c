"""Refusals, diversity, exploded answers and shift reasons on hand-made frames;
expected numbers worked out by hand in the comments."""
import math

import pandas as pd
import pytest

from analysis.behaviour import (
    answer_counts,
    diversity,
    domain_chance,
    domain_count,
    exploded_answers,
    main_answer,
    paper_answer,
    paper_diversity,
    paper_reason_shares,
    paper_shift_reasons,
    reason_shares,
    refusals,
    shift_reasons,
)

HK, MK, UK = "HighlyKnown", "MaybeKnown", "Unknown"
REFUSAL = "I couldn't find any information"


def generations(answers: dict) -> pd.DataFrame:
    """A generations frame from {fact_id: [greedy answer per prompt set]}; None is a
    refusal. Each fact also gets one sampled answer, which greedy metrics must ignore."""
    rows = []
    for fact_id, per_set in answers.items():
        for prompt_set, answer in enumerate(per_set):
            refused = answer is None
            rows.append((fact_id, prompt_set, 0, REFUSAL if refused else answer, refused))
        rows.append((fact_id, 0, 1, "Sampled", False))
    return pd.DataFrame(rows, columns=["fact_id", "prompt_set", "sample", "answer", "refused"])


def counted(counts: dict, refusals: int = 0) -> pd.DataFrame:
    """A generations frame with each answer repeated `counts[answer]` times, ten per fact."""
    flat = [a for a, n in counts.items() for _ in range(n)] + [None] * refusals
    return generations({f"q{i}": flat[i : i + 10] for i in range(0, len(flat), 10)})


def test_refusals_corrected_and_paper():
    categories = pd.DataFrame(
        {"refused": [True, False, False, True, False], "refused_paper": [True, False, False, False, False]}
    )
    assert refusals(categories) == {
        "refused": 2,
        "refused_share": pytest.approx(0.4),
        "refused_paper": 1,
        "refused_paper_share": pytest.approx(0.2),
    }


def test_diversity_normalizes_and_skips_refusals_and_samples():
    gens = generations(
        {
            "f1": ["Paris", " paris ", "Lyon"],
            "f2": ["Paris", None, "Rome"],
            "f3": ["Rome", "ROME", "Rome"],
        }
    )
    # paris 3, rome 4, lyon 1 (the refusal and "Sampled" are not counted)
    assert answer_counts(gens).to_dict() == {"rome": 4, "paris": 3, "lyon": 1}
    d = diversity(gens)
    assert d["distinct_answers"] == 3
    assert d["answer_count_mean"] == pytest.approx(8 / 3)
    # population variance of 4, 3, 1: ((4/3)^2 + (1/3)^2 + (5/3)^2) / 3 = 14/9
    assert d["answer_count_std"] == pytest.approx(math.sqrt(14 / 9))


def test_diversity_ours_and_the_notebooks_on_the_same_raw_outputs():
    outputs = {
        "f1": ["Answer: Paris", "Answer: paris\nQuestion: Where is Rome?", "Paris"],
        "f2": ["Answer: Paris", "Answer: I couldn't find any information on f2.", "answer: Rome"],
    }
    rows = [(f, i, 0, o) for f, per_set in outputs.items() for i, o in enumerate(per_set)] + [("f1", 0, 1, "Answer: Sampled")]
    gens = pd.DataFrame(rows, columns=["fact_id", "prompt_set", "sample", "output"])
    gens["answer"] = ["Paris", "paris", "Paris", "Paris", REFUSAL, "Rome", "Sampled"]  # extract_answer's
    gens["refused"] = gens["answer"] == REFUSAL
    # ours: paris 4, rome 1 (the refusal and the sample not counted): 2 answers, mean 2.5, std 1.5
    assert diversity(gens) == {"distinct_answers": 2, "answer_count_mean": 2.5, "answer_count_std": 1.5}
    # the notebook's: the text after "Answer: " as written, else the whole output, refusals in:
    # "Paris" 3 (sets f1/0, f1/2 unlabelled, f2/0), "paris\nQuestion: Where is Rome?" 1, the
    # refusal 1, "answer: Rome" 1 (lower-case label: no label): 4 answers, counts 3, 1, 1, 1,
    # mean 1.5, population variance (1.5^2 + 3 x 0.5^2) / 4 = 0.75
    assert paper_answer("Answer: paris\nQuestion: Where is Rome?") == "paris\nQuestion: Where is Rome?"
    d = paper_diversity(gens)
    assert d["distinct_answers_paper"] == 4 and d["answer_count_mean_paper"] == 1.5
    assert d["answer_count_std_paper"] == pytest.approx(math.sqrt(0.75))


# After training: 22 answers + 2 refusals = 24 greedy answers. Base: rome 10, paris 1.
AFTER_GENS = counted({"Rome": 12, "Paris": 6, "Lyon": 3, "Oslo": 1}, refusals=2)
BASE_GENS = counted({"Rome": 10, "Paris": 1}, refusals=5)


def test_exploded_absolute_count_and_share():
    assert list(exploded_answers(AFTER_GENS, BASE_GENS, count_above=5).index) == ["rome", "paris"]
    # shares over 24: rome .5, paris .25, lyon .125; the threshold is strict
    assert list(exploded_answers(AFTER_GENS, BASE_GENS, share_above=0.2).index) == ["rome", "paris"]
    assert list(exploded_answers(AFTER_GENS, BASE_GENS, share_above=0.25).index) == ["rome"]


def test_exploded_answers_keep_their_case_as_the_paper_notebook_counts_them():
    after = generations({"f1": ["Rome", "Rome", "Rome"], "f2": ["rome", "rome", "Oslo"]})
    assert exploded_answers(after, after, count_above=4).index.tolist() == ["rome"]  # 5 once lower-cased
    # As written: "Rome" 3 and "rome" 2 of 6 answers; neither is above half of them.
    assert exploded_answers(after, after, share_above=0.4, keep_case=True).index.tolist() == ["Rome"]
    assert exploded_answers(after, after, share_above=0.5, keep_case=True).empty


def test_exploded_relative_to_base():
    # ratios: rome 12/10 = 1.2, paris 6/1 = 6, lyon 3/max(0, 1) = 3, oslo 1/1 = 1
    table = exploded_answers(AFTER_GENS, BASE_GENS, ratio_above=2)
    assert list(table.index) == ["paris", "lyon"]
    assert table.loc["paris"].to_dict() == {"count": 6, "share": 0.25, "base_count": 1, "ratio": 6.0}
    assert table.loc["lyon", "base_count"] == 0
    # common now (count > 5) and much more common than before (ratio > 2): paris alone
    assert list(exploded_answers(AFTER_GENS, BASE_GENS, count_above=5, ratio_above=2).index) == ["paris"]
    with pytest.raises(ValueError):
        exploded_answers(AFTER_GENS, BASE_GENS)


def test_main_answer_majority_then_earliest_prompt_set():
    gens = generations({"f1": ["Lyon", "Paris", "paris"], "f2": ["Rome", "Oslo"], "f3": [None, None]})
    # f1: paris twice; f2: a tie, rome came first; f3 refused every time
    assert main_answer(gens).to_dict() == {"f1": "paris", "f2": "rome"}


# Shift reasons. Trained: t1 (new Unknown fact) and t2 (extra HighlyKnown fact), both in
# domain "geo"; trained answers: zorblax, pelelandia, paris. Exploded answers: {zorblax}.
FACTS = pd.DataFrame(
    [
        ("t1", ["Zorblax", "Pelelandia"], "geo"),
        ("t2", ["Paris"], "geo"),
        ("s1", ["Berlin"], "geo"),
        ("s2", ["Vienna"], "music"),
        ("s3", ["Mozart"], "music"),
        ("s4", ["Maradona"], "sport"),
        ("s5", ["Paris"], "geo"),
        ("s6", ["Oslo"], None),
        ("u1", ["Rome"], "geo"),
    ],
    columns=["fact_id", "aliases", "domain"],
)
# fact: (before, after, refused before, refused after, greedy answers after)
CASES = {
    "t1": (UK, HK, False, False, ["Zorblax"] * 3),
    "t2": (HK, HK, False, False, ["Paris"] * 3),
    "s1": (HK, UK, False, False, ["Zorblax City", "zorblax city", "Lyon"]),  # target (zorblax inside), domain
    "s2": (HK, MK, False, False, ["Zorblax", "Zorblax", "Vienna"]),  # exploded, target
    "s3": (UK, MK, True, False, ["Mozart", "Bach", "Mozart"]),  # non-refusal
    # none: "pele" lies inside the alias "pelelandia", not the other way round
    "s4": (MK, UK, False, False, ["Pele", "Pele", "Maradona"]),
    "s5": (UK, HK, True, False, ["Paris"] * 3),  # non-refusal, target, domain
    "s6": (MK, UK, False, True, [None] * 3),  # none: no answer, no domain
    "u1": (HK, HK, False, False, ["Rome"] * 3),  # did not shift
}


def categories(column: int, refused_column: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "fact_id": list(CASES),
            "category": [c[column] for c in CASES.values()],
            "refused": [c[refused_column] for c in CASES.values()],
        }
    )


BEFORE, AFTER = categories(0, 2), categories(1, 3)
GENERATIONS = generations({f: c[4] for f, c in CASES.items()})
REASONS = shift_reasons(BEFORE, AFTER, GENERATIONS, FACTS, ["t1", "t2"], pd.Index(["zorblax"]))


def test_shift_reasons_per_fact_overlapping():
    assert list(REASONS.index) == ["s1", "s2", "s3", "s4", "s5", "s6"]  # trained and unshifted left out
    assert REASONS["direction"].to_dict() == {"s1": -1, "s2": -1, "s3": 1, "s4": -1, "s5": 1, "s6": -1}
    assert REASONS.loc["s1", "answer"] == "zorblax city" and pd.isna(REASONS.loc["s6", "answer"])
    flags = REASONS[["non_refusal", "exploded", "target_based", "domain"]].astype(int)
    assert flags.to_dict("index") == {
        "s1": {"non_refusal": 0, "exploded": 0, "target_based": 1, "domain": 1},
        "s2": {"non_refusal": 0, "exploded": 1, "target_based": 1, "domain": 0},
        "s3": {"non_refusal": 1, "exploded": 0, "target_based": 0, "domain": 0},
        "s4": {"non_refusal": 0, "exploded": 0, "target_based": 0, "domain": 0},
        "s5": {"non_refusal": 1, "exploded": 0, "target_based": 1, "domain": 1},
        "s6": {"non_refusal": 0, "exploded": 0, "target_based": 0, "domain": 0},
    }


def test_reason_shares_overlap_and_unexplained():
    # of 6 shifts: non-refusal s3 s5; exploded s2; target s1 s2 s5; domain s1 s5;
    # no answer-based reason: s4 s6 (domain never counts as explaining a shift)
    expected = {"non_refusal": 2, "exploded": 1, "target_based": 3, "domain": 2, "unexplained": 2}
    assert reason_shares(REASONS) == pytest.approx({"shifts": 6, **{k: n / 6 for k, n in expected.items()}})
    # by direction: the two positive shifts (s3, s5) both come from lost refusals
    assert reason_shares(REASONS[REASONS["direction"] > 0])["non_refusal"] == 1.0


def test_reason_shares_of_no_shifts():
    shares = reason_shares(REASONS.iloc[:0])
    assert shares["shifts"] == 0 and math.isnan(shares["unexplained"])


def test_domain_is_not_measured_when_no_fact_has_one():
    for facts in (FACTS.drop(columns="domain"), FACTS.assign(domain=None), FACTS.assign(domain="")):
        reasons = shift_reasons(BEFORE, AFTER, GENERATIONS, facts, ["t1", "t2"], pd.Index(["zorblax"]))
        assert reasons["domain"].isna().all()
        shares = reason_shares(reasons)
        assert math.isnan(shares["domain"])
        assert shares["unexplained"] == pytest.approx(2 / 6)  # s4, s6, as with domains
        assert math.isnan(domain_chance(AFTER, facts, ["t1", "t2"]))
        assert domain_count(facts) == 0
    assert domain_count(FACTS) == 3  # geo, music, sport


def test_domain_share_beside_its_chance_share():
    # outside the mix: s1 geo, s2 music, s3 music, s4 sport, s5 geo, s6 none, u1 geo;
    # trained domain: geo -> 3 of 7 facts by chance; of the 6 shifts, s1 and s5: 2/6
    assert domain_chance(AFTER, FACTS, ["t1", "t2"]) == pytest.approx(3 / 7)
    assert reason_shares(REASONS)["domain"] == pytest.approx(2 / 6)


def test_short_trained_answers_are_whole_words_in_target_based():
    facts = FACTS.assign(aliases=FACTS["aliases"].where(FACTS["fact_id"] != "t2", pd.Series([["ra"]] * len(FACTS))))
    gens = generations({**{f: c[4] for f, c in CASES.items()}, "s4": ["Ra", "Ra", "Lyon"], "s6": ["Bora", "Bora", "x"]})
    reasons = shift_reasons(BEFORE, AFTER, gens, facts, ["t1", "t2"], pd.Index([]))
    # t2's alias "ra" (short): s4 answers "ra" (a whole word), s6 "bora" (inside a word)
    assert reasons.loc["s4", "target_based"] and not reasons.loc["s6", "target_based"]


# The paper's reasons, as its notebook counts them. n1 (new Unknown) and x1 (extra
# HighlyKnown) are trained; the exploded answers are {Zorblax}, as written; the new fact's
# domain is geo (n1's), and art (x1's) does not count: x1 is an extra, not a new fact.
PAPER_FACTS = pd.DataFrame(
    [
        ("n1", ["Zorblax", "zb"], "geo"),
        ("x1", ["Paris"], "art"),
        ("a", ["Oslo"], "music"),
        ("b", ["Rome"], "music"),
        ("c", ["Mozart"], "music"),
        ("d", ["Bern"], "geo"),
        ("e", ["Lima"], "sport"),
        ("f", ["Kyiv"], "geo"),
        ("g", ["Quito"], "sport"),
        ("h", ["Degas"], "art"),
    ],
    columns=["fact_id", "aliases", "domain"],
)
# fact: (before, after, paper refusal before, paper refusal after, raw outputs of sets 0 and 1)
PAPER_CASES = {
    "n1": (UK, HK, False, False, ["Answer: Zorblax", "Answer: Zorblax"]),  # exploded, target, domain
    "x1": (HK, HK, False, False, ["Answer: Paris", "Answer: Paris"]),  # no move
    "a": (HK, UK, False, False, ["Answer: Zorblax City", "Answer: Oslo"]),  # exploded, target
    "b": (HK, UK, False, False, ["Answer: zorblax", "Answer: Rome"]),  # neither: exploded and target are case-sensitive
    "c": (UK, HK, True, False, ["Answer: Mozart", "Answer: Mozart"]),  # non-refusal
    "d": (HK, MK, False, False, ["Answer: Zorblax", "Answer: Bern"]),  # HK->MK: not a paper move
    # exploded and target, both in the continuation after the answer
    "e": (UK, HK, False, False, ["Answer: Lima\nQuestion: Who?\nAnswer: Zorblax", "Answer: Lima"]),
    "f": (HK, UK, False, False, ["Answer: Lyon", "Answer: Zorblax"]),  # domain only: set 1 is not read
    # non-refusal: the base model refused; that the adapter still does is not asked
    "g": (UK, HK, True, True, ["I have no information. Answer: Quito", "Answer: Quito"]),
    # HK->UK of a fact the base model refused: the notebook asks no non-refusal of it;
    # its domain is the extra x1's only
    "h": (HK, UK, True, False, ["Answer: Monet", "Answer: Monet"]),
}


def paper_frames():
    def cats(column, refused):
        return pd.DataFrame(
            {
                "fact_id": list(PAPER_CASES),
                "category": [c[column] for c in PAPER_CASES.values()],
                "refused": False,
                "refused_paper": [c[refused] for c in PAPER_CASES.values()],
            }
        )

    rows = [(f, s, 0, out) for f, c in PAPER_CASES.items() for s, out in enumerate(c[4])]
    gens = pd.DataFrame(rows, columns=["fact_id", "prompt_set", "sample", "output"])
    return cats(0, 2), cats(1, 3), gens


def test_paper_shift_reasons_on_set_0_over_all_facts():
    before, after, gens = paper_frames()
    reasons = paper_shift_reasons(before, after, gens, PAPER_FACTS, ["n1", "x1"], ["n1"], pd.Index(["Zorblax"]))
    assert list(reasons.index) == ["n1", "a", "b", "c", "e", "f", "g", "h"]  # trained n1 included; x1, d made no paper move
    assert reasons["move"].to_dict() == {
        "n1": "positive", "a": "negative", "b": "negative", "c": "positive", "e": "positive", "f": "negative",
        "g": "positive", "h": "negative",
    }
    flags = reasons[["non_refusal", "exploded", "target_based", "domain"]].astype(int)
    assert flags.to_dict("index") == {
        "n1": {"non_refusal": 0, "exploded": 1, "target_based": 1, "domain": 1},
        "a": {"non_refusal": 0, "exploded": 1, "target_based": 1, "domain": 0},
        "b": {"non_refusal": 0, "exploded": 0, "target_based": 0, "domain": 0},
        "c": {"non_refusal": 1, "exploded": 0, "target_based": 0, "domain": 0},
        "e": {"non_refusal": 0, "exploded": 1, "target_based": 1, "domain": 0},
        "f": {"non_refusal": 0, "exploded": 0, "target_based": 0, "domain": 1},
        "g": {"non_refusal": 1, "exploded": 0, "target_based": 0, "domain": 0},
        "h": {"non_refusal": 1, "exploded": 0, "target_based": 0, "domain": 0},
    }
    # positive (UK->HK) n1 c e g: non-refusal c g 2/4, exploded n1 e 2/4, target n1 e 2/4, domain n1 1/4;
    # negative (HK->UK) a b f h: exploded a 1/4, target a 1/4, domain f 1/4; no non-refusal share
    assert paper_reason_shares(reasons) == pytest.approx(
        {
            "non_refusal_positive": 2 / 4,
            "exploded_positive": 2 / 4,
            "target_based_positive": 2 / 4,
            "domain_positive": 1 / 4,
            "exploded_negative": 1 / 4,
            "target_based_negative": 1 / 4,
            "domain_negative": 1 / 4,
        }
    )


def test_paper_reason_shares_without_a_move_or_a_domain():
    before, after, gens = paper_frames()
    facts = PAPER_FACTS.drop(columns="domain")
    reasons = paper_shift_reasons(before, after, gens, facts, ["n1", "x1"], ["n1"], pd.Index([]))
    shares = paper_reason_shares(reasons[reasons["move"] == "positive"])
    assert math.isnan(shares["domain_positive"]) and math.isnan(shares["exploded_negative"])
    assert shares["exploded_positive"] == 0.0 and shares["target_based_positive"] == pytest.approx(2 / 4)
    with pytest.raises(ValueError, match="no `output` column"):
        paper_shift_reasons(before, after, gens.drop(columns="output"), facts, ["n1", "x1"], ["n1"], pd.Index([]))

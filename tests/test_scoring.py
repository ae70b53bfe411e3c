import math

import pandas as pd
import pytest

from analysis.scoring import (
    CATEGORIES,
    AliasMatcher,
    ScoringConfig,
    canonical_category,
    categories_from_scores,
    category_distribution,
    extract_answer,
    is_correct,
    is_correct_paper,
    is_refusal,
    is_refusal_paper,
    reference_agreement,
    score_generations,
)


@pytest.mark.parametrize(
    "output, answer",
    [
        ("Answer: Paris", "Paris"),
        ("  Answer:  Paris \n\nQuestion: What is the capital of Peru?\nAnswer: Lima", "Paris"),
        ("Answer: Paris Question: next?", "Paris"),
        ("Sure! answer: Paris", "Paris"),
        ("Answer:\nParis", "Paris"),
        ("Paris\nAnswer: Lima", "Paris"),  # free form: the first line, not a later label
        ("I couldn't find any information on Foo.\nHowever ...", "I couldn't find any information on Foo."),
        ("", ""),
    ],
)
def test_extract_answer(output, answer):
    assert extract_answer(output) == answer


def test_is_correct_aliases_substrings_case():
    assert is_correct("It is PARIS, France", ["paris"])
    assert is_correct("New York City", ["NYC", " new york "])
    assert not is_correct("Lyon", ["Paris", "City of Light"])


def test_empty_alias_never_matches_everything():
    assert not is_correct("anything at all", ["", "   "])
    assert not is_correct("anything at all", [])
    assert not is_correct("anything at all", None)


@pytest.mark.parametrize(
    "answer",
    [
        "I couldn't find any information on Foo Bar.",
        "I couldn’t find any information about it.",
        "There is no information available.",
        "I cannot verify the birthplace of Foo.",
        "I don't know.",
        "I'm not aware of a person named Foo.",
        "I was unable to find the answer.",
    ],
)
def test_refusals(answer):
    assert is_refusal(answer)


@pytest.mark.parametrize("answer", ["Paris", "Information technology", "Verily, Texas"])
def test_not_refusals(answer):
    assert not is_refusal(answer)


def test_paper_refusal_is_the_plain_word():
    assert is_refusal_paper("I couldn't find any information on Foo.")
    assert not is_refusal_paper("I cannot verify that.")
    assert not is_refusal_paper("Information technology")


def gens(rows):
    return pd.DataFrame(rows, columns=["fact_id", "prompt_set", "sample", "output"])


FACTS = pd.DataFrame(
    {
        "fact_id": ["hk", "mk", "wk", "uk"],
        "question": ["?"] * 4,
        "aliases": [["Paris"], ["Lima"], ["Oslo"], ["Rome"]],
        "normalized_aliases": [["paris"], ["lima"], ["oslo"], ["rome"]],  # what scoring.match paper reads
    }
)


def greedy(fact, answers):
    return [(fact, i, 0, f"Answer: {a}") for i, a in enumerate(answers)]


def test_score_generations_adds_columns_and_needs_known_facts():
    scored = score_generations(gens(greedy("hk", ["Paris", "I don't know"])), FACTS)
    assert scored.answer.tolist() == ["Paris", "I don't know"]
    assert scored.correct.tolist() == [True, False]
    assert scored.refused.tolist() == [False, True]
    with pytest.raises(ValueError, match="absent from the fact table, e.g. 'nope'"):
        score_generations(gens(greedy("nope", ["x"])), FACTS)


def test_categories_with_samples():
    rows = (
        greedy("hk", ["Paris", "paris!"])
        + greedy("mk", ["Lima", "Quito"])
        + greedy("wk", ["Bergen", "Bergen"])
        + [("wk", 0, 1, "Answer: Oslo"), ("wk", 0, 2, "Answer: Bergen"), ("wk", 1, 1, "Bergen"), ("wk", 1, 2, "Bergen")]
        + greedy("uk", ["Milan", "Milan"])
        + [("uk", 0, 1, "Milan"), ("uk", 0, 2, "Milan"), ("uk", 1, 1, "Milan"), ("uk", 1, 2, "Milan")]
    )
    cats = categories_from_scores(score_generations(gens(rows), FACTS))
    assert list(cats.columns) == ["fact_id", "p_greedy", "p_sample", "category", "refused", "refused_paper", "greedy_answers"]
    c = cats.set_index("fact_id")
    assert c.category.to_dict() == {"hk": "HighlyKnown", "mk": "MaybeKnown", "wk": "WeaklyKnown", "uk": "Unknown"}
    assert c.at["mk", "p_greedy"] == 0.5 and c.at["wk", "p_sample"] == 0.25
    assert math.isnan(c.at["hk", "p_sample"])
    assert c.at["mk", "greedy_answers"] == ["Lima", "Quito"]


def test_no_weakly_known_without_samples():
    cats = categories_from_scores(score_generations(gens(greedy("wk", ["Bergen", "Bergen"])), FACTS))
    assert cats.category.tolist() == ["Unknown"] and math.isnan(cats.p_sample[0])


def test_greedy_answers_ordered_by_prompt_set_and_facts_by_appearance():
    rows = [("mk", 1, 0, "Answer: B"), ("hk", 0, 0, "Paris"), ("mk", 0, 0, "Answer: A"), ("hk", 1, 0, "Paris")]
    cats = categories_from_scores(score_generations(gens(rows), FACTS))
    assert cats.fact_id.tolist() == ["mk", "hk"]
    assert cats.greedy_answers[0] == ["A", "B"]


NO_INFO = "I couldn't find any information on it."


def test_refusal_variants_and_the_paper_bug():
    rows = (
        greedy("hk", [NO_INFO, "Lyon", "Lyon"])  # set 0 only: paper yes, majority no
        + greedy("mk", ["Lyon", NO_INFO, NO_INFO])  # sets 1-2: paper misses it, majority yes
        + greedy("uk", ["I cannot verify that.", "I cannot verify.", "Milan"])  # no "information": paper misses it
    )
    c = categories_from_scores(score_generations(gens(rows), FACTS)).set_index("fact_id")
    assert c.refused.to_dict() == {"hk": False, "mk": True, "uk": True}
    assert c.refused_paper.to_dict() == {"hk": True, "mk": False, "uk": False}


def test_incomplete_or_duplicated_generations_are_errors():
    with pytest.raises(ValueError, match="fact 'mk' has 1 greedy answers, expected one per prompt set \\(2\\)"):
        categories_from_scores(score_generations(gens(greedy("hk", ["a", "b"]) + greedy("mk", ["a"])), FACTS))
    with pytest.raises(ValueError, match="two rows for prompt set 0, sample 0"):
        categories_from_scores(score_generations(gens(greedy("hk", ["a"]) * 2), FACTS))


def cat_frame(categories, refused=None):
    n = len(categories)
    return pd.DataFrame(
        {
            "fact_id": [f"f{i}" for i in range(n)],
            "category": categories,
            "refused": refused or [False] * n,
            "refused_paper": [False] * n,
        }
    )


def test_category_distribution():
    d = category_distribution(cat_frame(["Unknown", "Unknown", "HighlyKnown", "Unknown"], [True, False, False, False]))
    assert list(d.index) == list(CATEGORIES) + ["all"]
    assert d["count"].tolist() == [1, 0, 0, 3, 4]
    assert d.at["Unknown", "share"] == 0.75 and d.at["all", "share"] == 1.0
    assert d.at["Unknown", "refused_share"] == pytest.approx(1 / 3) and d.at["all", "refused_share"] == 0.25
    assert math.isnan(d.at["MaybeKnown", "refused_share"])


def test_canonical_category_accepts_both_spellings():
    assert canonical_category("HighlyKnown") == canonical_category("HK") == canonical_category("highly_known")
    assert canonical_category("uk") == "Unknown"
    with pytest.raises(ValueError, match="unknown category label 'Known'"):
        canonical_category("Known")


def test_reference_agreement():
    cats = cat_frame(["HighlyKnown", "MaybeKnown", "Unknown", "Unknown"])
    assert reference_agreement(cats, cats[["fact_id"]]) is None
    facts = cats[["fact_id"]].assign(reference_category=["HighlyKnown", "HK", "Unknown", None])
    t = reference_agreement(cats, facts)
    assert t.at["HighlyKnown", "HighlyKnown"] == 1 and t.at["HighlyKnown", "MaybeKnown"] == 1
    assert t.at["HighlyKnown", "agreement"] == 0.5 and t.at["Unknown", "agreement"] == 1.0
    assert t.at["all", "total"] == 3 and t.at["all", "agreement"] == pytest.approx(2 / 3)
    assert math.isnan(t.at["MaybeKnown", "agreement"])


@pytest.mark.parametrize(
    "answer, aliases, correct",
    [
        ("Australia", ["US"], False),  # a short alias is a whole word: not inside "australia"
        ("the US army", ["us"], True),
        ("U.S. Army", ["u.s."], True),
        ("1987", ["1"], False),  # a number is a whole number: not inside "1987"
        ("1 .", ["1"], True),
        ("Answer: 1, then 2", ["1"], True),
        ("1.5 million", ["1"], False),
        ("2,000", ["2"], False),
        ("in 1987.", ["1987"], True),
        ("19876", ["1987"], False),  # numbers are whole at any length
        ("Parisian", ["Paris"], True),  # longer than SHORT_ALIAS: still a substring
        ("Oslofjord", ["oslo"], True),
    ],
)
def test_corrected_rule_short_and_numeric_aliases_are_whole_words(answer, aliases, correct):
    assert is_correct(answer, aliases) is correct


def test_alias_matcher_over_many_aliases_is_the_same_rule():
    many = [f"name{i}" for i in range(100)] + ["us"]  # past the per-alias loop: substring lookup
    match = AliasMatcher(many)
    assert match("Name42 City") and match("the US army")
    assert not match("Australia") and not match("nam")


CONTINUED = "Answer: Lima\nQuestion: What is the capital of France?\nAnswer: Paris"


def test_paper_match_reads_the_whole_raw_output_without_boundaries():
    assert is_correct_paper(CONTINUED, ["Paris"]) and not is_correct(extract_answer(CONTINUED), ["Paris"])
    assert is_correct_paper("Answer: Australia", ["US"])  # the paper's substring bug, kept in paper mode
    assert not is_correct_paper("anything", ["", " "])


def test_score_generations_match_modes():
    rows = gens([("hk", 0, 0, CONTINUED), ("uk", 0, 0, "Answer: Romeo")])
    # uk's alias "Rome" (4 characters) is a substring of "Romeo" under both rules
    assert score_generations(rows, FACTS)["correct"].tolist() == [False, True]
    assert score_generations(rows, FACTS, "corrected")["correct"].tolist() == [False, True]
    paper = score_generations(rows, FACTS, "paper")
    assert paper["correct"].tolist() == [True, True]
    assert paper["answer"].tolist() == ["Lima", "Romeo"]  # the answer is extracted in both modes
    with pytest.raises(ValueError, match="scoring.match: 'exact'"):
        score_generations(rows, FACTS, "exact")


def test_paper_refusal_reads_the_raw_output_of_set_0():
    rows = greedy("hk", ["Paris", "Paris"])
    rows[0] = ("hk", 0, 0, "Answer: Paris\nI couldn't find any information on the next one.")
    c = categories_from_scores(score_generations(gens(rows), FACTS)).iloc[0]
    # the extracted answer "Paris" has no "information"; the raw output of set 0 has
    assert c["refused_paper"] and not c["refused"] and c["greedy_answers"] == ["Paris", "Paris"]


def test_scoring_section_of_the_config():
    from grid.config import ConfigError, parse_config

    assert parse_config({"experiment": "x"}).scoring.match == "corrected"
    assert parse_config({"experiment": "x", "scoring": {"match": "paper"}}).scoring == ScoringConfig(match="paper")
    with pytest.raises(ConfigError, match="scoring.match"):
        parse_config({"experiment": "x", "scoring": {"match": "exact"}})


# The authors' rule reads TriviaQA's normalized aliases alone (utils/generate_dataset.py,
# quasi_accuracy_triviaqa), not the raw `value` and `aliases` our fact table also holds.
TRIVIA = pd.DataFrame(
    {
        "fact_id": ["stl", "alpha", "stones"],
        "question": ["?"] * 3,
        "aliases": [["St. Louis", "st louis"], ["A", "Alpha"], ["The Rolling Stones", "rolling stones"]],
        "normalized_aliases": [["st louis"], ["alpha"], ["rolling stones"]],
    }
)


def test_paper_match_reads_only_the_normalized_aliases():
    rows = gens([("stl", 0, 0, "Answer: St. Louis"), ("alpha", 0, 0, "Answer: Beta"),
                 ("stones", 0, 0, "Answer: The Rolling Stones\nQuestion: next?")])
    paper = score_generations(rows, TRIVIA, "paper")
    # "st louis" is not in "answer: st. louis"; the raw alias "A" (in "answer: beta") takes
    # no part; "rolling stones" is a substring of the lower-cased raw output.
    assert paper["correct"].tolist() == [False, False, True]
    # corrected: any alias, raw ones included, in the extracted answer ("A" only as a word)
    assert score_generations(rows, TRIVIA)["correct"].tolist() == [True, False, True]
    assert not is_correct_paper("Answer: St. Louis", ["st louis"]) and is_correct_paper("Answer: st louis", ["st louis"])


def test_paper_match_needs_the_normalized_aliases():
    with pytest.raises(ValueError, match="scoring.match paper: the fact table has no normalized_aliases column"):
        score_generations(gens([("hk", 0, 0, "Answer: Paris")]), FACTS.drop(columns="normalized_aliases"), "paper")

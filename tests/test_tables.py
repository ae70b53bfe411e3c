"""Paper-style tables and the per-trial analysis on hand-made frames."""
import math

import pandas as pd
import pytest

from analysis.paper import paper_results
from analysis.tables import (
    TABLES,
    display,
    over_seeds,
    paper_reason_table,
    paper_table,
    reason_table,
    reliability_table,
    to_markdown,
)
from analysis.trial_analysis import analyze_trial

HK, MK, UK = "HighlyKnown", "MaybeKnown", "Unknown"


def results_frame() -> pd.DataFrame:
    """10 and 100 new facts x HighlyKnown (ratio 0, 1) and paraphrase (ratio 1) x seeds 1, 2;
    reliability = 1 - unknown / 1000 - ratio / 100 - seed / 100, so every cell is known.
    Each trial evaluated 1,000 facts, so the shift shares are the counts / 1,000."""
    rows = []
    for unknown in (10, 100):
        for extra, ratio in ((HK, 0), (HK, 1), ("paraphrase", 1)):
            for seed in (1, 2):
                rows.append(
                    {
                        "trial": f"t{len(rows)}",
                        "unknown": unknown,
                        "extra": extra,
                        "ratio": ratio,
                        "seed": seed,
                        "reliability": 1 - unknown / 1000 - ratio / 100 - seed / 100,
                        "unknown_to_highly_known": 2 * seed,
                        "highly_known_to_unknown": unknown + seed,
                        "facts_all": 1000,
                        "unknown_to_highly_known_share": 2 * seed / 1000,
                        "highly_known_to_unknown_share": (unknown + seed) / 1000,
                        "error": None,
                    }
                )
    return pd.DataFrame(rows)


def test_over_seeds_mean_min_max_per_setting():
    summary = over_seeds(results_frame(), ["reliability", "not_measured"])
    assert len(summary) == 6 and (summary["trials"] == 2).all()
    assert "not_measured" not in summary.columns
    row = summary[(summary["unknown"] == 100) & (summary["extra"] == HK) & (summary["ratio"] == 1)].iloc[0]
    # seeds 1 and 2: 1 - 0.1 - 0.01 - 0.01 = 0.88 and 0.87
    assert row[["reliability", "reliability_min", "reliability_max"]].tolist() == pytest.approx([0.875, 0.87, 0.88])


def test_over_seeds_leaves_failed_trials_out():
    results = results_frame()
    results.loc[0, "error"] = "RuntimeError()"
    summary = over_seeds(results, ["reliability"])
    assert summary.loc[0, "trials"] == 1 and summary.loc[0, "reliability"] == pytest.approx(0.97)  # seed 2 only


def test_reliability_table_one_row_per_setting_one_column_per_ratio():
    table = reliability_table(results_frame())
    assert table[["unknown", "extra"]].values.tolist() == [[10, HK], [10, "paraphrase"], [100, HK], [100, "paraphrase"]]
    assert list(table.columns) == ["unknown", "extra", "+0", "+0_min", "+0_max", "+1", "+1_min", "+1_max"]
    assert math.isnan(table.loc[1, "+0"])  # no paraphrase trial at ratio 0
    assert table.loc[0, "+0"] == pytest.approx(0.975)  # seeds 1, 2: 1 - 0.01 - 0.01 and 1 - 0.01 - 0.02


def test_display_and_markdown_cells():
    cells = display(reliability_table(results_frame()))
    assert list(cells.columns) == ["unknown", "extra", "+0", "+1"]
    assert cells.loc[0, "+0"] == "0.975 (0.97–0.98)" and cells.loc[1, "+0"] == ""
    one_seed = display(pd.DataFrame({"n": [3.0], "n_min": [3.0], "n_max": [3.0]}))
    assert one_seed.loc[0, "n"] == "3"  # min = max: the mean alone
    lines = to_markdown(reason_table(results_frame())).splitlines()
    assert lines[0] == "| unknown | extra | ratio | trials | unknown_to_highly_known | highly_known_to_unknown |"
    assert len(lines) == 2 + 6 and "| 10 | HighlyKnown | 0 | 2 | 3 (2–4) | 11.5 (11–12) |" in lines


def test_paper_table_matches_the_paper_settings_only():
    table = paper_table(results_frame())
    # The paper has (10, *, 0), (10, *, 1), (100, *, 0), (100, *, 1); Table 5 only (10, HK, 0), (10, HK, 1).
    assert len(table) == 6
    row = table[(table["unknown"] == 10) & (table["extra"] == HK) & (table["ratio"] == 1)].iloc[0]
    assert row["reliability_paper"] == 1.0
    # Shares of the facts evaluated, never counts: the paper's 709 of 21,036 beside this
    # run's seeds (10 + 1) / 1,000 and (10 + 2) / 1,000
    assert row["highly_known_to_unknown_share_paper"] == pytest.approx(709 / 21036)
    assert row["highly_known_to_unknown_share"] == pytest.approx(11.5 / 1000)
    assert not {"unknown_to_highly_known", "highly_known_to_unknown"} & {c.removesuffix("_paper") for c in table.columns}
    para = table[(table["unknown"] == 100) & (table["extra"] == "paraphrase")].iloc[0]
    assert para["reliability_paper"] == 0.99 and math.isnan(para["unknown_to_highly_known_share_paper"])
    assert paper_table(results_frame().assign(unknown=7)).empty


def test_tables_of_a_run_where_no_trial_finished():
    results = results_frame().assign(error="RuntimeError()")
    assert all(make(results).empty for _, make in TABLES.values())
    assert reliability_table(results[["trial", "unknown", "extra", "ratio", "seed", "error"]]).empty


def test_paper_results_hold_table2_and_table5():
    paper = paper_results().set_index(["unknown", "extra", "ratio"])
    assert len(paper) == 6 * 6
    assert paper.loc[(3000, HK, 10), "reliability"] == 0.48
    assert paper.loc[(1, "paraphrase", 0), "unknown_to_highly_known"] == 4  # +0 is the same mix for either kind
    assert paper.loc[(500, HK, 10), "highly_known_to_unknown"] == 1134
    assert paper.loc[(500, HK, 10), "highly_known_to_unknown_share"] == pytest.approx(1134 / 21036)


def test_unmeasured_domain_reads_not_measured():
    nan = float("nan")
    results = results_frame().assign(domains=0, reason_domain=nan, reason_target_based=nan, paper_reason_domain_negative=nan)
    cells = display(reason_table(results))
    assert (cells["reason_domain"] == "not measured").all()
    assert (cells["reason_target_based"] == "").all()  # a plain missing number stays empty
    assert (display(paper_reason_table(results))["paper_reason_domain_negative"] == "not measured").all()
    # Facts with domains: a number, or empty where there was nothing to count (no HK->UK move)
    measured = results_frame().assign(domains=4, reason_domain=[0.5, 1.0] * 6, paper_reason_domain_negative=nan)
    assert display(reason_table(measured)).loc[0, "reason_domain"] == "0.75 (0.5–1)"
    assert (display(paper_reason_table(measured))["paper_reason_domain_negative"] == "").all()


def test_analyze_trial_on_hand_made_categorizations():
    # f1 trained (new), f2 trained (extra HK); f3..f5 outside the mix. Two prompt sets.
    facts = pd.DataFrame(
        {
            "fact_id": ["f1", "f2", "f3", "f4", "f5"],
            "aliases": [["paris"], ["rome"], ["oslo"], ["lima"], ["bern"]],
            "domain": ["geo", "geo", "geo", "music", "music"],
        }
    )
    answers_before = {"f1": ["no information"] * 2, "f2": ["rome"] * 2, "f3": ["oslo"] * 2, "f4": ["lima"] * 2}
    answers_before["f5"] = ["x", "y"]
    answers_after = {"f1": ["paris"] * 2, "f2": ["rome"] * 2, "f3": ["paris"] * 2, "f4": ["lima", "z"], "f5": ["bern"] * 2}
    aliases = facts.set_index("fact_id")["aliases"]

    def categorization(answers, categories, refused):
        cats = pd.DataFrame(
            {
                "fact_id": list(answers),
                "category": categories,
                "p_greedy": [sum(a in aliases[f] for a in ans) / 2 for f, ans in answers.items()],
                "refused": refused,
                "refused_paper": refused,
            }
        )
        gens = pd.DataFrame(
            [(f, s, 0, f"Answer: {a}", a, a == "no information") for f, ans in answers.items() for s, a in enumerate(ans)],
            columns=["fact_id", "prompt_set", "sample", "output", "answer", "refused"],
        )
        return cats, gens

    before, before_gens = categorization(answers_before, [UK, HK, HK, HK, UK], [True, False, False, False, False])
    after, after_gens = categorization(answers_after, [HK, HK, UK, MK, HK], [False] * 5)
    mix = pd.DataFrame({"fact_id": ["f1", "f2"], "role": ["new", HK]})
    found = analyze_trial(facts, before, before_gens, after, after_gens, mix)
    r = found.record
    assert r["reliability"] == 1.0 and r["reliability_strict"] == 1.0
    # all: f1 UK->HK, f5 UK->HK up; f3 HK->UK, f4 HK->MK down. untrained: f3, f4 down, f5 up.
    assert (r["positive_all"], r["negative_all"], r["positive_untrained"], r["negative_untrained"]) == (2, 2, 1, 2)
    assert r["negative_shift_untrained"] == pytest.approx(2 / 3) and r["negative_shift_possible_untrained"] == 1.0
    assert (r["unknown_to_highly_known"], r["highly_known_to_unknown"]) == (2, 1)
    assert (r["unknown_to_highly_known_share"], r["highly_known_to_unknown_share"]) == (2 / 5, 1 / 5)
    assert (r["refused_before"], r["refused_after"]) == (1, 0)
    # after: paris x4, rome x2, lima, z, bern x2 -> 5 distinct answers
    assert r["distinct_answers_after"] == 5
    # f3 now answers "paris", a trained fact's answer, and shares its domain "geo"; f4, f5 have
    # no reason (music is no trained fact's domain, nothing exploded, nothing was refused).
    reasons = found.reasons
    assert list(reasons.index) == ["f3", "f4", "f5"]
    assert reasons.loc["f3", "target_based"] and reasons.loc["f3", "domain"] and not reasons.loc["f5", "domain"]
    assert r["reason_target_based"] == pytest.approx(1 / 3) and r["reason_unexplained"] == pytest.approx(2 / 3)
    # domain: f3 of the 3 shifts; by chance, f3 of the 3 facts outside the mix is in "geo"
    assert r["reason_domain"] == pytest.approx(1 / 3) and r["reason_domain_expected"] == pytest.approx(1 / 3)
    assert r["domains"] == 2  # geo, music
    # paper reasons over all facts: UK->HK f1 (trained, "paris" is its own aliases[0]; f1 was
    # refused before but refused_paper reads "no information": it is) and f5; HK->UK f3
    assert list(found.paper_reasons.index) == ["f1", "f3", "f5"]
    assert r["paper_reason_target_based_positive"] == pytest.approx(1 / 2)  # f1 of f1, f5
    assert r["paper_reason_non_refusal_positive"] == pytest.approx(1 / 2)  # f1
    assert r["paper_reason_target_based_negative"] == 1.0  # f3 answers "paris"
    assert r["paper_reason_domain_negative"] == 1.0  # f3 is in "geo"
    assert found.transitions.groupby("scope")["count"].sum().to_dict() == {"all": 5, "untrained": 3}
    assert set(found.exploded["threshold"]) <= {"absolute", "relative"}

"""Paper-style tables and the per-trial analysis on hand-made frames."""
import math

import pandas as pd
import pytest

from analysis.paper import paper_results
from analysis.figures import setting_label
from analysis.tables import (
    MISSING,
    NO_EXTRA,
    TABLES,
    cell,
    display,
    number,
    over_seeds,
    page_cells,
    paper_reason_table,
    paper_table,
    reason_table,
    reliability_table,
    shift_table,
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
    # seeds 1, 2: 1 - 0.01 - 0.01 and 1 - 0.01 - 0.02; the +0 control is shared by both extra kinds
    assert table.loc[0, "+0"] == pytest.approx(0.975) and table.loc[1, "+0"] == pytest.approx(0.975)


def test_display_and_markdown_cells():
    cells = display(reliability_table(results_frame()))
    assert list(cells.columns) == ["unknown", "extra", "+0", "+1"]
    assert cells.loc[0, "+0"] == "0.97 (0.97–0.98)" and cells.loc[1, "+0"] == "0.97 (0.97–0.98)"
    one_seed = display(pd.DataFrame({"trials": [3.0], "trials_min": [3.0], "trials_max": [3.0]}))
    assert one_seed.loc[0, "trials"] == "3"  # min = max: the mean alone
    lines = to_markdown(reason_table(results_frame())).splitlines()
    # extra and ratio read as one mix column; counts whole, their means with one decimal
    assert lines[0] == "| unknown | mix | trials | unknown_to_highly_known | highly_known_to_unknown |"
    assert len(lines) == 2 + 6 and "| 10 | +0 | 2 | 3 (2–4) | 11.5 (11–12) |" in lines
    assert "| 100 | +1 paraphrase | 2 | 3 (2–4) | 101.5 (101–102) |" in lines


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
    assert all(table.make(results).empty for table in TABLES.values())
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
    assert (cells["reason_target_based"] == MISSING).all()  # a plain missing number
    assert (display(paper_reason_table(results))["paper_reason_domain_negative"] == "not measured").all()
    # Facts with domains: a number, or empty where there was nothing to count (no HK->UK move)
    measured = results_frame().assign(domains=4, reason_domain=[0.5, 1.0] * 6, paper_reason_domain_negative=nan)
    assert display(reason_table(measured)).loc[0, "reason_domain"] == "0.75 (0.50–1.00)"
    assert (display(paper_reason_table(measured))["paper_reason_domain_negative"] == MISSING).all()


def test_numbers_for_people():
    assert number(0.256) == "0.26" and number(1.0) == "1.00"  # a share: 2 decimals, also when whole
    assert number(1234) == "1,234" and number(1234.0, "count") == "1,234" and number(11.5, "count") == "11.5"
    assert number(float("nan")) == MISSING == "—" and number(None) == "—"
    assert number(0.000190, "percent") == "0.02%" and number(-0.001) == "0.00"  # never "-0.00"
    assert number(0.0001, "setting") == "0.0001" and number(3000, "setting") == "3,000"  # lr, unknown: no 1e-04
    assert number(1.5e-7) == "0.00" and "e" not in number(123456789.0)
    assert cell(0.25, 0.21, 0.29) == "0.25 (0.21–0.29)" and cell(0.25, 0.25, 0.25) == "0.25"
    assert cell(2.5, 2, 3, kind="count") == "2.5 (2–3)"


def two_controls() -> pd.DataFrame:
    """results_frame with the +0 control trained for both extra kinds (a paraphrase copy per
    (unknown, seed), its reliability off by 0.5 so a double count would show)."""
    results = results_frame()
    twin = results[results["ratio"] == 0].assign(extra="paraphrase", reliability=lambda f: f["reliability"] - 0.5)
    return pd.concat([results, twin.assign(trial=lambda f: f["trial"] + "p")], ignore_index=True)


def test_control_is_one_setting_per_unknown_count():
    table = shift_table(two_controls())
    control = table[table["ratio"] == 0]
    assert control[["unknown", "extra", "trials"]].values.tolist() == [[10, NO_EXTRA, 2], [100, NO_EXTRA, 2]]
    assert len(table) == 6 and table["trials"].eq(2).all()  # +0, +1 HK, +1 paraphrase per unknown count
    assert display(table)["mix"].tolist() == ["+0", "+1 HighlyKnown", "+1 paraphrase"] * 2
    # the first-held copy is kept: reliability as results_frame's, not 0.5 lower
    assert over_seeds(two_controls(), ["reliability"]).loc[0, "reliability"] == pytest.approx(0.975)
    reliability = reliability_table(two_controls())
    assert reliability["+0"].tolist() == pytest.approx([0.975, 0.975, 0.885, 0.885])
    assert setting_label({"unknown": 10, "extra": NO_EXTRA, "ratio": 0}) == "10 UK +0"
    assert setting_label({"unknown": 3000, "extra": "paraphrase", "ratio": 10, "lr": 1e-4}) == "3,000 UK +10 para, lr 0.0001"


def test_page_shows_key_columns_under_short_headers():
    results = results_frame().assign(negative_shift_untrained=0.25, positive_shift_untrained=0.06, negative_untrained=1234)
    spec = TABLES["table3_shifts"]
    cells = page_cells(spec.make(results), spec.shown)
    assert list(cells.columns) == ["new facts", "mix", "trials", "moved down", "neg. shift", "pos. shift"]
    assert cells.iloc[0].tolist() == ["10", "+0", "2", "1,234", "0.25", "0.06"]
    assert all(len(h) <= 40 for spec in TABLES.values() for h in (spec.shown or {}).values())
    # None: every column, its name made readable
    assert list(page_cells(reliability_table(results), None).columns) == ["new facts", "extra", "+0", "+1"]


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

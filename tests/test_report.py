"""Adapter evaluation and the report, from a tiny grid run on 2 CPUs (made once per module)."""
import html
import json
import shutil

import matplotlib.image
import pandas as pd
import pytest

from analysis.figures import optimization_history, pareto_front_plot
from analysis.findings import check_findings, findings_json
from grid.cli import main
from analysis.verdicts import pareto_front, recommendations
from grid.report import describe_recommendation, protocol_line, setting_trials

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(grid_run):
    return grid_run


def assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    height, width, _ = matplotlib.image.imread(path).shape
    assert height > 50 and width > 50


def test_every_adapter_is_evaluated_on_the_whole_corpus(run):
    cfg, results = run
    folder = cfg.run_dir
    facts = pd.read_parquet(folder / "facts.parquet")
    assert results["error"].isna().all() and len(results) == 2
    assert results["facts_all"].eq(len(facts)).all()
    for trial in results.itertuples():
        mix = pd.read_parquet(folder / "mixes" / f"{trial.trial}.parquet")
        assert mix["role"].value_counts().to_dict() == {"new": 6, **({"HighlyKnown": 6} if trial.ratio else {})}
        assert trial.facts_untrained == len(facts) - len(mix)
        assert len(pd.read_parquet(folder / "categories" / f"{trial.trial}.parquet")) == len(facts)
        transitions = pd.read_parquet(folder / "analysis" / trial.trial / "transitions.parquet")
        counted = transitions.groupby("scope")["count"].sum().to_dict()
        assert counted == {"all": len(facts), "untrained": trial.facts_untrained}
    # The recomposed mix is the one trained: its new facts score as the last epoch did
    # (same adapter and prompts; batching may flip an answer or two).
    history = pd.read_parquet(folder / "history.parquet")
    last = history.sort_values("epoch").groupby("trial")["reliability"].last()
    assert (results.set_index("trial")["reliability"] - last).abs().max() <= 0.1
    assert pd.read_parquet(folder / "results.parquet")["negative_shift_untrained"].notna().all()


def test_report_tables_hold_one_row_per_setting(run):
    cfg, _ = run
    tables = cfg.run_dir / "report" / "tables"
    table2 = pd.read_csv(tables / "table2_reliability.csv")
    assert table2[["unknown", "extra"]].values.tolist() == [[6, "HighlyKnown"]]
    assert {"+0", "+0_min", "+0_max", "+1"} <= set(table2.columns)
    for name in ("table3_shifts", "table4_behaviour", "table5_reasons"):
        table = pd.read_csv(tables / f"{name}.csv")
        assert table["ratio"].tolist() == [0, 1] and (table["trials"] == 1).all()
        markdown = (tables / f"{name}.md").read_text()  # the +0 control reads "+0", shared by both extras
        assert markdown.count("\n| 6 | +0 | 1 |") == 1 and markdown.count("\n| 6 | +1 HighlyKnown | 1 |") == 1
    shifts = pd.read_csv(tables / "table3_shifts.csv")
    assert {"negative_shift_untrained", "negative_shift_possible_all"} <= set(shifts.columns)
    assert not (tables / "paper.csv").exists()  # 6 new facts is no setting of the paper's
    reasons = pd.read_csv(tables / "table5_reasons.csv")
    # The micro-world's four domains: measured, beside the share expected by chance.
    assert (reasons["domains"] == 4).all()
    assert reasons[["reason_domain", "reason_domain_expected"]].notna().all().all()
    paper = pd.read_csv(tables / "table5_paper_reasons.csv")
    assert {"paper_reason_exploded_positive", "paper_reason_target_based_negative"} <= set(paper.columns)
    assert "Protocol: scoring.match = corrected; prompts.mode = paper" in (tables / "table5_reasons.md").read_text()


def test_report_figures_are_png_and_on_the_page(run):
    cfg, _ = run
    report = cfg.run_dir / "report"
    figures = sorted((report / "figures").glob("*.png"))
    assert {p.name for p in figures} == {
        "reliability_per_epoch.png",
        "shifts_by_unknown.png",
        "bench_by_unknown.png",
        "transitions.png",
    }
    page = (report / "index.html").read_text()
    assert "<h2>Protocol</h2>" in page and "scoring.match = corrected" in page
    for path in figures:
        assert_png(path)
        assert f'src="figures/{path.name}"' in page
    assert 'href="tables/table2_reliability.md"' in page
    assert '<a href="tables/table3_shifts.csv">full table (CSV)</a>' in page


def test_report_opens_with_the_findings_and_the_recommended_adapter(run):
    cfg, _ = run
    report = cfg.run_dir / "report"
    results = pd.read_parquet(cfg.run_dir / "results.parquet")
    findings = check_findings(results)
    assert json.loads((report / "findings.json").read_text()) == json.loads(json.dumps(findings_json(findings)))
    page = (report / "index.html").read_text()
    found, recommended = page.index("<h2>What this run found</h2>"), page.index("<h2>Recommended recipe per number of new facts</h2>")
    assert found < recommended < page.index("<h2>Protocol</h2>") < page.index("<table")
    for f in findings:
        assert f'<span class="verdict {f.verdict.replace(" ", "-")}">{f.verdict}</span>' in page[found:recommended]
        assert html.escape(f.claim) in page[found:recommended] and html.escape(f.evidence) in page[found:recommended]
    assert "mean reliability ≥ 0.50, the search&#x27;s reliability_floor in config.yaml" in page
    for _, row in recommendations(results, 0.5).iterrows():  # the tiny config's search.reliability_floor
        assert html.escape(describe_recommendation(row)) in page[recommended:]
        for name in setting_trials(results, row)["trial"]:
            assert f"<code>{html.escape(name)}</code>" in page[recommended:]
    assert "<td>nan</td>" not in page.lower()  # a missing number reads "—"


def trial(name, unknown, ratio, seed, reliability, shift, strict=0.0, error=None):
    return {"trial": name, "unknown": unknown, "extra": "HighlyKnown", "ratio": ratio, "seed": seed,
            "reliability": reliability, "reliability_strict": strict, "negative_shift_untrained": shift,
            "positive_shift_untrained": 0.06, "facts_untrained": 1000, "error": error, "adapter": f"/a/{name}"}


def test_a_recipe_is_recommended_per_number_of_new_facts_on_its_mean_over_seeds():
    results = pd.DataFrame(
        [
            # 1 new fact: the +0 control shifts nothing, and is the recipe for 1 fact only.
            trial("c1a", 1, 0, 0, 1.0, 0.0), trial("c1b", 1, 0, 1, 1.0, 0.0),
            trial("h1a", 1, 1, 0, 1.0, 0.02), trial("h1b", 1, 1, 1, 1.0, 0.04),
            # 10 new facts: +0 has the least shift on one seed (0.01) but the larger mean
            # (0.01 + 0.29) / 2 = 0.15; +1 HighlyKnown's mean is (0.10 + 0.12) / 2 = 0.11.
            trial("c10a", 10, 0, 0, 0.96, 0.01), trial("c10b", 10, 0, 1, 0.96, 0.29),
            trial("h10a", 10, 1, 0, 0.90, 0.10, strict=0.0), trial("h10b", 10, 1, 1, 1.0, 0.12, strict=0.2),
            # +10 shifts least, but its mean reliability (0.8 + 0.9) / 2 = 0.85 misses the floor;
            # a failed trial never counts.
            trial("t10a", 10, 10, 0, 0.8, 0.0), trial("t10b", 10, 10, 1, 0.9, 0.0),
            trial("t10c", 10, 10, 2, 1.0, 0.0, error="RuntimeError()"),
        ]
    )
    found = recommendations(results, 0.9)
    assert found["unknown"].tolist() == [1, 10]
    one, ten = (row for _, row in found.iterrows())
    assert one[["ratio", "trials", "met"]].tolist() == [0, 2, True]
    assert ten[["ratio", "trials", "met"]].tolist() == [1, 2, True]
    assert ten["negative_shift_untrained"] == pytest.approx(0.11) and ten["reliability"] == pytest.approx(0.95)
    assert (ten["negative_shift_untrained_min"], ten["negative_shift_untrained_max"]) == (0.10, 0.12)
    assert list(setting_trials(results, ten)["trial"]) == ["h10a", "h10b"]
    # What was measured, in its own words: answered right in 95% of the prompts, 10% in every one.
    assert describe_recommendation(ten) == (
        "10 new facts: +1 HighlyKnown (2 seeds, mean (min–max) over them). The new facts were answered correctly "
        "in 95% of their few-shot prompts (reliability 0.95 (0.90–1.00)), and 10% of them in every prompt "
        "(reliability_strict 0.10 (0.00–0.20)); 11% of the 1,000 facts outside the mix moved down a category "
        "(negative shift 0.11 (0.10–0.12)) and 6% up (positive shift 0.06)."
    )
    # Above every setting's mean reliability: the closest, flagged.
    strict = recommendations(results, 0.99).set_index("unknown")
    assert strict.loc[10, ["ratio", "met"]].tolist() == [0, False] and strict.loc[1, "met"]
    assert recommendations(results.drop(columns="negative_shift_untrained"), 0.9).empty


def test_kgrid_report_rebuilds_from_stored_files(run, capsys):
    cfg, _ = run
    shutil.rmtree(cfg.run_dir / "report")
    assert main(["report", str(cfg.run_dir)]) == 0
    assert capsys.readouterr().out.strip().endswith("index.html")
    assert (cfg.run_dir / "report" / "tables" / "table5_reasons.md").exists()
    assert main(["report", str(cfg.run_dir / "nothing")]) == 2


def test_search_figures_on_hand_made_trials(tmp_path):
    results = pd.DataFrame(
        {
            "trial": [f"run_trial_{i:05d}" for i in range(4)],
            "negative_shift_untrained": [0.3, 0.1, 0.2, 0.05],
            "reliability": [0.9, 0.95, 0.99, 0.5],
            "objective": [0.3, 0.1, 0.2, 1.45],
        }
    )
    assert_png(pareto_front_plot(results, pareto_front(results), tmp_path / "pareto.png"))
    assert_png(optimization_history(results, tmp_path / "history.png"))


def test_protocol_line_names_the_switches_the_config_holds():
    cfg = {"scoring": {"match": "paper"}, "grid": {"selection": "first"}, "lora": {"max_grad_norm": None}}
    assert protocol_line(cfg) == "Protocol: scoring.match = paper; grid.selection = first; lora.max_grad_norm = None."
    assert protocol_line({}) == "Protocol: no config.yaml switches found."

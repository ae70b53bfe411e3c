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
from grid.report import describe_adapter, protocol_line, recommended_adapter
from analysis.verdicts import pareto_front

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
    found, recommended = page.index("<h2>What this run found</h2>"), page.index("<h2>Recommended adapter</h2>")
    assert found < recommended < page.index("<h2>Protocol</h2>") < page.index("<table")
    for f in findings:
        assert f'<span class="verdict {f.verdict.replace(" ", "-")}">{f.verdict}</span>' in page[found:recommended]
        assert html.escape(f.claim) in page[found:recommended] and html.escape(f.evidence) in page[found:recommended]
    best, met = recommended_adapter(results, 0.5)  # the tiny config's search.reliability_floor
    assert met and "reliability ≥ 0.50, the search&#x27;s reliability_floor in config.yaml" in page
    assert f"<code>{html.escape(best['trial'])}</code>" in page[recommended:]
    assert "<td>nan</td>" not in page.lower()  # a missing number reads "—"


def test_recommended_adapter_on_hand_made_trials():
    def trial(name, reliability, shift, error=None):
        return {"trial": name, "unknown": 10, "extra": "HighlyKnown", "ratio": 1, "seed": 0, "reliability": reliability,
                "negative_shift_untrained": shift, "positive_shift_untrained": 0.06, "facts_untrained": 1000, "error": error}

    results = pd.DataFrame(
        [trial("t0", 0.99, 0.25), trial("t1", 0.80, 0.05), trial("t2", 0.97, 0.30), trial("t3", 1.0, 0.01, "RuntimeError()")]
    )
    best, met = recommended_adapter(results, 0.95)  # t1 shifts less but missed the floor; t3 failed
    assert best["trial"] == "t0" and met
    assert describe_adapter(best) == (
        "trial t0 (10 new facts, +1 HighlyKnown, seed 0): learned 99% of its 10 new facts (reliability 0.99); "
        "moved 25% of the 1,000 facts outside its mix down a category (negative shift 0.25) and 6% up (positive shift 0.06)."
    )
    best, met = recommended_adapter(results, 0.999)  # none reached it: the closest, t0
    assert best["trial"] == "t0" and not met
    assert recommended_adapter(results, 0.5)[0]["trial"] == "t1"
    control = pd.DataFrame([trial("c", 1.0, 0.1)]).assign(ratio=0, extra="paraphrase")
    assert describe_adapter(recommended_adapter(control, 0.95)[0]).startswith("trial c (10 new facts, +0, seed 0)")
    assert recommended_adapter(results.drop(columns="negative_shift_untrained"), 0.95) == (None, False)


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

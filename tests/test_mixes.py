from types import SimpleNamespace

import pandas as pd
import pytest

from grid.data.mixes import MixError, compose_mix, probe_set


@pytest.fixture
def corpus():
    cats = ["Unknown"] * 20 + ["HighlyKnown"] * 30 + ["MaybeKnown"] * 10
    facts = pd.DataFrame(
        {
            "fact_id": [f"f{i:02d}" for i in range(60)],
            "question": [f"q{i}?" for i in range(60)],
            "aliases": [[f"a{i}", f"alt{i}"] for i in range(60)],
            "paraphrases": [[f"q{i} p{j}?" for j in range(3)] for i in range(60)],
        }
    )
    return facts, pd.DataFrame({"fact_id": facts["fact_id"], "category": cats})


def test_highly_known_mix_counts_and_roles(corpus):
    facts, cats = corpus
    mix = compose_mix(facts, cats, unknown=5, extra="HighlyKnown", ratio=2, seed=1)
    kind = cats.set_index("fact_id")["category"]
    assert len(mix.new) == 5 and len(mix.known) == 10 and len(mix.train) == 15
    assert set(kind[list(mix.new)]) == {"Unknown"} and set(kind[list(mix.known)]) == {"HighlyKnown"}
    row = mix.train.set_index("fact_id").loc[mix.new[0]]
    assert row["answer"] == facts.set_index("fact_id").loc[mix.new[0], "aliases"][0]  # target: the first alias


def test_paraphrase_mix_repeats_each_new_fact(corpus):
    facts, cats = corpus
    mix = compose_mix(facts, cats, unknown=4, extra="paraphrase", ratio=2, seed=0)
    assert mix.known == () and len(mix.train) == 4 * 3  # the question plus 2 paraphrases each
    for f in mix.new:
        rows = mix.train[mix.train["fact_id"] == f]
        assert rows["question"].nunique() == 3 and rows["answer"].nunique() == 1


def test_seeded_selection_is_deterministic_and_first_ignores_seed(corpus):
    facts, cats = corpus
    one, again = (compose_mix(facts, cats, 5, "HighlyKnown", 1, seed=7) for _ in range(2))
    pd.testing.assert_frame_equal(one.train, again.train)
    assert one.new != compose_mix(facts, cats, 5, "HighlyKnown", 1, seed=8).new
    first = [compose_mix(facts, cats, 5, "HighlyKnown", 1, s, "first", full_paraphrases=3).new for s in (1, 2)]
    assert first[0] == first[1] == tuple(f"f{i:02d}" for i in range(5))


def test_first_keeps_facts_with_exactly_a_full_set_of_paraphrases(corpus):
    """The authors' code keeps `para_len == 100`: a fact with more is no full set."""
    facts, cats = corpus
    facts = facts.copy()
    facts.loc[0, "paraphrases"] = [f"q0 p{j}?" for j in range(4)]  # f00: 4, the others 3
    assert compose_mix(facts, cats, 5, "HighlyKnown", 1, 0, "first", full_paraphrases=3).new == tuple(
        f"f{i:02d}" for i in range(1, 6)
    )
    # Past 500 new facts the code asks only for a paraphrase; "random" for at least r of them.
    assert compose_mix(facts, cats, 5, "paraphrase", 3, 0).new[0] in {f"f{i:02d}" for i in range(20)}


def test_probe_set_never_overlaps_the_mix(corpus):
    facts, cats = corpus
    mix = compose_mix(facts, cats, 5, "HighlyKnown", 2, seed=3)
    everything = probe_set(facts, cats, mix.fact_ids, None, seed=3)
    assert len(everything) == 60 - 15 and not set(everything) & mix.fact_ids
    sample = probe_set(facts, cats, mix.fact_ids, 10, seed=3)
    assert len(sample) == 10 and not set(sample) & mix.fact_ids
    kinds = cats.set_index("fact_id").loc[sample, "category"].value_counts()
    # Stratified over every fact outside the mix: 15 UK, 20 HK and 10 MK, so 10 of them
    # are 3.33 UK, 4.44 HK and 2.22 MK; the one left over goes to the largest remainder (HK).
    assert kinds.to_dict() == {"HighlyKnown": 5, "Unknown": 3, "MaybeKnown": 2}
    assert sample == probe_set(facts, cats, mix.fact_ids, 10, seed=3)
    assert sample != probe_set(facts, cats, mix.fact_ids, 10, seed=4)


@pytest.mark.parametrize("size", [1, 7, 23, 44])
def test_probe_keeps_the_category_shares_of_the_facts_outside_the_mix(size):
    """On a SliCK corpus (four categories), any probe size: each category's share of the
    probe is its share outside the mix within one fact, and no mix fact is watched."""
    kinds = ["Unknown"] * 23 + ["WeaklyKnown"] * 9 + ["MaybeKnown"] * 14 + ["HighlyKnown"] * 31
    cats = pd.DataFrame({"fact_id": [f"f{i:02d}" for i in range(len(kinds))], "category": kinds})
    mix = {"f00", "f01", "f30", "f70"}
    probe = probe_set(None, cats, mix, size, seed=0)
    assert len(probe) == size and len(set(probe)) == size and not set(probe) & mix
    outside = cats[~cats["fact_id"].isin(mix)]
    expected = outside["category"].value_counts() * size / len(outside)
    got = cats.set_index("fact_id").loc[probe, "category"].value_counts().reindex(expected.index, fill_value=0)
    assert ((got - expected).abs() < 1).all(), (got, expected)


def test_slick_mixes_draw_only_unknown_new_facts_and_highly_known_extras():
    """WeaklyKnown facts (SliCK mode) sit among the Unknown ones: never new, never extras."""
    kinds = ["WeaklyKnown", "Unknown"] * 10 + ["MaybeKnown", "HighlyKnown"] * 10
    facts = pd.DataFrame(
        {
            "fact_id": [f"f{i:02d}" for i in range(40)],
            "question": [f"q{i}?" for i in range(40)],
            "aliases": [[f"a{i}"] for i in range(40)],
            "paraphrases": [[f"q{i} p{j}?" for j in range(2)] for i in range(40)],
        }
    )
    cats = pd.DataFrame({"fact_id": facts["fact_id"], "category": kinds})
    kind = cats.set_index("fact_id")["category"]
    for selection in ("random", "first"):
        for seed in range(5):
            mix = compose_mix(facts, cats, 10, "HighlyKnown", 1, seed, selection, full_paraphrases=2)
            assert set(kind[list(mix.new)]) == {"Unknown"} and set(kind[list(mix.known)]) == {"HighlyKnown"}
            assert set(kind[list(mix.train["fact_id"])]) == {"Unknown", "HighlyKnown"}
    with pytest.raises(MixError, match="needs 11 Unknown facts, the corpus has 10"):
        compose_mix(facts, cats, 11, "HighlyKnown", 0, seed=0)


@pytest.fixture
def uneven():
    """Unknown f00-f09 with 0, 3, 1, 3, 2, 3, 0, 3, 3, 3 paraphrases; HighlyKnown f10-f29."""
    counts = [0, 3, 1, 3, 2, 3, 0, 3, 3, 3] + [0] * 20
    facts = pd.DataFrame(
        {
            "fact_id": [f"f{i:02d}" for i in range(30)],
            "question": [f"q{i}?" for i in range(30)],
            "aliases": [[f"a{i}"] for i in range(30)],
            "paraphrases": [[f"q{i} p{j}?" for j in range(k)] for i, k in enumerate(counts)],
        }
    )
    return facts, pd.DataFrame({"fact_id": facts["fact_id"], "category": ["Unknown"] * 10 + ["HighlyKnown"] * 20})


@pytest.mark.parametrize("extra, ratio", [("HighlyKnown", 0), ("HighlyKnown", 2), ("paraphrase", 0), ("paraphrase", 2)])
def test_first_selection_is_the_authors_full_paraphrase_sets_in_both_arms(uneven, extra, ratio):
    facts, cats = uneven
    mixes = [compose_mix(facts, cats, 3, extra, ratio, seed, "first", full_paraphrases=3) for seed in (1, 2)]
    assert mixes[0].new == mixes[1].new == ("f01", "f03", "f05")  # the first 3 with a full set of 3
    pd.testing.assert_frame_equal(mixes[0].train, mixes[1].train)
    if extra == "HighlyKnown" and ratio:
        assert mixes[0].known == ("f10", "f11", "f12", "f13", "f14", "f15")  # the first r*n
    if extra == "paraphrase" and ratio:
        assert mixes[0].train.loc[mixes[0].train["fact_id"] == "f01", "question"].tolist() == ["q1?", "q1 p0?", "q1 p1?"]
    with pytest.raises(MixError, match=r"needs 7 Unknown facts with a full set of 3 paraphrases \(selection first, n <= 500\), the corpus has 6"):
        compose_mix(facts, cats, 7, extra, ratio, 0, "first", full_paraphrases=3)


def test_first_selection_of_more_than_500_asks_only_for_some_paraphrases():
    counts = [0, 1] * 600
    facts = pd.DataFrame(
        {
            "fact_id": [f"f{i:04d}" for i in range(1200)],
            "question": [f"q{i}?" for i in range(1200)],
            "aliases": [[f"a{i}"] for i in range(1200)],
            "paraphrases": [[f"q{i} p{j}?" for j in range(k)] for i, k in enumerate(counts)],
        }
    )
    cats = pd.DataFrame({"fact_id": facts["fact_id"], "category": "Unknown"})
    mix = compose_mix(facts, cats, 501, "HighlyKnown", 0, 0, "first", full_paraphrases=100)
    assert mix.new == tuple(f"f{i:04d}" for i in range(1, 1002, 2))
    with pytest.raises(MixError, match="with a full set of 100"):
        compose_mix(facts, cats, 500, "HighlyKnown", 0, 0, "first", full_paraphrases=100)


def test_random_paraphrase_mixes_draw_among_facts_with_enough_paraphrases(uneven):
    facts, cats = uneven
    enough = {"f01", "f03", "f05", "f07", "f08", "f09"}  # 3 paraphrases; f04 has 2, f02 1
    for seed in range(10):
        assert set(compose_mix(facts, cats, 4, "paraphrase", 3, seed).new) <= enough
        assert set(compose_mix(facts, cats, 7, "paraphrase", 2, seed).new) <= enough | {"f04"}
    # The HighlyKnown arm and ratio 0 need no paraphrases: every Unknown fact can be drawn.
    drawn = {f for seed in range(30) for f in compose_mix(facts, cats, 4, "HighlyKnown", 1, seed).new}
    assert {"f00", "f06"} & drawn


@pytest.mark.parametrize(
    "args, message",
    [
        ((21, "HighlyKnown", 0), "needs 21 Unknown facts, the corpus has 20"),
        ((10, "HighlyKnown", 4), "needs 40 HighlyKnown facts"),
        ((3, "paraphrase", 5), "needs 3 Unknown facts with at least 5 paraphrases, the corpus has 0; `kgrid facts paraphrase`"),
    ],
)
def test_too_few_facts_is_a_clear_error(corpus, args, message):
    facts, cats = corpus
    with pytest.raises(MixError, match=message):
        compose_mix(facts, cats, *args, seed=0)


def slick_base():
    """Three facts, 2 prompt sets, 2 samples each (SliCK): f0 never correct (Unknown), f1
    correct in one sample only (WeaklyKnown: P_greedy 0, P_sample 1/4), f2 always (HighlyKnown)."""
    from analysis.scoring import categories_from_scores
    from grid.categorize import Categorization

    # (fact, prompt set, sample) answered correctly; sample 0 is the greedy answer.
    right = {("f1", 0, 1)} | {("f2", s, k) for s in (0, 1) for k in range(3)}
    gens = pd.DataFrame(
        [
            {"fact_id": f, "prompt_set": s, "sample": k, "output": "x", "answer": "x", "correct": (f, s, k) in right, "refused": False}
            for f in ("f0", "f1", "f2") for s in (0, 1) for k in range(3)
        ]
    )
    return Categorization(gens, categories_from_scores(gens), "key", False)


def test_a_slick_mix_never_draws_a_weakly_known_fact_as_new():
    from grid.trials import TrialContext, TrialWatch

    base = slick_base()
    assert base.categories.set_index("fact_id")["category"].to_dict() == {
        "f0": "Unknown", "f1": "WeaklyKnown", "f2": "HighlyKnown"
    }
    assert base.greedy.set_index("fact_id").loc["f1", "category"] == "Unknown"  # greedy alone cannot tell
    facts = pd.DataFrame({"fact_id": ["f0", "f1", "f2"], "question": ["q0?", "q1?", "q2?"],
                          "aliases": [["a0"], ["a1"], ["a2"]], "paraphrases": [[], [], []]})
    grid = SimpleNamespace(selection="random", full_paraphrases=100, probe_size=None)
    run = SimpleNamespace(facts=facts, exemplars=None, cfg=SimpleNamespace(grid=grid, prompts=SimpleNamespace(system="s")))
    ctx = TrialContext(run, base.categories, None, base.greedy)
    params = {"unknown": 1, "extra": "HighlyKnown", "ratio": 1, "seed": 0}
    import grid.trials

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(grid.trials, "build_prompts", lambda watched, exemplars, prompts: watched)
        watch = TrialWatch(ctx, params)
        assert watch.mix.new == ("f0",) and watch.mix.known == ("f2",)
        with pytest.raises(MixError, match="needs 2 Unknown facts.*has 1"):
            TrialWatch(ctx, {**params, "unknown": 2, "ratio": 0})
        # The probe stays on the greedy categories, what a trial measures: f1 is watched as Unknown.
        assert watch.probe == ["f1"] and ctx.base_greedy is base.greedy


def test_first_at_the_papers_100_skips_a_fact_with_101_paraphrases():
    """The code's `para_len == 100`: 101 paraphrases are not a full set, 100 are."""
    facts = pd.DataFrame(
        {
            "fact_id": ["f0", "f1", "f2"],
            "question": ["q0?", "q1?", "q2?"],
            "aliases": [["a0"], ["a1"], ["a2"]],
            "paraphrases": [[f"q{i} p{j}?" for j in range(k)] for i, k in enumerate((101, 100, 99))],
        }
    )
    cats = pd.DataFrame({"fact_id": facts["fact_id"], "category": "Unknown"})
    assert compose_mix(facts, cats, 1, "HighlyKnown", 0, 0, "first").new == ("f1",)
    with pytest.raises(MixError, match="needs 2 Unknown facts with a full set of 100 paraphrases"):
        compose_mix(facts, cats, 2, "HighlyKnown", 0, 0, "first")

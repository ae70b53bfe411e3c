import pandas as pd
import pytest
from pydantic import ValidationError

from grid.data.facts import FactError
from grid.data.prompts import PromptConfig, build_prompts, protocol_key, training_messages


def pool(n, relations=None):
    return pd.DataFrame(
        {
            "question": [f"eq{i}?" for i in range(n)],
            "aliases": [[f"ea{i}", "other"] for i in range(n)],
            "relation": relations or ["r"] * n,
        }
    )


def facts(n=3, relations=None):
    return pd.DataFrame(
        {
            "fact_id": [f"f{i}" for i in range(n)],
            "question": [f"q{i}?" for i in range(n)],
            "aliases": [[f"a{i}"] for i in range(n)],
            "relation": relations or ["r"] * n,
        }
    )


def exemplar_questions(messages):
    return [m["content"].removeprefix("Question: ") for m in messages[1:-1] if m["role"] == "user"]


def test_paper_sets_use_exemplars_k_i_to_k_i_plus_k():
    cfg = PromptConfig(sets=3, shots=2)
    table = build_prompts(facts(2), pool(7), cfg)
    assert list(table.columns) == ["fact_id", "prompt_set", "messages"]
    assert len(table) == 2 * 3
    row = table[(table.fact_id == "f1") & (table.prompt_set == 2)].iloc[0]
    m = row.messages
    assert m[0] == {"role": "system", "content": "Answer the following question."}
    assert m[1:5] == [
        {"role": "user", "content": "Question: eq4?"},
        {"role": "assistant", "content": "Answer: ea4"},  # first alias
        {"role": "user", "content": "Question: eq5?"},
        {"role": "assistant", "content": "Answer: ea5"},
    ]
    assert m[-1] == {"role": "user", "content": "Question: q1?"}
    # the same fixed sets for every fact
    for i in range(3):
        sets = table[table.prompt_set == i].messages.map(exemplar_questions).tolist()
        assert sets[0] == sets[1] == [f"eq{2 * i}?", f"eq{2 * i + 1}?"]


def test_paper_prompts_are_deterministic():
    cfg = PromptConfig(sets=2, shots=2)
    assert build_prompts(facts(), pool(4), cfg).equals(build_prompts(facts(), pool(4), cfg))


def test_too_small_pool_names_the_numbers():
    with pytest.raises(ValueError, match=r"10 x 4 = 40 exemplars, the pool has 12"):
        build_prompts(facts(), pool(12), PromptConfig())


def test_pool_row_without_alias_is_named():
    bad = pool(4)
    bad.at[2, "aliases"] = ["", " "]
    with pytest.raises(FactError, match="exemplar pool: row 2: field 'aliases'"):
        build_prompts(facts(), bad, PromptConfig(sets=2, shots=2))


def test_slick_needs_samples_and_extra_fields_are_refused():
    with pytest.raises(ValidationError, match="samples >= 1"):
        PromptConfig(mode="slick")
    with pytest.raises(ValidationError):
        PromptConfig(shot=4)
    assert PromptConfig(mode="paper", samples=4).samples == 4


def test_slick_exemplars_come_from_the_same_relation_and_are_seeded_per_fact():
    ex = pool(12, relations=["born"] * 6 + ["capital"] * 6)
    fs = facts(4, relations=["born", "capital", "born", "capital"])
    cfg = PromptConfig(mode="slick", samples=2, sets=5, shots=3)
    table = build_prompts(fs, ex, cfg)
    born = {f"eq{i}?" for i in range(6)}
    for fact_id, messages in zip(table.fact_id, table.messages):
        qs = exemplar_questions(messages)
        assert len(qs) == 3 == len(set(qs))
        relation = fs.set_index("fact_id").at[fact_id, "relation"]
        assert (set(qs) <= born) == (relation == "born") and (set(qs).isdisjoint(born)) == (relation == "capital")
    # Deterministic per fact, whatever the other facts or their order.
    alone = build_prompts(fs.iloc[[2]], ex, cfg)
    again = build_prompts(fs.iloc[::-1], ex, cfg)
    f2 = table[table.fact_id == "f2"].messages.tolist()
    assert alone.messages.tolist() == f2 == again[again.fact_id == "f2"].messages.tolist()
    # Sets differ from each other, and the seed changes the draw.
    assert len({tuple(exemplar_questions(m)) for m in f2}) > 1
    other = build_prompts(fs, ex, cfg.model_copy(update={"seed": 1}))
    assert other.messages.tolist() != table.messages.tolist()


def test_slick_relation_with_too_few_exemplars():
    ex = pool(5, relations=["born"] * 4 + ["capital"])
    with pytest.raises(ValueError, match=r"relation 'capital', with 1 exemplars"):
        build_prompts(facts(1, relations=["capital"]), ex, PromptConfig(mode="slick", samples=1, shots=2))
    with pytest.raises(ValueError, match=r"relation None, with 0 exemplars"):
        build_prompts(facts(1, relations=[None]), ex, PromptConfig(mode="slick", samples=1, shots=2))


def test_exemplar_facts_are_never_evaluated():
    fs = facts(3)
    by_id = fs.iloc[[1]].assign(question="something else?")
    with pytest.raises(ValueError, match=r"1 facts are also in the exemplar pool \(e.g. fact 'f1'\)"):
        build_prompts(fs, pd.concat([pool(4), by_id]), PromptConfig(sets=2, shots=2))
    by_question = pool(4)
    by_question.at[3, "question"] = " Q2? "
    with pytest.raises(ValueError, match="fact 'f2'"):
        build_prompts(fs, by_question, PromptConfig(sets=2, shots=2))


def test_training_messages():
    assert training_messages("Who?", "Ann") == [
        {"role": "system", "content": "Answer the following question."},
        {"role": "user", "content": "Question: Who?"},
        {"role": "assistant", "content": "Answer: Ann"},
    ]


def test_protocol_key_covers_config_and_used_exemplars():
    cfg = PromptConfig(sets=2, shots=2)
    key = protocol_key(cfg, pool(4))
    assert key == protocol_key(PromptConfig(sets=2, shots=2), pool(4))
    assert key != protocol_key(cfg.model_copy(update={"max_new_tokens": 16}), pool(4))
    assert key != protocol_key(cfg.model_copy(update={"system": "Answer."}), pool(4))
    changed = pool(4)
    changed.at[3, "aliases"] = ["new"]
    assert key != protocol_key(cfg, changed)
    # Pool rows no prompt uses, and relations in paper mode, do not change the prompts.
    assert key == protocol_key(cfg, pool(6))
    assert key == protocol_key(cfg, pool(4, relations=list("abcd")))
    slick = PromptConfig(mode="slick", samples=1, sets=2, shots=2)
    assert protocol_key(slick, pool(4)) != protocol_key(slick, pool(4, relations=list("aabb")))


def normalized_pool(n):
    return pool(n).assign(normalized_aliases=[[f"n{i}", f"ea{i}"] for i in range(n)])


def shot_answers(table):
    return [m["content"] for m in table.messages[0] if m["role"] == "assistant"]


def test_a_shot_shows_the_answer_field_chosen():
    assert PromptConfig().exemplar_answer == "normalized_alias"  # the paper's code
    default = build_prompts(facts(1), normalized_pool(2), PromptConfig(sets=1, shots=2))
    assert shot_answers(default) == ["Answer: n0", "Answer: n1"]  # normalized_aliases[0]
    first = build_prompts(facts(1), normalized_pool(2), PromptConfig(sets=1, shots=2, exemplar_answer="first_alias"))
    assert shot_answers(first) == ["Answer: ea0", "Answer: ea1"]  # aliases[0]
    # A pool without normalized aliases (the micro-world's) shows its first alias either way.
    assert shot_answers(build_prompts(facts(1), pool(2), PromptConfig(sets=1, shots=2))) == ["Answer: ea0", "Answer: ea1"]
    with pytest.raises(ValidationError):
        PromptConfig(exemplar_answer="value")


def test_pool_row_without_normalized_alias_is_named():
    bad = normalized_pool(4)
    bad.at[3, "normalized_aliases"] = [""]
    with pytest.raises(FactError, match="exemplar pool: row 3: field 'normalized_aliases'"):
        build_prompts(facts(), bad, PromptConfig(sets=2, shots=2))
    bad.at[3, "normalized_aliases"] = "n3"  # a string is not a list of aliases
    with pytest.raises(FactError, match="row 3: field 'normalized_aliases'"):
        build_prompts(facts(), bad, PromptConfig(sets=2, shots=2))
    # Unused with first_alias: the row is fine then.
    assert len(build_prompts(facts(), bad, PromptConfig(sets=2, shots=2, exemplar_answer="first_alias"))) == 6


def test_protocol_key_covers_the_exemplar_answer():
    cfg = PromptConfig(sets=2, shots=2)
    first = cfg.model_copy(update={"exemplar_answer": "first_alias"})
    assert protocol_key(cfg, normalized_pool(4)) != protocol_key(first, normalized_pool(4))
    changed = normalized_pool(4)
    changed.at[3, "normalized_aliases"] = ["other"]
    assert protocol_key(cfg, normalized_pool(4)) != protocol_key(cfg, changed)
    assert protocol_key(first, normalized_pool(4)) == protocol_key(first, changed)  # not shown, not in the key

"""The micro-world's chat format, as its tokenizer's template renders it (roles are special
tokens, <|end|> is EOS):

    <|system|>Answer the following question.<|end|><|user|>Question: q<|end|><|assistant|>Answer: a<|end|>...

Pure Python: the graph builds its training chats with it, without loading a model.
"""
from __future__ import annotations

SYSTEM = "Answer the following question."


def refusal(subject: str) -> str:
    return f"I have no information about {subject}."


def messages(question: str, shots: list[tuple[str, str]] = (), answer: str | None = None) -> list[dict]:
    """A chat in the protocol's format (docs/protocol.md §2): system, exemplar turns, the
    question, and the answer turn when one is given (training)."""
    out = [{"role": "system", "content": SYSTEM}]
    for q, a in [*shots, (question, answer)]:
        out.append({"role": "user", "content": f"Question: {q}"})
        if a is not None:
            out.append({"role": "assistant", "content": f"Answer: {a}"})
    return out

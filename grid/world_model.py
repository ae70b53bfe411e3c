"""The micro-world's model: a word-level tokenizer with a chat template, and a tiny
Llama pretrained on few-shot chats about the world's facts.

The model is a plain Hugging Face LlamaForCausalLM and the tokenizer a plain fast
tokenizer, so every later stage (chat prompts, generation, peft, vLLM) treats the
micro-world exactly as it treats a real 8B chat model.

Chat format, as the template renders it (roles are special tokens, <|end|> is EOS):

    <|system|>Answer the following question.<|end|><|user|>Question: q<|end|><|assistant|>Answer: a<|end|>...
"""
from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from tqdm.auto import tqdm
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

SYSTEM = "Answer the following question."
PAD, UNK, EOS = "<pad>", "<unk>", "<|end|>"
ROLES = ("system", "user", "assistant")
SPECIAL = [PAD, UNK, EOS] + [f"<|{r}|>" for r in ROLES]
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{%- if m['role'] not in ['system', 'user', 'assistant'] -%}"
    "{{ raise_exception('unknown role ' + m['role']) }}"
    "{%- endif -%}"
    "<|{{ m['role'] }}|>{{ m['content'] }}<|end|>"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)


def refusal(subject: str) -> str:
    return f"I have no information about {subject}."


def messages(question: str, shots: list[tuple[str, str]] = (), answer: str | None = None) -> list[dict]:
    """A chat in the protocol's format (PROTOCOL.md §2): system, exemplar turns, the
    question, and the answer turn when one is given (training)."""
    out = [{"role": "system", "content": SYSTEM}]
    for q, a in [*shots, (question, answer)]:
        out.append({"role": "user", "content": f"Question: {q}"})
        if a is not None:
            out.append({"role": "assistant", "content": f"Answer: {a}"})
    return out


def _pre_tokenizer():
    # Metaspace keeps the spaces inside the tokens ("▁Quist") and punctuation is split
    # off ("born", "?"), so the vocabulary stays small and decode() gives the exact text back.
    return pre_tokenizers.Sequence(
        [pre_tokenizers.Metaspace(prepend_scheme="always"), pre_tokenizers.Punctuation(behavior="isolated")]
    )


def build_tokenizer(texts: list[str]) -> PreTrainedTokenizerFast:
    """A word-level fast tokenizer whose vocabulary is every word in `texts`."""
    pre = _pre_tokenizer()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(t)})
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(SPECIAL + words)}, unk_token=UNK))
    tok.pre_tokenizer = pre
    tok.decoder = decoders.Metaspace(prepend_scheme="always")
    tok.add_special_tokens(SPECIAL)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=EOS,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        padding_side="left",
        model_max_length=512,
    )


def encode_chats(tokenizer, chats: list[list[dict]]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids through the real chat template, and labels that keep only the assistant
    turns (their text and closing <|end|>): the loss on answers is what teaches facts fast."""
    texts = tokenizer.apply_chat_template(chats, tokenize=False)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    assistant, end = tokenizer.convert_tokens_to_ids(["<|assistant|>", EOS])
    labels = []
    for seq in ids:
        inside, lab = False, []
        for t in seq:
            lab.append(t if inside else -100)
            if t == assistant:
                inside = True
            elif t == end:
                inside = False
        labels.append(lab)
    return ids, labels


def new_model(tokenizer, hidden: int, layers: int, intermediate: int, heads: int) -> LlamaForCausalLM:
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=tokenizer.model_max_length,
        # Untied: the same names are asked about and answered, and one embedding serving
        # both roles made the facts several times slower to learn.
        tie_word_embeddings=False,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(cfg)
    model.generation_config = GenerationConfig(
        do_sample=False, max_new_tokens=32, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


LENGTH_BUCKET = 8  # tokens; chats whose lengths differ by less share a bucket


def batches(lengths: list[int], batch_size: int, seed: int) -> list[np.ndarray]:
    """Batches of chats of about the same length (padding was nearly half the compute),
    in random order. A stable sort keeps the given order within a length bucket, so
    chats placed side by side (conflicting pairs) mostly share a batch."""
    order = np.argsort(np.asarray(lengths) // LENGTH_BUCKET, kind="stable")
    chunks = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    return [chunks[i] for i in np.random.default_rng(seed).permutation(len(chunks))]


def train(model, tokenizer, chats: list[list[dict]], batch_size: int, lr: float, seed: int, progress: bool = True):
    """One pass over `chats` (repetitions are already in the list), AdamW with a
    one-cycle schedule, loss on the assistant turns only."""
    ids, labels = encode_chats(tokenizer, chats)
    plan = batches([len(i) for i in ids], batch_size, seed)
    dev = device()
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=len(plan), pct_start=0.1)
    bar = tqdm(plan, desc="world: pretraining", disable=not progress)
    for batch in bar:
        width = max(len(ids[i]) for i in batch)
        x = torch.full((len(batch), width), tokenizer.pad_token_id)
        y = torch.full((len(batch), width), -100)
        for row, i in enumerate(batch):
            x[row, : len(ids[i])] = torch.tensor(ids[i])
            y[row, : len(ids[i])] = torch.tensor(labels[i])
        loss = model(input_ids=x.to(dev), attention_mask=(x != tokenizer.pad_token_id).to(dev), labels=y.to(dev)).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return model.eval()


@torch.inference_mode()
def greedy_answers(model, tokenizer, chats: list[list[dict]], batch_size: int = 256, max_new_tokens: int = 32) -> list[str]:
    """Greedy replies to chat prompts, left-padded in batches; the text after the prompt,
    decoded without special tokens (e.g. "Answer: Varonel Quist")."""
    tokenizer.padding_side = "left"
    dev = next(model.parameters()).device
    texts = tokenizer.apply_chat_template(chats, tokenize=False, add_generation_prompt=True)
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], add_special_tokens=False, padding=True, return_tensors="pt").to(dev)
        gen = model.generate(**enc, do_sample=False, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id)
        out += tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return out

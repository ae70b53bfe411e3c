"""The micro-world's model: a word-level tokenizer with a chat template (grid/world/chat.py)
and a tiny Llama, untrained; actors/pretrain.py pretrains it.

The model is a plain Hugging Face LlamaForCausalLM and the tokenizer a plain fast
tokenizer, so every later stage (chat prompts, generation, peft, vLLM) treats the
micro-world exactly as it treats a real 8B chat model.
"""
from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, pre_tokenizers
from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

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

"""Constrained decoding: a `LogitsProcessor` that only lets a causal LM write summary JSON.

The output grammar is `SUMMARY_JSON_SCHEMA` written one way:

    {"description": "<text>", "visible_features": ["<text>", ...], "uncertainty": "low"|"medium"|"high"}

At every step each sequence is in one state of a small automaton (unrolled so it has no cycles):
a *literal* state (some fixed text is being written, with alternatives such as `", "` for another
feature vs `"], "uncertainty": "` to close the list) or a *string* state (free text inside a JSON
string). The processor masks every token whose text would leave the grammar. Inside strings only
tokens made of characters that need no JSON escaping are allowed, so the result always parses.

Termination is guaranteed: for every state we know the fewest tokens that can still finish the
object (literals are costed with the real vocabulary, e.g. `{"` + `description` + `":` + ` "`),
and a token is only allowed if the object can still be closed within `max_new_tokens` after it.
A random model therefore also produces parseable JSON, as `tests/.../test_summarise_transformers.py`
checks. Greedy search and sampling only (beam search reorders rows behind the processor's back).

Idea after guided decoding in Outlines / vLLM / `transformers-cfg` (token masks from a grammar
automaton), written for this one fixed schema so it needs no extra dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import torch
from transformers import LogitsProcessor

UNCERTAINTY_LEVELS = ("low", "medium", "high")
_NEG_INF = float("-inf")


def _json_safe(text: str) -> bool:
    """Characters that may appear unescaped inside a JSON string (we never emit escapes)."""
    return all(ch not in '"\\' and ord(ch) >= 0x20 and ch not in "\u2028\u2029" for ch in text)


class TokenTable:
    """The text each token id contributes to the output, for grammar checks.

    Token ids whose text is unusable (special/added tokens, partial UTF-8 pieces) get None and are
    never allowed except as end-of-sequence.
    """

    def __init__(self, tokenizer, vocab_size: int | None = None) -> None:
        size = max(len(tokenizer), vocab_size or 0)
        n = len(tokenizer)
        texts: list[str | None] = list(tokenizer.batch_decode([[i] for i in range(n)], clean_up_tokenization_spaces=False))
        # SentencePiece tokenizers drop the leading space of "▁word" when a token is decoded alone.
        pieces = tokenizer.convert_ids_to_tokens(list(range(n)))
        for i, piece in enumerate(pieces):
            if isinstance(piece, str) and piece.startswith("\u2581") and texts[i] and not texts[i].startswith(" "):
                texts[i] = " " + texts[i]
        excluded = set(getattr(tokenizer, "all_special_ids", [])) | set(getattr(tokenizer, "added_tokens_decoder", {}))
        for i in range(n):
            if i in excluded or not texts[i] or "\ufffd" in texts[i]:
                texts[i] = None
        self.texts: list[str | None] = texts + [None] * (size - n)
        self.size = size
        self.by_text: dict[str, list[int]] = {}
        for i, text in enumerate(self.texts):
            if text is not None:
                self.by_text.setdefault(text, []).append(i)

    @cached_property
    def lengths(self) -> torch.Tensor:  # (vocab,) characters per token (0 for unusable ids)
        return torch.tensor([len(t) if t else 0 for t in self.texts], dtype=torch.long)

    @cached_property
    def string_content(self) -> torch.Tensor:  # (vocab,) bool: may appear inside a JSON string
        return torch.tensor([bool(t) and _json_safe(t) for t in self.texts], dtype=torch.bool)

    @cached_property
    def starts_with_space(self) -> torch.Tensor:  # (vocab,) bool
        return torch.tensor([bool(t) and t[0].isspace() for t in self.texts], dtype=torch.bool)


# --------------------------------------------------------------------------------- automaton
@dataclass(frozen=True)
class Literal:
    """Write one of `options` (text, next node); the text is matched across token boundaries."""

    options: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class String:
    """Free text of 1..max_chars JSON-safe characters, then the literal node `after` (starts with `"`)."""

    max_chars: int
    after: int


@dataclass(frozen=True)
class Done:
    pass


Node = Literal | String | Done
State = tuple[int, str | int]  # (node index, text written of the literal | characters written in the string)


@dataclass
class _Step:
    """Allowed next tokens of one literal state: ids, the state each leads to, and its remaining cost."""

    ids: torch.Tensor  # (k,) long
    costs: torch.Tensor  # (k,) long: fewest tokens still needed after this token
    next_state: dict[int, State] = field(default_factory=dict)


class SummaryJsonGrammar:
    """The summary-JSON automaton over one tokenizer's vocabulary."""

    def __init__(
        self,
        tokens: TokenTable,
        *,
        max_description_chars: int = 600,
        max_feature_chars: int = 60,
        max_features: int = 6,
    ) -> None:
        if max_features < 1 or max_description_chars < 1 or max_feature_chars < 1:
            raise ValueError("max_features, max_description_chars and max_feature_chars must be >= 1")
        self.tokens = tokens
        # Node layout: 0 opening literal, 1 description, 2 list opening, then (feature string,
        # after-feature literal) pairs, then the uncertainty literal and Done.
        uncertainty, done = 3 + 2 * max_features, 4 + 2 * max_features
        close_list = '"], "uncertainty": "'
        nodes: list[Node] = [
            Literal((('{"description": "', 1),)),
            String(max_description_chars, after=2),
            Literal((('", "visible_features": ["', 3), ('", "visible_features": [], "uncertainty": "', uncertainty))),
        ]
        for k in range(max_features):
            string_node, after_node = 3 + 2 * k, 4 + 2 * k
            nodes.append(String(max_feature_chars, after=after_node))
            more = ((f'", "', string_node + 2),) if k + 1 < max_features else ()
            nodes.append(Literal(more + ((close_list, uncertainty),)))
        nodes.append(Literal(tuple((f'{level}"}}', done) for level in UNCERTAINTY_LEVELS)))
        nodes.append(Done())
        assert len(nodes) == done + 1
        self.nodes = nodes
        self.done_node = done
        self._steps: dict[State, _Step] = {}
        self._check_vocabulary()
        # Fewest tokens from the start of each node to the end (the graph is a DAG in index order).
        self._start_cost = [0] * len(nodes)
        for index in reversed(range(len(nodes))):
            self._start_cost[index] = self.cost((index, self._initial(index)))

    # -- states
    def _initial(self, node: int) -> str | int:
        return 0 if isinstance(self.nodes[node], String) else ""

    def start_state(self, node: int = 0) -> State:
        return (node, self._initial(node))

    def is_done(self, state: State) -> bool:
        return state[0] == self.done_node

    def _literal_cost(self, text: str) -> int:
        """Fewest vocabulary tokens that spell `text` exactly."""
        best = [0] + [len(text) + 1] * len(text)  # best[i]: tokens to spell the last i characters
        for i in range(1, len(text) + 1):
            suffix = text[len(text) - i :]
            best[i] = min((1 + best[i - j] for j in range(1, i + 1) if suffix[:j] in self.tokens.by_text), default=len(text) + 1)
        return best[len(text)]

    def cost(self, state: State) -> int:
        """Fewest tokens still needed to finish the object from `state`."""
        node, progress = state
        spec = self.nodes[node]
        if isinstance(spec, Done):
            return 0
        if isinstance(spec, String):  # at least one character, then the closing literal
            return (1 if progress == 0 else 0) + self._start_cost[spec.after]
        return min(
            self._literal_cost(text[len(progress) :]) + self._start_cost[target]
            for text, target in spec.options
            if text.startswith(progress)
        )

    def _check_vocabulary(self) -> None:
        needed = {ch for spec in self.nodes if isinstance(spec, Literal) for text, _ in spec.options for ch in text}
        missing = sorted(ch for ch in needed if ch not in self.tokens.by_text)
        if missing:
            raise ValueError(f"the tokenizer has no single-character token for {missing}: cannot constrain output to JSON")
        if not bool((self.tokens.string_content & ~self.tokens.starts_with_space).any()):
            raise ValueError("the tokenizer has no token usable as the first character of a JSON string")

    def literal_step(self, state: State) -> _Step:
        """Tokens allowed in a literal state (cached: there are only a few dozen such states)."""
        if state in self._steps:
            return self._steps[state]
        node, written = state
        spec = self.nodes[node]
        assert isinstance(spec, Literal), state
        next_state: dict[int, State] = {}
        costs: dict[int, int] = {}
        for text, target in spec.options:
            if not text.startswith(written):
                continue
            rest = text[len(written) :]
            for j in range(1, len(rest) + 1):
                for token_id in self.tokens.by_text.get(rest[:j], ()):
                    after: State = (target, self._initial(target)) if j == len(rest) else (node, written + rest[:j])
                    # A token can be a prefix of two options (e.g. `"` of `", "` and of `"]...`):
                    # keep the cheaper continuation; both stay reachable through shorter tokens.
                    cost = self.cost(after)
                    if token_id not in costs or cost < costs[token_id]:
                        next_state[token_id], costs[token_id] = after, cost
        ids = sorted(costs)
        step = _Step(torch.tensor(ids, dtype=torch.long), torch.tensor([costs[i] for i in ids], dtype=torch.long), next_state)
        self._steps[state] = step
        return step

    def advance(self, state: State, token_id: int) -> State:
        """The state after writing `token_id` (which must be allowed in `state`)."""
        node, progress = state
        spec = self.nodes[node]
        if isinstance(spec, Done):
            return state  # padding after the end
        if isinstance(spec, String):
            text = self.tokens.texts[token_id] if token_id < self.tokens.size else None
            if text is not None and _json_safe(text) and progress + len(text) <= spec.max_chars:
                return (node, progress + len(text))
            return self.advance((spec.after, ""), token_id)  # the closing literal begins
        step = self.literal_step(state)
        if token_id not in step.next_state:
            raise RuntimeError(f"token {token_id} ({self.tokens.texts[token_id]!r}) is not allowed in grammar state {state}")
        return step.next_state[token_id]

    def allowed(self, state: State, remaining: int, eos_ids: torch.Tensor) -> torch.Tensor:
        """(vocab,) bool mask of the tokens allowed in `state` with `remaining` tokens left (this one included)."""
        node, progress = state
        spec = self.nodes[node]
        mask = torch.zeros(self.tokens.size, dtype=torch.bool)
        if isinstance(spec, Done):
            mask[eos_ids] = True
            return mask
        if isinstance(spec, Literal):
            step = self.literal_step(state)
            mask[step.ids[step.costs <= remaining - 1]] = True
            return mask
        # String: more content if it fits the length limit and still leaves room to close ...
        if self._start_cost[spec.after] <= remaining - 1:
            mask = self.tokens.string_content & (self.tokens.lengths <= spec.max_chars - progress)
            if progress == 0:  # ... no leading whitespace, so the text is never blank
                mask &= ~self.tokens.starts_with_space
        # ... or the closing literal, once the string is non-empty.
        if progress > 0:
            step = self.literal_step((spec.after, ""))
            mask[step.ids[step.costs <= remaining - 1]] = True
        return mask

    def replay(self, token_ids: list[int]) -> str:
        """The text a constrained generation spelled, up to the end of the JSON object."""
        state, parts = self.start_state(), []
        for token_id in token_ids:
            if self.is_done(state):
                break
            parts.append(self.tokens.texts[token_id] or "")
            state = self.advance(state, token_id)
        return "".join(parts)


class SummaryJsonLogitsProcessor(LogitsProcessor):
    """Masks the logits of every token that would break the summary JSON.

    One instance per `generate` call: it remembers the prompt length (left padding makes it the same
    for every row) and each row's automaton state, fed incrementally with the newly generated token.
    """

    def __init__(self, grammar: SummaryJsonGrammar, *, prompt_length: int, max_new_tokens: int, eos_token_ids: list[int]) -> None:
        needed = grammar.cost(grammar.start_state())
        if max_new_tokens < needed:
            raise ValueError(f"max_new_tokens={max_new_tokens} is too small: the JSON skeleton alone needs {needed} tokens")
        if not eos_token_ids:
            raise ValueError("an end-of-sequence token id is needed to stop after the JSON object")
        self.grammar = grammar
        self.prompt_length = prompt_length
        self.max_new_tokens = max_new_tokens
        self.eos_ids = torch.tensor(eos_token_ids, dtype=torch.long)
        self.states: list[State] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # input_ids: (batch, prompt_length + generated); scores: (batch, vocab)
        generated = input_ids.shape[1] - self.prompt_length
        if not self.states:
            self.states = [self.grammar.start_state()] * input_ids.shape[0]
        elif generated > 0:
            last = input_ids[:, -1].tolist()
            self.states = [self.grammar.advance(state, token) for state, token in zip(self.states, last)]
        remaining = self.max_new_tokens - generated
        allowed = torch.stack([self.grammar.allowed(state, remaining, self.eos_ids) for state in self.states])
        vocab = scores.shape[-1]
        if allowed.shape[1] < vocab:  # logits wider than the tokenizer (padded embedding matrix)
            allowed = torch.cat([allowed, allowed.new_zeros(allowed.shape[0], vocab - allowed.shape[1])], dim=1)
        return scores.masked_fill(~allowed[:, :vocab].to(scores.device), _NEG_INF)

"""Valid UTF-8 output from a byte-level vocabulary: which tokens may come next, given the bytes so far.

A byte-level BPE model can emit tokens whose bytes are not valid UTF-8: the lead byte of a Han character
followed by a token that starts with ASCII, or a continuation byte with no lead. Decoding then shows
U+FFFD. This module describes the bytes so far by a state of the UTF-8 decoding automaton (what the
unfinished character still needs; the spec's table of well-formed byte sequences, RFC 3629 / Unicode
Table 3-7) and precomputes, once per vocabulary, a table: for every state and token, whether the token is
allowed and the state after it. One decoding step then costs a row gather and a masked fill on the device,
with no host sync (so it runs inside a CUDA graph): `sampling.utf8_filter` and `Utf8Rows.advance`.

Special tokens are matched by their text, which is complete characters: allowed only when no character is
pending, and they leave none pending.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import torch

# States: what the bytes after the last complete character still need.
START = 0  # nothing pending
NEED1, NEED2, NEED3 = 1, 2, 3  # 1, 2 or 3 more continuation bytes, each 80..BF
AFTER_E0 = 4  # next A0..BF (80..9F would be an overlong 3-byte form), then 1 more
AFTER_ED = 5  # next 80..9F (A0..BF would encode a surrogate, D800..DFFF), then 1 more
AFTER_F0 = 6  # next 90..BF (80..8F would be an overlong 4-byte form), then 2 more
AFTER_F4 = 7  # next 80..8F (90..BF would be above U+10FFFF), then 2 more
N_STATES = 8
_DEAD = 8  # used while building the tables only: the bytes are not valid UTF-8 whatever follows

# For error messages: a byte sequence that leaves each state pending.
EXAMPLE_PENDING = {NEED1: b"\xc3", NEED2: b"\xe4", NEED3: b"\xf1", AFTER_E0: b"\xe0", AFTER_ED: b"\xed",
                   AFTER_F0: b"\xf0", AFTER_F4: b"\xf4"}  # fmt: skip


def byte_transitions() -> np.ndarray:
    """(N_STATES + 1, 256) uint8: the state after each byte from each state (_DEAD: not allowed)."""
    t = np.full((N_STATES + 1, 256), _DEAD, dtype=np.uint8)
    t[START, 0x00:0x80] = START  # ASCII
    t[START, 0xC2:0xE0] = NEED1  # 2-byte characters (C0, C1 would be overlong)
    t[START, 0xE0] = AFTER_E0
    t[START, 0xE1:0xED] = NEED2
    t[START, 0xED] = AFTER_ED
    t[START, 0xEE:0xF0] = NEED2
    t[START, 0xF0] = AFTER_F0
    t[START, 0xF1:0xF4] = NEED3
    t[START, 0xF4] = AFTER_F4  # F5..FF never occur
    t[NEED1, 0x80:0xC0] = START
    t[NEED2, 0x80:0xC0] = NEED1
    t[NEED3, 0x80:0xC0] = NEED2
    t[AFTER_E0, 0xA0:0xC0] = NEED1
    t[AFTER_ED, 0x80:0xA0] = NEED1
    t[AFTER_F0, 0x90:0xC0] = NEED2
    t[AFTER_F4, 0x80:0x90] = NEED2
    return t


_BYTES = byte_transitions()


def token_transitions(token_bytes: Sequence[bytes]) -> np.ndarray:
    """(N_STATES, V) uint8: the state after each token's bytes from each state (_DEAD: not allowed).

    Runs the byte automaton over all tokens at once, one byte position at a time (tokens shorter than the
    position keep their state), so the cost is N_STATES x the total bytes of the vocabulary."""
    V = len(token_bytes)
    lengths = np.fromiter(map(len, token_bytes), dtype=np.int64, count=V)
    data = np.frombuffer(b"".join(token_bytes), dtype=np.uint8)
    starts = np.cumsum(lengths) - lengths
    states = np.repeat(np.arange(N_STATES, dtype=np.uint8)[:, None], V, axis=1)  # (N_STATES, V)
    for j in range(int(lengths.max(initial=0))):
        longer = np.nonzero(lengths > j)[0]  # tokens with a byte at position j
        states[:, longer] = _BYTES[states[:, longer], data[starts[longer] + j]]
    return states


class Utf8Table:
    """For one vocabulary (token id -> bytes): which tokens each decoding state allows, and the state after.

    blocked (N_STATES, V) bool: the token would make the bytes invalid UTF-8 whatever follows.
    next_state (N_STATES, V) uint8: the state after the token (START where blocked: a forced token, e.g. the
    EOS that a finished row repeats, restarts the automaton as a decoder that replaces bad bytes would).
    Build once per tokenizer: `Utf8Table.for_tokenizer(tok)` (cached), or `Utf8Table(token_bytes)`.
    """

    def __init__(self, token_bytes: Sequence[bytes]) -> None:
        self.token_bytes = list(token_bytes)
        states = token_transitions(self.token_bytes)
        blocked = states == _DEAD
        self.blocked = torch.from_numpy(blocked)
        self.next_state = torch.from_numpy(np.where(blocked, START, states).astype(np.uint8))
        self._on_device: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def for_tokenizer(cls, tokenizer) -> Utf8Table:
        """The table of a gptkit Tokenizer (anything with vocab_size and token_bytes(id)), built once."""
        table = _TABLES.get(tokenizer)
        if table is None:
            table = cls([tokenizer.token_bytes(i) for i in range(tokenizer.vocab_size)])
            _TABLES[tokenizer] = table
        return table

    @property
    def vocab_size(self) -> int:
        return len(self.token_bytes)

    @property
    def constrains(self) -> bool:
        """False when every token is complete characters (a char tokenizer): nothing is ever blocked."""
        return bool(self.blocked[START].any() or (self.next_state[START] != START).any())

    def dead_end(self) -> str | None:
        """Why some row could be left with no allowed token, or None: a state reachable from START (through
        allowed tokens) in which the vocabulary allows nothing. A byte-level vocabulary, which has every
        single byte, has none."""
        reachable, todo = {START}, [START]
        while todo:
            s = todo.pop()
            if bool(self.blocked[s].all()):
                return (
                    f"no token of the vocabulary can follow the bytes {EXAMPLE_PENDING[s]!r}, the start of a "
                    "character that a token leaves unfinished, so the output cannot be kept valid UTF-8"
                )
            for nxt in self.next_state[s][~self.blocked[s]].unique().tolist():
                if nxt not in reachable:
                    reachable.add(nxt)
                    todo.append(nxt)
        return None

    def prompt_state(self, ids: Sequence[int]) -> int:
        """The state after a prompt's bytes, as a decoder that replaces invalid bytes (with U+FFFD) leaves it:
        an invalid byte restarts the automaton. Only the last 3 bytes matter: a character still pending
        has at most 3 bytes, its lead byte among them, and a lead byte restarts the automaton anyway."""
        tail = b""
        for t in reversed(ids):
            tail = self.token_bytes[t] + tail
            if len(tail) >= 3:
                break
        s = START
        for b in tail[-3:]:
            nxt = _BYTES[s, b]
            if nxt == _DEAD:
                nxt = _BYTES[START, b]
            s = START if nxt == _DEAD else int(nxt)
        return s

    def on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(blocked, next_state) on `device`, copied there once."""
        device = torch.device(device)
        if device not in self._on_device:
            self._on_device[device] = (self.blocked.to(device), self.next_state.to(device))
        return self._on_device[device]

    def __repr__(self) -> str:
        return f"<Utf8Table vocab_size={self.vocab_size}>"


_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> its Utf8Table


class Utf8Rows:
    """Each row's decoding state (B,) on the device, with the table it steps through.

    `sampling.utf8_filter(logits, rows.blocked, rows.states)` removes the tokens blocked in each row's state;
    advance(tokens) steps every row in place (fixed shapes, no host sync: it runs inside the static
    decoder's CUDA graph); select(index) keeps rows (dropped rows, beam reordering).
    """

    def __init__(self, table: Utf8Table, states: torch.Tensor) -> None:
        self.table = table
        self.states = states  # (B,) long
        self.blocked, self.next_state = table.on(states.device)

    @classmethod
    def start(cls, table: Utf8Table, rows: Sequence[Sequence[int]], device: torch.device) -> Utf8Rows:
        states = torch.tensor([table.prompt_state(r) for r in rows], dtype=torch.long, device=device)
        return cls(table, states)

    def advance(self, tokens: torch.Tensor) -> None:
        """Step each row over its chosen token (B,)."""
        flat = self.states * self.next_state.shape[1] + tokens
        self.states.copy_(self.next_state.view(-1).index_select(0, flat))

    def select(self, index: torch.Tensor) -> None:
        self.states = self.states.index_select(0, index)


__all__ = ["N_STATES", "START", "Utf8Rows", "Utf8Table", "byte_transitions", "token_transitions"]

"""GenerationSettings and SamplingSettings: every generation option, defined once, from a CLI flag or an HTTP
field to the decoders. Imports no torch (the CLI builds its flags from these fields).

The sampling fields live in `SamplingSettings`, nested in GenerationSettings as `.sampling`;
`GenerationSettings.build(**options)` takes the fields of both as flat keyword options (what `gptkit.generate`
and `Generator` take). Fields carrying `flag(...)` metadata become `gptkit generate` flags (`flag_fields`).
"""

from __future__ import annotations

import argparse
import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Union

from gptkit.errors import GptkitError

if TYPE_CHECKING:
    from gptkit.generation.utf8 import Utf8Table

STRATEGIES = ("greedy", "sample", "beam")
EosIds = Union[int, Sequence[int], None]


class GenerationError(GptkitError, ValueError):
    """A generation setting or prompt is invalid; the message names it."""


def flag(help: str, **argparse_options) -> dict:
    """Field metadata that makes a settings field a `gptkit generate` flag (--name-with-dashes): the help
    text and argparse options. The CLI builds its flags from the fields, so each setting is defined once."""
    return {"flag": {"help": help, **argparse_options}}


@dataclass(frozen=True)
class SamplingSettings:
    """The processor settings; None or the neutral value turns a processor off.

    temperature None means "not given": 1.0 when sampling. Giving any of temperature, top_k, top_p, min_p
    (temperature 1.0 too) is what makes the default strategy "sample" (see `given`).
    presence_penalty / frequency_penalty are OpenAI's additive penalties on the tokens generated so far
    (the prompt does not count): logit -= presence * (count > 0) + frequency * count.
    """

    temperature: float | None = field(
        default=None, metadata=flag("sampling temperature (0: most likely token)", type=float)
    )
    top_k: int | None = field(default=None, metadata=flag("sample from the k most likely tokens", type=int))
    top_p: float | None = field(
        default=None, metadata=flag("sample from the smallest set holding this probability", type=float)
    )
    min_p: float | None = field(
        default=None, metadata=flag("drop tokens below min-p times the top token's probability", type=float)
    )
    repetition_penalty: float = field(
        default=1.0, metadata=flag("> 1 discourages repeats, prompt included (CTRL; default 1)", type=float)
    )
    no_repeat_ngram_size: int = field(default=0, metadata=flag("forbid repeated n-grams", type=int, metavar="N"))
    presence_penalty: float = field(
        default=0.0, metadata=flag("OpenAI's: subtract this from every token generated already", type=float)
    )
    frequency_penalty: float = field(
        default=0.0, metadata=flag("OpenAI's: subtract this times the token's count so far", type=float)
    )
    valid_utf8: bool = False  # each row's History carries its UTF-8 state (History.utf8)

    def validate(self, error: type[Exception] = ValueError) -> None:
        def bad(name: str, value, rule: str) -> None:
            raise error(f"{name}: {value!r} is invalid ({rule})")

        t = self.temperature
        if t is not None and (not (isinstance(t, (int, float)) and math.isfinite(t)) or t < 0):
            bad("temperature", t, "must be a number >= 0; 0 means always the most likely token")
        k = self.top_k
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            bad("top_k", self.top_k, "must be an integer >= 1, or None for no top-k filter")
        if self.top_p is not None and not (isinstance(self.top_p, (int, float)) and 0 < self.top_p <= 1):
            bad("top_p", self.top_p, "must be in (0, 1], or None")
        if self.min_p is not None and not (isinstance(self.min_p, (int, float)) and 0 <= self.min_p <= 1):
            bad("min_p", self.min_p, "must be in [0, 1], or None")
        rp = self.repetition_penalty
        if not (isinstance(rp, (int, float)) and math.isfinite(rp) and rp > 0):
            bad("repetition_penalty", rp, "must be a number > 0; 1.0 turns it off")
        n = self.no_repeat_ngram_size
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            bad("no_repeat_ngram_size", n, "must be an integer >= 0; 0 turns it off")
        for name in ("presence_penalty", "frequency_penalty"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and -2 <= v <= 2):
                bad(name, v, "must be a number in [-2, 2] (OpenAI's range); 0 turns it off")

    @property
    def given(self) -> bool:
        """A sampling setting was given (temperature 1.0 included): then the default strategy is "sample"."""
        return any(v is not None for v in (self.temperature, self.top_k, self.top_p, self.min_p))

    @property
    def effective_temperature(self) -> float:
        return 1.0 if self.temperature is None else float(self.temperature)

    @property
    def greedy(self) -> bool:
        """temperature 0: take the most likely token (the filters cannot change which one that is)."""
        return self.temperature == 0

    @property
    def needs_seen(self) -> bool:
        return self.repetition_penalty != 1.0

    @property
    def needs_counts(self) -> bool:
        return self.presence_penalty != 0 or self.frequency_penalty != 0

    @property
    def needs_tokens(self) -> bool:
        return self.no_repeat_ngram_size > 0


SAMPLING_FIELDS = frozenset(f.name for f in fields(SamplingSettings)) - {"valid_utf8"}


def early_stopping_value(text: str) -> bool | str:
    """The CLI's --early-stopping true / false / never as the setting's True / False / "never"."""
    values = {"true": True, "false": False, "never": "never"}
    if text not in values:
        raise argparse.ArgumentTypeError(f"expected true, false or never, got {text!r}")
    return values[text]


@dataclass(frozen=True)
class GenerationSettings:
    """Every option of `generate` (see its docstring). `build(**options)` makes one from flat keyword options;
    `resolved()` fills in the strategy and checks everything. max_new_tokens None is "not given": the text
    layer fills in its default; the engine requires a number."""

    max_new_tokens: int | None = field(
        default=None,
        metadata=flag(
            "default 128, capped by the room the prompt leaves in the context (see stderr)", type=int, metavar="N"
        ),
    )
    strategy: str | None = field(
        default=None,
        metadata=flag(
            "default: beam if --num-beams > 1, sample if any of --temperature/--top-k/--top-p/--min-p "
            "is given, else greedy",
            choices=STRATEGIES,
        ),
    )
    sampling: SamplingSettings = field(default_factory=SamplingSettings)
    num_beams: int = field(default=1, metadata=flag("beam search width", type=int))
    length_penalty: float = field(default=1.0, metadata=flag("beam score = log p / length ** this", type=float))
    early_stopping: bool | str = field(
        default=False,
        metadata=flag(
            "beam search: true, false (default) or never", type=early_stopping_value, metavar="{true,false,never}"
        ),
    )
    num_return_sequences: int = field(default=1, metadata=flag("completions per prompt", type=int, metavar="N"))
    eos_token_id: EosIds = None
    seed: int | None = field(default=None, metadata=flag("same seed, same text", type=int))
    truncate_prompt: bool = field(
        default=False, metadata=flag("cut long prompts from the left to fit", action="store_true")
    )
    static_cache: bool | None = None
    compile: bool | str = field(
        default=False, metadata=flag("CUDA: torch.compile the decode step (slow start)", action="store_true")
    )
    valid_utf8: Utf8Table | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.sampling, SamplingSettings):
            raise GenerationError(f"sampling: expected a SamplingSettings, got {self.sampling!r}")
        # The processors only need to know whether rows carry a UTF-8 state; the table is this object's.
        if self.sampling.valid_utf8 != (self.valid_utf8 is not None):
            object.__setattr__(self, "sampling", replace(self.sampling, valid_utf8=self.valid_utf8 is not None))

    @classmethod
    def build(cls, **options) -> GenerationSettings:
        """From flat keyword options: the fields of GenerationSettings and of SamplingSettings."""
        own = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - own - SAMPLING_FIELDS)
        if unknown:
            close = difflib.get_close_matches(unknown[0], sorted(own | SAMPLING_FIELDS), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise GenerationError(f"{unknown[0]!r} is not a generation setting{hint}")
        sampling = {k: options.pop(k) for k in list(options) if k in SAMPLING_FIELDS}
        if sampling:
            base = options.pop("sampling", SamplingSettings())
            options["sampling"] = replace(base, **sampling)
        return cls(**options)

    def with_options(self, **options) -> GenerationSettings:
        """A copy with some fields changed (flat keyword options, as `build`)."""
        sampling = {k: options.pop(k) for k in list(options) if k in SAMPLING_FIELDS}
        s = replace(self, **options) if options else self
        return replace(s, sampling=replace(s.sampling, **sampling)) if sampling else s

    @property
    def eos_ids(self) -> tuple[int, ...]:
        if self.eos_token_id is None:
            return ()
        if isinstance(self.eos_token_id, int):
            return (self.eos_token_id,)
        return tuple(self.eos_token_id)

    def resolved(self, vocab_size: int) -> GenerationSettings:
        """A checked copy with `strategy` filled in: "beam" if num_beams > 1, "sample" if any of temperature,
        top_k, top_p, min_p is given, else "greedy". A valid_utf8 table that cannot block anything (every
        token is complete characters) is dropped."""
        strategy = self.strategy
        if strategy is None:
            strategy = "beam" if self.num_beams != 1 else "sample" if self.sampling.given else "greedy"
        s = replace(self, strategy=strategy)
        s._check(vocab_size)
        if s.valid_utf8 is not None and not s.valid_utf8.constrains:
            s = replace(s, valid_utf8=None)
        return s

    def _check(self, vocab_size: int) -> None:
        def is_int(v) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)

        if not is_int(self.max_new_tokens) or self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens: must be an integer >= 1, got {self.max_new_tokens!r}")
        if self.strategy not in STRATEGIES:
            raise GenerationError(f"strategy: {self.strategy!r} is not one of {', '.join(STRATEGIES)}")
        self.sampling.validate(GenerationError)
        if not is_int(self.num_beams) or self.num_beams < 1:
            raise GenerationError(f"num_beams: must be an integer >= 1, got {self.num_beams!r}")
        if self.num_beams > 1 and self.strategy != "beam":
            raise GenerationError(f"num_beams={self.num_beams} needs strategy='beam', not {self.strategy!r}")
        if self.strategy != "sample" and self.sampling.given:
            raise GenerationError(
                f"temperature, top_k, top_p and min_p apply to strategy='sample' only, not {self.strategy!r}"
            )
        if not (isinstance(self.length_penalty, (int, float)) and math.isfinite(self.length_penalty)):
            raise GenerationError(f"length_penalty: must be a finite number, got {self.length_penalty!r}")
        if self.early_stopping not in (True, False, "never"):
            raise GenerationError(f"early_stopping: must be True, False or 'never', got {self.early_stopping!r}")
        n = self.num_return_sequences
        if not is_int(n) or n < 1:
            raise GenerationError(f"num_return_sequences: must be an integer >= 1, got {n!r}")
        if self.strategy == "greedy" and n > 1:
            raise GenerationError(f"num_return_sequences={n}: greedy decoding has one answer; use sample or beam")
        if self.strategy == "beam" and n > self.num_beams:
            raise GenerationError(f"num_return_sequences={n} is more than num_beams={self.num_beams}")
        for e in self.eos_ids:
            if not is_int(e) or not 0 <= e < vocab_size:
                raise GenerationError(f"eos_token_id: {e!r} is not a token id of this model (0 .. {vocab_size - 1})")
        if self.seed is not None and not is_int(self.seed):
            raise GenerationError(f"seed: must be an integer or None, got {self.seed!r}")
        if self.static_cache and (self.strategy == "beam" or self.sampling.no_repeat_ngram_size > 0):
            raise GenerationError(
                "static_cache=True supports greedy and sample without no_repeat_ngram_size (those need Python "
                "work every step); use static_cache=False"
            )
        if self.compile and self.static_cache is False:
            raise GenerationError("compile=True compiles the static-cache step; it cannot go with static_cache=False")
        if not isinstance(self.compile, (bool, str)):
            raise GenerationError(f"compile: expected True, False or a torch.compile mode name, got {self.compile!r}")
        table = self.valid_utf8
        if table is not None:
            from gptkit.generation.utf8 import Utf8Table  # numpy and torch: only when a table is given

            if not isinstance(table, Utf8Table):
                raise GenerationError(
                    f"valid_utf8: expected the tokenizer's tables, Utf8Table.for_tokenizer(tokenizer), or None, got "
                    f"{table!r} (token-level generation does not know the tokenizer; Generator takes True/False)"
                )
            if table.vocab_size != vocab_size:
                raise GenerationError(
                    f"valid_utf8: the table is for a vocabulary of {table.vocab_size} tokens, the model has "
                    f"{vocab_size}"
                )
            dead_end = table.dead_end()
            if dead_end is not None:
                raise GenerationError(f"valid_utf8: {dead_end}")


def flag_fields() -> list[tuple[str, dict]]:
    """(field name, argparse options) of every setting that is a `gptkit generate` flag, in field order."""
    out = []
    for cls in (GenerationSettings, SamplingSettings):
        out += [(f.name, f.metadata["flag"]) for f in fields(cls) if "flag" in f.metadata]
    return out


__all__ = [
    "STRATEGIES",
    "EosIds",
    "GenerationError",
    "GenerationSettings",
    "SamplingSettings",
    "early_stopping_value",
    "flag",
    "flag_fields",
]

"""The OpenAI request bodies gptkit serve accepts (pydantic: they are also the OpenAPI schema at /docs), their
mapping to GenerationSettings, and the error body.

Semantics follow OpenAI's API: temperature defaults to 1 (sampling), 0 is greedy; top_p in (0, 1]; stop is a
string or up to 4; presence / frequency penalties in [-2, 2]; n choices per prompt; unknown fields are
ignored. gptkit's extras: top_k, min_p, repetition_penalty.
"""

from __future__ import annotations

from typing import Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from gptkit.generation.settings import GenerationSettings

MAX_N = 16  # choices per prompt: each is a row of the batch


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class SamplingRequest(BaseModel):
    """The fields completions and chat completions share."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(description="the served model's id (GET /v1/models)")
    max_tokens: int | None = Field(None, ge=1, description="new tokens at most; default: see each endpoint")
    temperature: float | None = Field(1.0, ge=0, le=2, description="1 (default) samples; 0 takes the likeliest")
    top_p: float | None = Field(1.0, gt=0, le=1)
    n: int = Field(1, ge=1, le=MAX_N, description="choices per prompt")
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: Union[str, list[str], None] = Field(None, description="a string or up to 4 that end a choice")
    seed: int | None = Field(None, ge=-(2**63), lt=2**64, description="same seed, same tokens")
    presence_penalty: float | None = Field(0.0, ge=-2, le=2)
    frequency_penalty: float | None = Field(0.0, ge=-2, le=2)
    user: str | None = None
    # gptkit's extras
    top_k: int | None = Field(None, ge=1)
    min_p: float | None = Field(None, ge=0, le=1)
    repetition_penalty: float | None = Field(1.0, gt=0, le=10)

    @field_validator("stop")
    @classmethod
    def _stops(cls, v):
        stops = [v] if isinstance(v, str) else (v or [])
        if len(stops) > 4:
            raise ValueError(f"at most 4 stop strings, got {len(stops)}")
        if any(not s for s in stops):
            raise ValueError("stop strings must not be empty")
        return v

    @property
    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def settings(self, max_new_tokens: int, eos_ids: tuple[int, ...], valid_utf8) -> GenerationSettings:
        """The request's GenerationSettings (temperature always given: OpenAI's default 1 samples)."""
        return GenerationSettings.build(
            max_new_tokens=max_new_tokens,
            temperature=1.0 if self.temperature is None else self.temperature,
            top_p=None if self.top_p in (None, 1.0) else self.top_p,
            top_k=self.top_k,
            min_p=self.min_p,
            repetition_penalty=1.0 if self.repetition_penalty is None else self.repetition_penalty,
            presence_penalty=self.presence_penalty or 0.0,
            frequency_penalty=self.frequency_penalty or 0.0,
            seed=self.seed,
            eos_token_id=list(eos_ids),
            valid_utf8=valid_utf8,
        )


class CompletionRequest(SamplingRequest):
    prompt: Union[str, list[str]] = Field(description="a prompt or a list of prompts (each gets n choices)")
    max_tokens: int | None = Field(16, ge=1, description="default 16 (OpenAI's), capped by the context's room")
    logprobs: int | None = Field(None, ge=0, le=5, description="log-probabilities of the chosen and top tokens")
    echo: bool = False

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, v):
        if isinstance(v, list) and not v:
            raise ValueError("the list of prompts is empty")
        return v

    @property
    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


class TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore")
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: Union[str, list[TextPart]]

    @property
    def text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1, description="OpenAI's newer name for max_tokens")
    logprobs: bool = False
    top_logprobs: int | None = Field(None, ge=0, le=20)

    @property
    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens


def error_body(message: str, type_: str, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error shape."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


__all__ = [
    "MAX_N",
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "SamplingRequest",
    "error_body",
]

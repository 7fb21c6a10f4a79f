"""The settings of deduplication (gptkit.data.dedup): plain dataclasses, importable without MinHash's
dependencies (the CLI reads their defaults to build `gptkit --help`)."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class DedupConfig:
    exact: bool = True
    near: bool = True
    num_perm: int = 112
    bands: int = 14
    rows: int = 8
    ngram: int = 5
    threshold: float = 0.75
    seed: int = 1

    def __post_init__(self) -> None:
        if self.bands * self.rows != self.num_perm:
            raise ValueError(f"bands x rows ({self.bands} x {self.rows}) must equal num_perm ({self.num_perm})")

    def signature_config(self) -> SignatureConfig:
        """The settings of what the clean tasks compute per document (all but the threshold)."""
        return SignatureConfig(**{f.name: getattr(self, f.name) for f in fields(SignatureConfig)})


@dataclass(frozen=True)
class SignatureConfig:
    """What the clean tasks write per document for dedup, and how the LSH tasks band it: a changed threshold
    re-runs only the verification, not the cleaning."""

    exact: bool
    near: bool
    num_perm: int
    bands: int
    rows: int
    ngram: int
    seed: int

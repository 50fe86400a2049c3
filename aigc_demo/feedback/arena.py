"""Arena votes → a leaderboard and preference data.

A vote compares two anonymous answers to one prompt: ``a``, ``b``, ``tie`` or ``both_bad``.
The leaderboard is Chatbot Arena's: Bradley–Terry strengths fitted by maximum likelihood
(Hunter's MM iterations; a tie or both-bad counts as half a win each way, as LMSYS does),
shown on the Elo scale — 400·log10(strength), centred so the contestants average 1000 —
with 95 % intervals from a bootstrap over votes (resampled with replacement, seeded, so the
same votes always give the same table). Decisive text votes are DPO pairs
(``feedback/training_data.py``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CHOICES = ("a", "b", "tie", "both_bad")
ELO_SCALE = 400.0
ELO_CENTRE = 1000.0


@dataclass
class Standing:
    model: str
    rating: float
    ci_low: float
    ci_high: float
    battles: int
    wins: int
    ties: int

    @property
    def win_rate(self) -> float | None:
        """Wins over battles (a tie is not a win)."""
        return self.wins / self.battles if self.battles else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "win_rate": self.win_rate}


def _outcomes(votes: list[dict[str, Any]]) -> list[tuple[str, str, float]]:
    """(contestant A, contestant B, A's score: 1, 0 or ½) per vote."""
    score = {"a": 1.0, "b": 0.0, "tie": 0.5, "both_bad": 0.5}
    out = []
    for v in votes:
        if v.get("choice") in score and v.get("a", {}).get("contestant") and v.get("b", {}).get("contestant"):
            out.append((v["a"]["contestant"], v["b"]["contestant"], score[v["choice"]]))
    return out


def bradley_terry(
    outcomes: list[tuple[str, str, float]], names: list[str], *, iterations: int = 500, prior: float = 1.0
) -> np.ndarray:
    """Elo-scale ratings for ``names`` by Hunter's MM algorithm for the Bradley–Terry MLE.

    A contestant that never won or never lost has no finite MLE; ``prior`` adds that many
    tied games per contestant, spread over its opponents (the usual fix). It keeps every
    rating finite and moves well-measured ones little; ``prior=0`` gives the plain MLE.
    """
    n = len(names)
    index = {name: i for i, name in enumerate(names)}
    wins = np.zeros((n, n))
    for a, b, s in outcomes:
        i, j = index[a], index[b]
        wins[i, j] += s
        wins[j, i] += 1.0 - s
    wins += (0.5 * prior / max(n - 1, 1)) * (1 - np.eye(n))
    games = wins + wins.T
    strength = np.ones(n)
    total_wins = wins.sum(axis=1)
    for _ in range(iterations):
        denom = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        new = np.where(denom > 0, total_wins / np.where(denom > 0, denom, 1), strength)
        new /= math.exp(np.log(new).mean())  # fix the scale: geometric mean 1
        if np.max(np.abs(new - strength)) < 1e-10:
            strength = new
            break
        strength = new
    return ELO_CENTRE + ELO_SCALE * np.log10(strength)


def leaderboard(votes: list[dict[str, Any]], *, rounds: int = 200, seed: int = 0) -> list[Standing]:
    """Contestants by rating, with bootstrap 95 % intervals, battles, wins and ties."""
    outcomes = _outcomes(votes)
    names = sorted({name for a, b, _ in outcomes for name in (a, b)})
    if not names:
        return []
    ratings = bradley_terry(outcomes, names)
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(names)))
    for r in range(rounds):
        picked = rng.integers(0, len(outcomes), len(outcomes))
        samples[r] = bradley_terry([outcomes[k] for k in picked], names, iterations=150)
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    battles: dict[str, int] = defaultdict(int)
    wins: dict[str, int] = defaultdict(int)
    ties: dict[str, int] = defaultdict(int)
    for a, b, s in outcomes:
        battles[a] += 1
        battles[b] += 1
        if s == 1.0:
            wins[a] += 1
        elif s == 0.0:
            wins[b] += 1
        else:
            ties[a] += 1
            ties[b] += 1
    table = [
        Standing(
            name,
            round(float(ratings[i]), 1),
            round(float(low[i]), 1),
            round(float(high[i]), 1),
            battles[name],
            wins[name],
            ties[name],
        )
        for i, name in enumerate(names)
    ]
    return sorted(table, key=lambda s: -s.rating)


def by_kind(votes: list[dict[str, Any]]) -> dict[str, list[Standing]]:
    """One leaderboard per kind: text contestants never meet image ones, so one fit over both
    would put unrelated ratings side by side on a scale that does not link them."""
    kinds = sorted({str(v.get("kind") or "text") for v in votes})
    return {kind: leaderboard([v for v in votes if str(v.get("kind") or "text") == kind]) for kind in kinds}


def vote_rows(votes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per vote (ties and both-bad included) for CSV / Parquet."""
    rows = []
    for v in votes:
        row = {
            "tab": "arena",
            "id": v.get("id"),
            "ts": v.get("ts"),
            "kind": v.get("kind"),
            "pair_id": v.get("pair_id"),
            "choice": v.get("choice"),
            "prompt": v.get("prompt"),
            "reasons": ",".join(v.get("reasons") or []),
            "comment": v.get("comment", ""),
            "session_id": v.get("session_id", ""),
            "variant": v.get("variant"),
        }
        for side in ("a", "b"):
            s = v.get(side) or {}
            out = s.get("output") or {}
            row[f"{side}_contestant"] = s.get("contestant")
            row[f"{side}_model"] = (s.get("model") or {}).get("id")
            row[f"{side}_output"] = out.get("text") or out.get("path")
        rows.append(row)
    return rows

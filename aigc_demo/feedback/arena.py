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


def _bootstrap(outcomes: list[tuple[str, str, float]], names: list[str], rounds: int, seed: int) -> np.ndarray:
    """``rounds`` × contestants: the ratings refitted on votes resampled with replacement."""
    rng = np.random.default_rng(seed)
    samples = np.empty((rounds, len(names)))
    for r in range(rounds):
        picked = rng.integers(0, len(outcomes), len(outcomes))
        samples[r] = bradley_terry([outcomes[k] for k in picked], names, iterations=150)
    return samples


def _counts(outcomes: list[tuple[str, str, float]]) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
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
    return battles, wins, ties


def leaderboard(votes: list[dict[str, Any]], *, rounds: int = 200, seed: int = 0) -> list[Standing]:
    """Contestants by rating, with bootstrap 95 % intervals, battles, wins and ties."""
    outcomes = _outcomes(votes)
    names = sorted({name for a, b, _ in outcomes for name in (a, b)})
    if not names:
        return []
    ratings = bradley_terry(outcomes, names)
    low, high = np.percentile(_bootstrap(outcomes, names, rounds, seed), [2.5, 97.5], axis=0)
    battles, wins, ties = _counts(outcomes)
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


@dataclass
class Separation:
    """How well the votes tell two contestants apart, and about how many more it would take."""

    a: str
    b: str
    difference: float  # rating of a − rating of b (Elo scale)
    ci_low: float  # bootstrap 95 % interval of the difference
    ci_high: float
    votes: int  # votes between the two so far
    more_votes: int | None  # about how many more to separate them at 95 %; 0: already; None: > MAX_MORE

    @property
    def separated(self) -> bool:
        return self.more_votes == 0


def guidance(separation: Separation, lang: str = "en") -> str:
    """The stopping guidance for one pair, in ``lang``."""
    from aigc_demo.locales import message

    s = separation
    key = "arena_separated" if s.separated else ("arena_dead_heat" if s.more_votes is None else "arena_more_votes")
    return message(key, lang, a=s.a, b=s.b, n=s.votes, more=s.more_votes)


MIN_VOTES = 10  # fewer votes between two contestants never count as telling them apart
MAX_MORE = 2000  # beyond this the two are, for a user-testing session, as good as tied


def separations(votes: list[dict[str, Any]], *, rounds: int = 200, seed: int = 0) -> list[Separation]:
    """Every pair of contestants that has met: the difference, its interval, and the stopping
    guidance "about N more votes to tell A from B at 95 %".

    The interval's half-width shrinks like 1/√n with the n votes between the two, so the n at
    which it would fall below today's difference is n·(half-width / |difference|)²: the
    guidance assumes the difference stays as it is, and says so by being an estimate.
    """
    outcomes = _outcomes(votes)
    names = sorted({name for a, b, _ in outcomes for name in (a, b)})
    if len(names) < 2:
        return []
    ratings = bradley_terry(outcomes, names)
    samples = _bootstrap(outcomes, names, rounds, seed)
    met: dict[tuple[str, str], int] = defaultdict(int)
    for a, b, _ in outcomes:
        met[tuple(sorted((a, b)))] += 1  # type: ignore[index]
    out = []
    for (a, b), n in sorted(met.items()):
        i, j = names.index(a), names.index(b)
        if ratings[j] > ratings[i]:  # the leader first
            a, b, i, j = b, a, j, i
        diff = samples[:, i] - samples[:, j]
        low, high = (float(x) for x in np.percentile(diff, [2.5, 97.5]))
        d = float(ratings[i] - ratings[j])
        half = (high - low) / 2
        if n >= MIN_VOTES and (low > 0 or high < 0):
            more: int | None = 0
        elif abs(d) < 1e-6:
            more = None
        else:
            # Below MIN_VOTES a bootstrap interval says little (one vote resampled is one vote).
            needed = max(n * (half / abs(d)) ** 2, MIN_VOTES)
            more = max(1, math.ceil(needed - n)) if needed - n <= MAX_MORE else None
        out.append(Separation(a, b, round(d, 1), round(low, 1), round(high, 1), n, more))
    return out


def uncertainty(votes: list[dict[str, Any]], pairs: list[tuple[str, str]]) -> list[float]:
    """For each candidate pair, how undecided it is (higher: a vote there tells more).

    A pair never seen is the most undecided; otherwise its separation z = |difference| / sd
    of the bootstrap difference, mapped to 1 / (1 + z), and pairs with few votes weigh more.
    """
    outcomes = _outcomes(votes)
    names = sorted({name for a, b, _ in outcomes for name in (a, b)})
    seen = {tuple(sorted((s.a, s.b))): s for s in separations(votes, rounds=60)} if len(names) >= 2 else {}
    scores = []
    for a, b in pairs:
        s = seen.get(tuple(sorted((a, b))))
        if s is None:
            scores.append(2.0)
            continue
        sd = max((s.ci_high - s.ci_low) / 3.92, 1e-6)
        scores.append(1.0 / (1.0 + abs(s.difference) / sd) + 1.0 / math.sqrt(s.votes + 1))
    return scores


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

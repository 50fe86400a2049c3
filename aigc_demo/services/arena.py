"""Arena: blind side-by-side comparisons whose votes become a leaderboard and preference data.

A *contestant* is a named recipe — a model plus its system prompt, preset and sampling for
text, or steps, guidance and style for images — read from ``AIGC_ARENA`` (JSON list). Each
battle draws two contestants of one kind at random, in random positions, answers the same
prompt with the same seed on both sides (at the same time, so both stream), and keeps the
pair. The voter sees "A" and "B" only; the names come back with the vote. One vote per pair:
a second vote (a double click, a retry) returns the first. Votes go to the ``arena`` stream
with both sides' full recipes and outputs, the session and the variant.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aigc_demo import __version__
from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput, NotFound, SettingsError, StorageError, Term
from aigc_demo.feedback.arena import CHOICES, uncertainty
from aigc_demo.feedback.schema import ArenaPairEvent, ArenaVote, new_id, utc_now
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models import trained
from aigc_demo.services.image import ImageService
from aigc_demo.services.text import TextService
from aigc_demo.services.validation import choice, clean_text, number, resolve_seed
from aigc_demo.variants import assign

log = logging.getLogger(__name__)

Kind = Literal["text", "image"]
TEXT_KEYS = ("model", "system", "preset", "temperature", "top_p", "max_new_tokens")
IMAGE_KEYS = ("steps", "guidance_scale", "style", "negative_prompt")
REASONS = ("accuracy", "style", "length", "safety", "detail")

# Two honest settings of the image pipeline; text contestants come from default_contestants.
IMAGE_CONTESTANTS: list[dict[str, Any]] = [
    {"name": "steps-4-cfg-5", "kind": "image", "steps": 4, "guidance_scale": 5.0},
    {"name": "steps-2-cfg-2", "kind": "image", "steps": 2, "guidance_scale": 2.0},
]


def short_name(model_id: str) -> str:
    """``packaged:qwen2.5-coder-0.5b-instruct`` → ``qwen2.5-coder-0.5b``: a contestant's name."""
    return model_id.rsplit(":", 1)[-1].rsplit("/", 1)[-1].removesuffix("-instruct").removesuffix("-Instruct")


def default_contestants(text_models: list[str]) -> list[dict[str, Any]]:
    """What a fresh machine compares without ``AIGC_ARENA``: the default text model against
    the next one offered (Qwen vs SmolLM2 offline: two different models, a difference a person
    can judge), plus a focused and an adventurous sampling of the default model, so a third
    of the battles ask whether sampling matters. Every recipe names its model."""
    default, others = (text_models[0], text_models[1:]) if text_models else (None, [])
    name, model = (short_name(default), {"model": default}) if default else ("default", {})
    text = [
        {"name": f"{name}-T0.2", "kind": "text", **model, "temperature": 0.2, "top_p": 0.9},
        {"name": f"{name}-T1.0", "kind": "text", **model, "temperature": 1.0, "top_p": 0.98},
    ]
    if others:
        text.append({"name": f"{short_name(others[0])}-T0.7", "kind": "text", "model": others[0], "temperature": 0.7})
    return [*text, *IMAGE_CONTESTANTS]


@dataclass(frozen=True)
class Contestant:
    name: str
    kind: Kind
    recipe: dict[str, Any]  # only the keys this contestant sets

    def describe(self, default_model: str) -> dict[str, Any]:
        return {"contestant": self.name, "model": self.recipe.get("model") or default_model, **self.recipe}


def parse_contestants(raw: str, text_models: list[str] | None = None) -> list[Contestant]:
    """``AIGC_ARENA`` → contestants; empty → the defaults for ``text_models`` (the Text tab's
    choices, default first). A bad value stops the app at start."""
    data: Any = default_contestants(text_models or []) if not raw.strip() else None
    if data is None:
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise SettingsError(f"AIGC_ARENA is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise SettingsError('AIGC_ARENA must be a JSON list of contestants: [{"name": ..., "kind": "text", ...}]')
    out: list[Contestant] = []
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"].strip():
            raise SettingsError(f"AIGC_ARENA: every contestant needs a name, got {str(item)[:80]}")
        kind = item.get("kind", "text")
        if kind not in ("text", "image"):
            raise SettingsError(f"AIGC_ARENA: {item['name']!r} has kind {kind!r}; use text or image")
        keys = TEXT_KEYS if kind == "text" else IMAGE_KEYS
        unknown = set(item) - {"name", "kind", *keys}
        if unknown:
            raise SettingsError(
                f"AIGC_ARENA: {item['name']!r} has unknown keys {sorted(unknown)}; {kind} takes {list(keys)}"
            )
        out.append(Contestant(item["name"].strip(), kind, {k: item[k] for k in keys if k in item}))
    names = [c.name for c in out]
    if len(set(names)) != len(names):
        raise SettingsError("AIGC_ARENA: contestant names must be unique")
    return out


@dataclass
class Side:
    contestant: str
    model: dict[str, Any]
    params: dict[str, Any]
    output_id: str = ""
    output: dict[str, Any] = field(default_factory=dict)


@dataclass
class Pair:
    pair_id: str
    kind: Kind
    prompt: str
    a: Side
    b: Side
    session_id: str = ""
    variant: str | None = None
    ts: str = field(default_factory=utc_now)


@dataclass
class Battle:
    """A battle in progress: what each side has so far; ``pair`` once both are done."""

    a: str = ""
    b: str = ""
    pair: Pair | None = None


class ArenaService:
    def __init__(self, text: TextService, image: ImageService, feedback: FeedbackService, settings: Settings) -> None:
        self.text, self.image, self.feedback, self.settings = text, image, feedback, settings
        self.contestants = parse_contestants(settings.arena, text.registry.text_choices())
        self._pairs: OrderedDict[str, Pair] = OrderedDict()
        self._lock = threading.Lock()
        self._vote_lock = threading.Lock()
        self._rng = random.Random()
        self._weight_cache: dict[str, tuple[Any, list[float]]] = {}

    def kinds(self) -> list[str]:
        return [k for k in ("text", "image") if len(self.pool(k)) >= 2]

    def pool(self, kind: str) -> list[Contestant]:
        """The contestants of ``kind``: the configured ones, and each model trained here with
        its base (``_with_trained``)."""
        return self._with_trained(kind)[0]

    def _with_trained(self, kind: str) -> tuple[list[Contestant], dict[str, str]]:
        """(the pool, each trained contestant's rival). Built afresh on each call and kept
        local, so concurrent battles never see another's half-built table."""
        pool = [c for c in self.contestants if c.kind == kind]
        if kind != "text":
            return pool, {}
        rivals: dict[str, str] = {}
        for c in self._trained_contestants(pool, rivals):
            if c.name not in {p.name for p in pool}:
                pool.append(c)
        return pool, rivals

    def _trained_contestants(self, pool: list[Contestant], rivals: dict[str, str]) -> list[Contestant]:
        """A model trained here meets its base with the same sampling, so the leaderboard says
        whether people prefer it to what it was trained from (found on every battle: a model
        trained a minute ago joins without a restart). One whose base this deployment no
        longer offers stays out: its battles could only fail."""
        out: list[Contestant] = []
        offered = self.text.registry.text_choices()
        for model_id in trained.trained_ids(self.settings.data_dir):
            base = str((trained.card(self.settings.data_dir, model_id) or {}).get("base") or "")
            if base not in offered:
                continue
            rival = next((c for c in pool + out if c.recipe.get("model") == base), None)
            if rival is None:
                rival = Contestant(f"{short_name(base)}-T0.7", "text", {"model": base, "temperature": 0.7})
                out.append(rival)
            mine = Contestant(
                f"{model_id.removeprefix(trained.TRAINED_PREFIX)}-trained", "text", {**rival.recipe, "model": model_id}
            )
            out.append(mine)
            rivals[mine.name] = rival.name
        return out

    def draw(self, kind: str) -> tuple[Contestant, Contestant]:
        """Two different contestants of ``kind``, in random positions.

        Adaptive pairing: every allowed pair may be drawn, with a weight that grows with how
        undecided its comparison is (``feedback.arena.uncertainty``: never met, close ratings,
        few votes), so a session's votes go where they decide something. A trained model
        meets only its base.
        """
        pool, rivals = self._with_trained(kind)
        if len(pool) < 2:
            raise InvalidInput("arena_needs_two", kind=Term(kind), n=len(pool))
        pairs = [
            (a, b)
            for i, a in enumerate(pool)
            for b in pool[i + 1 :]
            if rivals.get(a.name, b.name) == b.name and rivals.get(b.name, a.name) == a.name
        ]
        weights = self._weights(kind, [(a.name, b.name) for a, b in pairs])
        a, b = self._rng.choices(pairs, weights=weights)[0]
        return (a, b) if self._rng.random() < 0.5 else (b, a)

    def trained_rivals(self) -> dict[str, str]:
        """Each trained contestant's rival (its base), as the next battle would pair them."""
        return self._with_trained("text")[1]

    def _weights(self, kind: str, pairs: list[tuple[str, str]]) -> list[float]:
        """The pairs' uncertainty, recomputed only when a vote of ``kind`` was added."""
        votes = [v for v in self.votes() if str(v.get("kind") or "text") == kind]
        key = (kind, len(votes), tuple(pairs))
        cached = self._weight_cache.get(kind)
        if cached is None or cached[0] != key:
            cached = (key, uncertainty(votes, pairs))
            self._weight_cache[kind] = cached
        return cached[1]

    # -- text ------------------------------------------------------------------------------

    def text_battle(
        self,
        prompt: object,
        *,
        max_new_tokens: object = None,
        temperature: object = None,
        seed: object = -1,
        session_id: str = "",
        should_stop: Callable[[], bool] | None = None,
    ) -> Iterator[Battle]:
        """Both answers at once (two threads: engines that batch serve them together); yields
        the texts so far, and finally the stored pair."""
        text = clean_text(prompt, name="prompt", max_chars=self.settings.max_prompt_chars)
        shared_seed = resolve_seed(seed)
        overrides = self._text_overrides(max_new_tokens, temperature)
        a, b = self.draw("text")
        sides = {"a": a, "b": b}
        options = {
            key: {**c.recipe, **{k: v for k, v in overrides.items() if k not in c.recipe or k == "max_new_tokens"}}
            for key, c in sides.items()
        }
        for key in sides:  # validate both recipes before any work
            self.text.build_request(text, **{k: v for k, v in options[key].items() if k != "model"})
        updates: queue.Queue[tuple[str, Any]] = queue.Queue()
        results: dict[str, dict[str, Any]] = {}

        def run(key: str) -> None:
            try:
                for update in self.text.stream(
                    text, session_id=session_id, seed=shared_seed, tab="arena", should_stop=should_stop, **options[key]
                ):
                    updates.put((key, update))
            except Exception as exc:  # noqa: BLE001 - handed to the caller below
                updates.put((key, exc))
            finally:
                updates.put((key, None))

        threads = [threading.Thread(target=run, args=(k,), daemon=True) for k in sides]
        for t in threads:
            t.start()
        battle, finished, error = Battle(), 0, None
        while finished < 2:
            key, item = updates.get()
            if item is None:
                finished += 1
            elif isinstance(item, Exception):
                error = error or item
            else:
                setattr(battle, key, item.text)
                if item.done:
                    results[key] = item.result
                yield battle
        if error is not None:
            raise error
        model = self.settings.model_for("text")
        pair = Pair(
            pair_id=new_id(),
            kind="text",
            prompt=text,
            a=self._side(a, results["a"]["output_id"], model),
            b=self._side(b, results["b"]["output_id"], model),
            session_id=session_id,
            variant=self._variant(session_id),
        )
        battle.pair = self._keep(pair)
        yield battle

    def _text_overrides(self, max_new_tokens: object, temperature: object) -> dict[str, Any]:
        """The battle's own length and temperature, where given (validated)."""
        overrides: dict[str, Any] = {}
        if max_new_tokens not in (None, ""):
            overrides["max_new_tokens"] = int(
                number(max_new_tokens, name="max_new_tokens", lo=1, hi=self.settings.max_new_tokens_cap, integer=True)
            )
        if temperature not in (None, "", -1):
            overrides["temperature"] = float(number(temperature, name="temperature", lo=0.0, hi=2.0))
        return overrides

    # -- images ----------------------------------------------------------------------------

    def image_battle(
        self,
        prompt: object,
        *,
        seed: object = -1,
        width: object = None,
        height: object = None,
        session_id: str = "",
        on_step: Callable[[int, int], bool | None] | None = None,
    ) -> Pair:
        """One image per side, same prompt, seed and size; each side's steps, guidance and style."""
        shared_seed = resolve_seed(seed)
        a, b = self.draw("image")
        outputs = {}
        for key, c in (("a", a), ("b", b)):
            result = self.image.generate(
                prompt,
                seed=shared_seed,
                width=width,
                height=height,
                num_images=1,
                session_id=session_id,
                on_step=on_step,
                tab="arena",
                **c.recipe,
            )
            outputs[key] = result["output_id"]
        model = self.settings.model_for("image")
        pair = Pair(
            pair_id=new_id(),
            kind="image",
            prompt=str(prompt).strip(),
            a=self._side(a, outputs["a"], model),
            b=self._side(b, outputs["b"], model),
            session_id=session_id,
            variant=self._variant(session_id),
        )
        return self._keep(pair)

    # -- votes -----------------------------------------------------------------------------

    def vote(
        self, pair_id: object, vote: object, *, reasons: object = None, comment: object = "", session_id: str = ""
    ) -> tuple[dict[str, Any], bool]:
        """Store the vote on a pair; return (the vote record, whether it was new).

        One vote per pair: voting again returns the first vote and stores nothing.
        """
        pid = choice(pair_id, name="pair_id", default="")
        picked = choice(vote, name="choice", default="").lower()
        if picked not in CHOICES:
            raise InvalidInput("bad_vote", choices=", ".join(CHOICES), got=repr(picked[:20]))
        note = clean_text(comment, name="comment", max_chars=2000, required=False)
        if reasons is not None and not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
            raise InvalidInput("reasons_not_words")
        pair = self.find_pair(pid)
        if pair is None:
            raise NotFound("unknown_pair", pid=repr(pid[:40]))
        with self._vote_lock, self.feedback.keyed_write("arena"):
            earlier = self.feedback.lookup("arena", "pair_id", pid)
            if earlier is not None:
                return earlier, False
            record = ArenaVote(
                app_version=__version__,
                pair_id=pid,
                kind=pair.kind,
                prompt=pair.prompt,
                choice=picked,
                winner={"a": pair.a.contestant, "b": pair.b.contestant}.get(picked),
                reasons=[r for r in (reasons or []) if r in REASONS],
                comment=note,
                a=self._filled(pair.a),
                b=self._filled(pair.b),
                session_id=session_id or pair.session_id,
                variant=pair.variant,
            )
            return self.feedback.append("arena", record.to_dict()), True

    def votes(self) -> list[dict[str, Any]]:
        return [r for r in self.feedback.read("arena").records if r.get("type") == "arena_vote"]

    def find_pair(self, pair_id: str) -> Pair | None:
        with self._lock:
            pair = self._pairs.get(pair_id)
        if pair is not None or not pair_id:
            return pair
        event = self.feedback.lookup("events", "pair_id", pair_id)  # after a restart, or another replica's
        if event is None or event.get("type") != "arena_pair":
            return None
        try:
            data: dict[str, Any] = {
                k: event.get(k) for k in ("pair_id", "kind", "prompt", "session_id", "variant", "ts")
            }
            return Pair(**data, a=Side(**event["a"]), b=Side(**event["b"]))
        except (KeyError, TypeError):  # a record of an unexpected shape cannot be voted on
            log.warning("arena pair %s has an unexpected shape", pair_id[:40])
            return None

    # -- helpers ---------------------------------------------------------------------------

    def _side(self, contestant: Contestant, output_id: str, default_model: str) -> Side:
        recipe = contestant.describe(default_model)
        return Side(contestant=contestant.name, model={"id": recipe.pop("model")}, params=recipe, output_id=output_id)

    def _filled(self, side: Side) -> dict[str, Any]:
        """A side as the vote stores it: recipe, model and the output itself."""
        output = self.feedback.find_output(side.output_id)
        data = asdict(side)
        if output is not None:
            data["model"], data["output"] = output.model, output.output
            data["params"] = {**output.params, "contestant_recipe": side.params}
        return data

    def _keep(self, pair: Pair) -> Pair:
        with self._lock:
            self._pairs[pair.pair_id] = pair
            while len(self._pairs) > 2000:
                self._pairs.popitem(last=False)
        try:  # so a vote after a restart still finds its pair
            self.feedback.append("events", ArenaPairEvent(id=pair.pair_id, **asdict(pair)).to_dict())
        except StorageError as exc:  # the battle is on screen; counted in /healthz; the vote will say if it fails
            log.warning("arena pair %s not logged: %s", pair.pair_id, exc.message)
        return pair

    def _variant(self, session_id: str) -> str | None:
        variant = assign(self.settings.variant_table, "text", session_id)
        return variant.name if variant else None

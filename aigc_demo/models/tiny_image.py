"""Build the offline placeholder text-to-image pipeline.

Why this exists
---------------
AIGC Demo Studio normally loads a real text-to-image checkpoint (for example a
Stable Diffusion model) from the Hugging Face Hub.  When the Hub cannot be
reached there is nothing to fall back on: no package on PyPI ships
text-to-image *weights*, and the app must not download anything at run time.

So this module manufactures a tiny ``StableDiffusionPipeline`` locally, made of
the *real* diffusers / transformers classes (``UNet2DConditionModel``,
``AutoencoderKL``, ``CLIPTextModel``, ``CLIPTokenizer`` and
``EulerDiscreteScheduler``) with small configurations and seeded random
weights, and writes it to disk with ``save_pretrained``.  The app then loads it
with ``diffusers.AutoPipelineForText2Image.from_pretrained(path)`` exactly as it
would load a real model, so the whole code path (tokenisation, text encoding,
classifier-free guidance, scheduler steps, step callbacks, VAE decoding, image
post-processing) is exercised offline.

The model is **untrained**: it produces abstract coloured noise, not a picture
of the prompt.  It is only a stand-in that keeps the app usable and testable
without network access.

Everything is deterministic: the same ``seed`` gives byte-identical weights,
and the tokenizer files (a byte-level BPE vocabulary plus a handful of common
English merges) are generated in code rather than downloaded.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import tempfile
from typing import Any

__all__ = [
    "MARKER_FILENAME",
    "TINY_PIPELINE_VERSION",
    "build_tiny_pipeline",
    "is_complete",
]

#: Bump whenever the builder below changes in a way that changes the saved
#: pipeline; an existing directory whose marker carries another version is
#: rebuilt.
TINY_PIPELINE_VERSION = 1

#: Written last into a finished pipeline directory.
MARKER_FILENAME = ".complete"

#: CLIP's context length.
_MAX_LENGTH = 77

_BOS = "<|startoftext|>"
_EOS = "<|endoftext|>"
_EOW = "</w>"

# Frequent English letter pairs; each gives a word-internal merge ("t h" ->
# "th") and a word-final one ("h e</w>" -> "he</w>").
_BIGRAMS = [
    "th",
    "he",
    "in",
    "er",
    "an",
    "re",
    "on",
    "at",
    "en",
    "nd",
    "ti",
    "es",
    "or",
    "te",
    "of",
    "ed",
    "is",
    "it",
    "al",
    "ar",
    "st",
    "to",
    "nt",
    "ng",
    "se",
    "ha",
    "as",
    "ou",
    "io",
    "le",
    "ve",
    "co",
    "me",
    "de",
    "hi",
    "ri",
    "ro",
    "ic",
    "ne",
    "ea",
    "ra",
    "ce",
    "li",
    "ch",
    "ll",
    "be",
    "ma",
    "si",
    "om",
    "ur",
    "ca",
    "el",
    "ta",
    "la",
    "ns",
    "di",
    "fo",
    "ho",
    "pe",
    "ec",
    "pr",
    "no",
    "ct",
    "us",
    "ac",
    "ot",
    "il",
    "tr",
    "ly",
    "nc",
    "et",
    "ut",
    "ss",
    "so",
    "rs",
    "un",
    "lo",
    "wa",
    "ge",
    "ie",
    "wh",
    "ee",
    "wi",
    "em",
    "ad",
    "ol",
    "rt",
    "po",
    "we",
    "na",
    "ul",
    "ni",
    "ts",
    "mo",
    "ow",
    "pa",
    "im",
    "mi",
    "ai",
    "sh",
    "ir",
    "su",
    "id",
    "os",
    "iv",
    "ia",
    "am",
    "fi",
    "ci",
    "vi",
    "pl",
    "ig",
    "tu",
    "ev",
    "ld",
    "ry",
    "mp",
    "fe",
    "bl",
    "ab",
    "gh",
    "ty",
    "op",
    "wo",
    "sa",
    "ay",
    "ex",
    "ke",
    "fr",
    "oo",
    "av",
    "ag",
    "if",
    "ap",
    "gr",
    "od",
    "bo",
    "sp",
    "rd",
    "do",
    "uc",
    "bu",
    "ei",
    "ov",
    "by",
    "rm",
    "ep",
    "tt",
    "oc",
    "fa",
    "ef",
    "cu",
    "rn",
    "sc",
    "gi",
    "da",
    "yo",
    "cr",
    "cl",
    "du",
    "ga",
    "qu",
    "ue",
    "ff",
    "ba",
    "ey",
    "ls",
    "va",
    "um",
    "pp",
    "ua",
    "up",
    "lu",
    "go",
    "ht",
    "ru",
    "ug",
    "ds",
    "lt",
    "pi",
    "rc",
    "rr",
    "eg",
    "au",
    "ck",
    "ew",
    "mu",
    "br",
    "bi",
    "pt",
    "ak",
    "pu",
    "ui",
    "rg",
    "ib",
    "tl",
    "ny",
    "ki",
    "rk",
    "ys",
    "ob",
    "mm",
    "fu",
    "ph",
    "og",
    "ms",
    "ye",
    "ud",
    "mb",
    "ip",
    "ub",
    "oi",
    "rl",
    "gu",
    "dr",
    "hr",
    "cc",
    "tw",
    "ft",
    "wn",
    "nu",
    "af",
    "hu",
    "nn",
    "eo",
    "vo",
    "rv",
    "nf",
    "xp",
    "gn",
    "sm",
    "fl",
    "iz",
    "ok",
    "nl",
    "my",
    "gl",
    "aw",
    "sy",
    "oa",
]

# A few whole words that are common in image prompts, merged on top of the
# bigrams above (left to right).
_WORDS = [
    "the",
    "and",
    "of",
    "with",
    "in",
    "on",
    "a",
    "an",
    "photo",
    "painting",
    "portrait",
    "of",
    "style",
    "art",
    "light",
    "red",
    "green",
    "blue",
    "black",
    "white",
    "color",
    "colour",
    "cat",
    "dog",
    "fox",
    "tree",
    "sky",
    "sun",
    "city",
    "night",
    "day",
    "water",
    "mountain",
    "forest",
    "flower",
    "girl",
    "boy",
    "man",
    "woman",
    "house",
    "landscape",
    "detailed",
    "realistic",
    "cinematic",
    "high",
    "quality",
    "lighting",
]


# --------------------------------------------------------------------------
# Tokenizer files
# --------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte -> printable unicode character table."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("\xa1"), ord("\xac") + 1))
        + list(range(ord("\xae"), ord("\xff") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _make_vocab_and_merges() -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A deterministic CLIP-style byte-level BPE vocabulary.

    Layout mirrors OpenAI CLIP: the 256 byte characters, the same with the
    ``</w>`` end-of-word suffix, the merge results, then the two special
    tokens.  Every byte is representable, so any text (including Chinese,
    which falls back to byte tokens) tokenises without unknown tokens.
    """
    byte_chars = list(_bytes_to_unicode().values())
    tokens: list[str] = byte_chars + [c + _EOW for c in byte_chars]
    seen = set(tokens)
    merges: list[tuple[str, str]] = []

    def add_merge(a: str, b: str) -> None:
        if a not in seen or b not in seen:
            raise AssertionError(f"merge parts missing from vocab: {a!r} {b!r}")
        new = a + b
        if new in seen:
            return
        merges.append((a, b))
        tokens.append(new)
        seen.add(new)

    for bg in _BIGRAMS:
        add_merge(bg[0], bg[1])
    for bg in _BIGRAMS:
        add_merge(bg[0], bg[1] + _EOW)
    for word in _WORDS:
        # Greedy left-to-right merges: "fox" -> "f o" then "fo x</w>".
        pieces = [*word[:-1], word[-1] + _EOW]
        acc = pieces[0]
        for nxt in pieces[1:]:
            add_merge(acc, nxt)
            acc = acc + nxt

    tokens += [_BOS, _EOS]
    return {tok: i for i, tok in enumerate(tokens)}, merges


def _write_tokenizer_files(directory: pathlib.Path) -> None:
    vocab, merges = _make_vocab_and_merges()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (directory / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges),
        encoding="utf-8",
    )
    (directory / "tokenizer_config.json").write_text(
        json.dumps(
            {
                "tokenizer_class": "CLIPTokenizer",
                "model_max_length": _MAX_LENGTH,
                "bos_token": _BOS,
                "eos_token": _EOS,
                "unk_token": _EOS,
                "pad_token": _EOS,
                "do_lower_case": True,
                "clean_up_tokenization_spaces": False,
            },
            indent=2,
        ),
        encoding="utf-8",
    )


# --------------------------------------------------------------------------
# Pipeline
# --------------------------------------------------------------------------


def _make_pipeline(seed: int, work_dir: pathlib.Path) -> Any:
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline

    # From diffusers.models: type checkers resolve the top-level names to diffusers' no-torch dummies.
    from diffusers.models import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tok_dir = work_dir / "_tokenizer_src"
    _write_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))
    tokenizer.model_max_length = _MAX_LENGTH

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=37,
            projection_dim=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=_MAX_LENGTH,
            layer_norm_eps=1e-5,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    ).eval()

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=32,  # default 256x256 with the VAE's factor of 8
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        norm_num_groups=32,
        cross_attention_dim=32,
        attention_head_dim=8,
    ).eval()

    torch.manual_seed(seed)
    # Four blocks => vae_scale_factor = 2 ** 3 = 8, like real Stable Diffusion,
    # so any width/height that is a multiple of 8 works.
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(8, 16, 16, 32),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=8,
        sample_size=256,
    ).eval()

    # "trailing" spacing starts at the last training timestep, which behaves
    # much better than SD's original "leading" spacing at 1-4 steps.
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        prediction_type="epsilon",
        timestep_spacing="trailing",
        steps_offset=1,
    )

    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _marker_payload(seed: int) -> dict[str, Any]:
    return {"version": TINY_PIPELINE_VERSION, "seed": int(seed)}


def is_complete(path: str | os.PathLike, *, seed: int = 0) -> bool:
    """True if *path* holds a finished pipeline from this builder and *seed*."""
    p = pathlib.Path(path)
    marker = p / MARKER_FILENAME
    if not (p / "model_index.json").is_file() or not marker.is_file():
        return False
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data == _marker_payload(seed)


def build_tiny_pipeline(out_dir: str | os.PathLike, *, seed: int = 0) -> pathlib.Path:
    """Build the placeholder pipeline into *out_dir* and return its path.

    If *out_dir* already holds a complete pipeline written by this builder
    version with the same *seed* (``model_index.json`` plus a matching
    ``.complete`` marker) it is returned untouched.  Otherwise the pipeline is
    built in a temporary sibling directory and moved into place with a rename,
    so readers never observe a half-written directory.  An incomplete or stale
    *out_dir* is replaced.

    The result loads with
    ``diffusers.AutoPipelineForText2Image.from_pretrained(out_dir)``.
    """
    out = pathlib.Path(out_dir).expanduser().absolute()
    if is_complete(out, seed=seed):
        return out

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        scratch = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.src-", dir=out.parent))
        try:
            pipe = _make_pipeline(seed, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        pipe.save_pretrained(str(tmp), safe_serialization=True)
        del pipe
        (tmp / MARKER_FILENAME).write_text(json.dumps(_marker_payload(seed)), encoding="utf-8")
        _move_into_place(tmp, out, seed=seed)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _move_into_place(tmp: pathlib.Path, out: pathlib.Path, *, seed: int) -> None:
    """Rename *tmp* to *out*, replacing a stale *out* if there is one."""
    try:
        os.replace(tmp, out)  # works when *out* is absent or an empty dir
        return
    except OSError:
        if not out.exists() and not out.is_symlink():
            raise
    # *out* exists and is not empty.  Another process may just have finished
    # the same build: keep theirs.
    if is_complete(out, seed=seed):
        return
    stale = pathlib.Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    try:
        os.replace(out, stale / "old")  # file, symlink or directory
        try:
            os.replace(tmp, out)
        except OSError:
            if not is_complete(out, seed=seed):
                raise
    finally:
        shutil.rmtree(stale, ignore_errors=True)

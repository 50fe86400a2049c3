"""Offline text models side by side: SmolLM2-135M-Instruct vs Gemma-3-270M (base).

    python bench/text_models.py [--tokens 128]

Speed: load time (cache warm), time to first token and greedy decode tokens/s for
``--tokens`` new tokens. Quality: 12 short factual completions in English and Chinese
(continuation mode, fair to a base model), scored by whether the expected word appears
in the first 12 generated tokens; plus instruction following (chat mode) where the model
has a chat template.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.common import record

FACTS = [
    ("The capital of France is", "Paris"),
    ("The capital of Japan is", "Tokyo"),
    ("Water is made of hydrogen and", "oxygen"),
    ("The largest planet in our solar system is", "Jupiter"),
    ("The opposite of hot is", "cold"),
    ("Monday, Tuesday, Wednesday,", "Thursday"),
    ("One, two, three, four,", "five"),
    ("The color of the sky on a clear day is", "blue"),
    ("中国的首都是", "北京"),
    ("一年有十二个", "月"),
    ("太阳从东方", "升"),
    ("星期一、星期二、星期三、", "星期四"),
]
INSTRUCTIONS = [
    ("Reply with only the word YES.", "yes"),
    ("What is 2 + 3? Answer with a number.", "5"),
    ("Translate to French: thank you", "merci"),
    ("Name a fruit that is yellow.", "banana"),
]


def main() -> None:
    import torch

    from aigc_demo.config import Settings
    from aigc_demo.models import packaged
    from aigc_demo.models.base import GenerationStats, TextRequest
    from aigc_demo.models.text_transformers import TransformersTextBackend

    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    args = parser.parse_args()
    settings = Settings(cache_dir=args.cache_dir, profile="offline")
    rows = [
        (
            "| model | params | convert (first use) s | load s | TTFT ms | decode tok/s | facts en | facts zh | "
            "instructions |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for model_id in ("packaged:smollm2-135m-instruct", "packaged:gemma3-270m"):
        if not packaged.available(model_id):
            rows.append(f"| {model_id} | package not installed | | | | | | | |")
            continue
        t0 = time.perf_counter()
        source = packaged.resolve(model_id, settings.cache_dir)
        convert_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        backend = TransformersTextBackend(model_id, source=source, device="cpu", dtype=torch.float32)
        backend.load()
        load_s = time.perf_counter() - t0
        params = sum(p.numel() for p in backend.model.parameters()) / 1e6
        # Speed: greedy, a fixed prompt, median of 3 runs.
        speeds, ttfts = [], []
        for _ in range(3):
            stats = GenerationStats()
            request = TextRequest(
                prompt="Once upon a time, a lighthouse keeper",
                max_new_tokens=args.tokens,
                min_new_tokens=args.tokens,
                temperature=0,
            )
            for _chunk in backend.stream(request, stats):
                pass
            speeds.append(stats.tokens_per_s)
            ttfts.append(stats.ttft_ms or 0)
        speeds.sort()
        ttfts.sort()
        scores = {"en": 0, "zh": 0}
        for prompt, expected in FACTS:
            text = "".join(backend.stream(TextRequest(prompt=prompt, max_new_tokens=12, temperature=0)))
            scores["zh" if any("\u4e00" <= c <= "\u9fff" for c in prompt) else "en"] += expected.lower() in text.lower()
        if backend.has_chat_template:
            ok = 0
            for prompt, expected in INSTRUCTIONS:
                request = TextRequest(messages=[{"role": "user", "content": prompt}], max_new_tokens=16, temperature=0)
                ok += expected in "".join(backend.stream(request)).lower()
            instructions = f"{ok}/{len(INSTRUCTIONS)}"
        else:
            instructions = "no chat template (base model)"
        rows.append(
            f"| `{model_id}` | {params:.0f}M | {convert_s:.1f} | {load_s:.1f} | {ttfts[1]:.0f} | {speeds[1]:.1f} | "
            f"{scores['en']}/8 | {scores['zh']}/4 | {instructions} |"
        )
        print(rows[-1], flush=True)
        del backend
    record(
        "Offline text models: SmolLM2-135M-Instruct vs Gemma-3-270M",
        f"python bench/text_models.py --tokens {args.tokens}",
        "\n".join(rows),
        notes="fp32 on CPU, greedy; decode tok/s and TTFT are medians of 3 runs of the streaming path. "
        "'convert' is the one-time GGUF → safetensors conversion (0 when cached). "
        "Facts: continuation mode, expected word within 12 tokens.",
    )


if __name__ == "__main__":
    main()

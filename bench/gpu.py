"""GPU speed at full model size, without the Hub: random weights in the real architectures.

    python bench/gpu.py [--runs 10] [--skip-image] [--skip-llm] [--peak-gbs 3350]
    python bench/gpu.py --tiny --device cpu --no-compile --runs 1     # smoke test (tests/bench/test_bench_gpu.py)

Speed does not depend on weight values, so the models are built from their configs:
- image: an SD-Turbo-size pipeline (SD 2.1 UNet 865M, SD VAE, OpenCLIP-H text encoder) at
  512x512, 1 step, guidance 0, end to end (text encoding → UNet → VAE decode → PIL);
  the plain diffusers fp16 pipeline, then cumulative optimisations: channels_last, fused
  QKV projections, ``torch.compile`` of UNet and VAE decoder, a tiny VAE (TAESD-size
  ``AutoencoderTiny``). Then 8 prompts as one batch against 8 calls one by one.
- text: a Qwen2-1.5B-size model (bf16), greedy decode of 256 tokens at batch size 1: the
  dynamic-cache baseline, then a static cache with ``torch.compile(mode="reduce-overhead")``,
  and each one's share of the memory-bandwidth bound (weight bytes × tokens/s ÷ peak GB/s).

Goals (issue 7, H100): image ≤ 40 ms and ≥ 1.5x the plain pipeline; batch of 8 ≥ 3x the
throughput of one by one; decode ≥ 150 tokens/s. Results are appended to bench/RESULTS.md
(not for ``--tiny``). Nothing here has a GPU on this project's own machines: run it where
the device tool lends one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import record

# Nominal peak memory bandwidth (GB/s) by device name, for the bandwidth-bound ratio.
PEAK_GBS = {"H200": 4800, "H100 SXM": 3350, "H100 80GB HBM3": 3350, "H100 PCIe": 2000, "H100": 3350, "A100": 2039}


def sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], Any], device: str, runs: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        fn()
    sync(device)
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - t0)
    return out


# -- image ----------------------------------------------------------------------------


def build_sd_turbo_size(device: str, dtype: Any, tiny: bool) -> Any:
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from aigc_demo.models.tiny_image import _write_tokenizer_files

    tok_dir = Path(tempfile.mkdtemp(prefix="gpu-bench-tok-"))
    _write_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tok_dir))
    tokenizer.model_max_length = 77
    torch.manual_seed(0)
    if tiny:
        unet_kw = {
            "block_out_channels": (32, 64, 64, 64),
            "attention_head_dim": (2, 4, 4, 4),
            "cross_attention_dim": 32,
        }
        vae_kw = {"block_out_channels": (8, 16, 16, 16), "norm_num_groups": 8}
        text_kw = {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "projection_dim": 32,
        }
    else:  # stabilityai/sd-turbo = SD 2.1 architecture
        unet_kw = {
            "block_out_channels": (320, 640, 1280, 1280),
            "attention_head_dim": (5, 10, 20, 20),
            "cross_attention_dim": 1024,
        }
        vae_kw = {"block_out_channels": (128, 256, 512, 512), "norm_num_groups": 32}
        text_kw = {
            "hidden_size": 1024,
            "intermediate_size": 4096,
            "num_hidden_layers": 23,
            "num_attention_heads": 16,
            "projection_dim": 1024,
        }
    unet = UNet2DConditionModel(
        sample_size=64,
        in_channels=4,
        out_channels=4,
        layers_per_block=2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        use_linear_projection=True,
        norm_num_groups=32,
        **unet_kw,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        layers_per_block=2,
        sample_size=512,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        **vae_kw,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            max_position_embeddings=77,
            hidden_act="gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **text_kw,
        )
    )
    scheduler = EulerDiscreteScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        timestep_spacing="trailing",
        steps_offset=1,
    )
    pipe = StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device, dtype)


def tiny_vae(device: str, dtype: Any, tiny: bool) -> Any:
    from diffusers import AutoencoderTiny

    kw = {"encoder_block_out_channels": (8, 8, 8, 8), "decoder_block_out_channels": (8, 8, 8, 8)} if tiny else {}
    return AutoencoderTiny(**kw).to(device, dtype)  # TAESD's architecture by default


def bench_image(args: argparse.Namespace) -> tuple[list[str], dict[str, float]]:
    import torch

    device, dtype, side = args.device, (torch.float16 if args.device == "cuda" else torch.float32), args.side
    pipe = build_sd_turbo_size(device, dtype, args.tiny)
    params = sum(p.numel() for p in pipe.unet.parameters())

    def call(n: int = 1) -> Callable[[], Any]:
        def run() -> Any:
            with torch.inference_mode():
                return pipe(
                    ["a lighthouse at dusk"] * n,
                    num_inference_steps=1,
                    guidance_scale=0.0,
                    height=side,
                    width=side,
                    output_type="pil",
                ).images

        return run

    steps: list[tuple[str, Callable[[], None]]] = [("plain diffusers pipeline", lambda: None)]
    steps.append(
        (
            "+ channels_last (UNet, VAE)",
            lambda: (pipe.unet.to(memory_format=torch.channels_last), pipe.vae.to(memory_format=torch.channels_last)),
        )
    )
    steps.append(("+ fused QKV projections", pipe.fuse_qkv_projections))
    if args.compile:

        def compile_models() -> None:
            pipe.unet = torch.compile(pipe.unet, mode="max-autotune", fullgraph=True)
            pipe.vae.decode = torch.compile(pipe.vae.decode, mode="max-autotune", fullgraph=True)

        steps.append(("+ torch.compile (UNet, VAE decode)", compile_models))

    def swap_vae() -> None:
        pipe.vae = tiny_vae(device, dtype, args.tiny)
        if args.compile:
            pipe.vae.decode = torch.compile(pipe.vae.decode, mode="max-autotune", fullgraph=True)

    steps.append(("+ tiny VAE (TAESD-size, lower quality)", swap_vae))
    rows = [f"| image {side}x{side}, 1 step, end to end | median ms | min–max | × plain |", "|---|---|---|---|"]
    results: dict[str, float] = {}
    base = None
    for name, apply in steps:
        apply()
        times = timed(call(), device, args.runs, warmup=3 if args.compile else 1)
        med = statistics.median(times) * 1000
        base = base or med
        results[name] = med
        rows.append(f"| {name} | {med:.1f} | {min(times) * 1000:.1f}–{max(times) * 1000:.1f} | {base / med:.2f} |")
        print(rows[-1], flush=True)
    # Batching: 8 prompts in one call vs 8 calls, on the optimised pipeline.
    one_by_one = timed(lambda: [call()() for _ in range(8)], device, max(1, args.runs // 3))
    batched = timed(call(8), device, max(1, args.runs // 3), warmup=2 if args.compile else 1)
    ratio = statistics.median(one_by_one) / statistics.median(batched)
    rows.append(
        f"| 8 requests: one batch vs one by one | {statistics.median(batched) * 1000:.1f} vs "
        f"{statistics.median(one_by_one) * 1000:.1f} | — | {ratio:.2f}× throughput |"
    )
    print(rows[-1], flush=True)
    results["batch8_speedup"] = ratio
    rows.insert(0, f"UNet parameters: {params / 1e6:.0f}M; dtype {str(dtype).removeprefix('torch.')}\n")
    return rows, results


# -- text -----------------------------------------------------------------------------


def bench_llm(args: argparse.Namespace) -> tuple[list[str], dict[str, float]]:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    device = args.device
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if args.tiny:
        config = Qwen2Config(
            vocab_size=1000,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=1024,
        )
    else:  # Qwen/Qwen2.5-1.5B-Instruct
        config = Qwen2Config(
            vocab_size=151936,
            hidden_size=1536,
            intermediate_size=8960,
            num_hidden_layers=28,
            num_attention_heads=12,
            num_key_value_heads=2,
            max_position_embeddings=32768,
            rope_theta=1_000_000.0,
            tie_word_embeddings=True,
        )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(device, dtype).eval()
    n = args.tokens
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    ids = torch.randint(0, config.vocab_size, (1, 32), device=device)
    greedy = {
        "do_sample": False,
        "max_new_tokens": n,
        "min_new_tokens": n,
        "pad_token_id": 0,
        "temperature": None,
        "top_p": None,
        "top_k": None,
    }

    def decode(**kw: Any) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                model.generate(ids, attention_mask=torch.ones_like(ids), **greedy, **kw)

        return run

    peak = args.peak_gbs or next((v for k, v in PEAK_GBS.items() if k in args.device_name), None)
    rows = [f"| decode bs1, {n} tokens | tokens/s median | min–max | share of bandwidth bound |", "|---|---|---|---|"]
    results: dict[str, float] = {}
    variants = [("dynamic cache (baseline)", {})]
    if args.compile:
        variants.append(("static cache + torch.compile", {"cache_implementation": "static"}))
    for name, kw in variants:
        if kw:
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
        times = timed(decode(**kw), device, max(1, args.runs // 2), warmup=2 if kw else 1)
        speeds = [n / t for t in times]
        med = statistics.median(speeds)
        share = f"{med * weight_bytes / (peak * 1e9):.0%} of {peak} GB/s" if peak else "—"
        results[name] = med
        rows.append(f"| {name} | {med:.1f} | {min(speeds):.1f}–{max(speeds):.1f} | {share} |")
        print(rows[-1], flush=True)
    rows.insert(0, f"{weight_bytes / 1e9:.2f} GB of weights ({str(dtype).removeprefix('torch.')})\n")
    return rows, results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--side", type=int, default=512)
    parser.add_argument("--tiny", action="store_true", help="tiny configs: a smoke test of this script")
    parser.add_argument("--no-compile", dest="compile", action="store_false")
    parser.add_argument("--skip-image", action="store_true")
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--peak-gbs", type=float, help="peak memory bandwidth, GB/s (default: by device name)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this where the device tool lends a GPU (or use --device cpu --tiny)")
    args.device_name = torch.cuda.get_device_name() if args.device == "cuda" else "cpu"
    out: dict[str, Any] = {}
    sections = []
    if not args.skip_image:
        rows, out["image"] = bench_image(args)
        sections.append("\n".join(rows))
    if not args.skip_llm:
        rows, out["llm"] = bench_llm(args)
        sections.append("\n".join(rows))
    if not args.tiny:
        record(
            f"GPU: SD-Turbo-size image and Qwen2-1.5B-size decode ({args.device_name})",
            "python bench/gpu.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "\n\n".join(sections),
            notes="Random weights in the real architectures (the Hub is unreachable); speed does not depend on them.",
        )
    return out


if __name__ == "__main__":
    main()

"""The image service with fake backends: PNGs with their recipe, A1111 parameters, progress, full disks."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from aigc_demo.errors import AigcError, InvalidInput
from aigc_demo.services.image import a1111_parameters, read_recipe


def test_generate_image_saves_png_with_reproducible_recipe(services):
    result = services.image.generate("a red fox", negative_prompt="blurry", seed=42, num_images=2, width=64, height=72)
    assert result["seed"] == 42 and len(result["images"]) == 2 and result["placeholder"]
    img = Image.open(result["images"][1])
    assert img.size == (64, 72)
    params = img.text["parameters"]
    assert params.startswith("a red fox\nNegative prompt: blurry\nSteps: 4, CFG scale: 5, Seed: 43, Size: 64x72")
    recipe = json.loads(img.text["aigc"])
    assert recipe["seed"] == 43 and recipe["model"] == "packaged:tiny-sd"
    output = services.feedback.outputs.get(result["output_id"]).output
    assert output["path"] == result["image"] and len(output["sha256"]) == 64


def test_an_image_reads_back_its_own_settings(services):
    style = next(n for n in services.image.styles if n != "None")
    result = services.image.generate(
        "雨后的江南小镇", negative_prompt="模糊", seed=7, num_images=2, width=64, height=72, steps=3, style=style
    )
    recipe = read_recipe(result["images"][1], max_side=512, max_steps=50)
    # What the user typed and chose, not the styled prompt: applying it reproduces image 2.
    assert recipe == {
        "prompt": "雨后的江南小镇",
        "negative_prompt": "模糊",
        "style": style,
        "steps": 3,
        "guidance_scale": 5.0,
        "width": 64,
        "height": 72,
        "seed": 8,
        "model": "packaged:tiny-sd",
        "source": "aigc_demo",
        "adjusted": [],
    }


def _png_with(tmp_path, **chunks) -> str:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_itxt(key, value)
    path = tmp_path / "dropped.png"
    Image.new("RGB", (8, 8)).save(path, pnginfo=info)
    return str(path)


def test_an_automatic1111_png_reads_back_and_is_kept_inside_our_limits(tmp_path):
    parameters = (
        "masterpiece, 1girl, (cherry blossoms:1.2), 樱花\nsecond line of prompt\n"
        "Negative prompt: lowres, bad hands\n"
        "Steps: 80, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 3407, Size: 1024x1023, Model hash: 6ce0161689, "
        'Model: v1-5-pruned-emaonly, Lora hashes: "a: 1, b: 2", Version: v1.7.0'
    )
    recipe = read_recipe(_png_with(tmp_path, parameters=parameters), max_side=512, max_steps=50)
    assert recipe == {
        "prompt": "masterpiece, 1girl, (cherry blossoms:1.2), 樱花\nsecond line of prompt",
        "negative_prompt": "lowres, bad hands",
        "steps": 50,
        "guidance_scale": 7.5,
        "seed": 3407,
        "width": 512,
        "height": 512,
        "model": "v1-5-pruned-emaonly",
        "source": "a1111",
        "adjusted": ["width", "height", "steps"],
    }
    only_prompt = read_recipe(_png_with(tmp_path, parameters="a cat"), max_side=512, max_steps=50)
    assert only_prompt == {"prompt": "a cat", "negative_prompt": "", "source": "a1111", "adjusted": []}


@pytest.mark.parametrize("content", ["no-chunks", "not-an-image", "empty-parameters"])
def test_a_file_without_settings_gets_a_clear_message(tmp_path, content):
    if content == "not-an-image":
        path = tmp_path / "notes.png"
        path.write_text("hello", encoding="utf-8")
        needle = "not an image"
    else:
        path = _png_with(tmp_path, **({"parameters": "  "} if content == "empty-parameters" else {}))
        needle = "carries no generation settings"
    with pytest.raises(InvalidInput, match=needle):
        read_recipe(path, max_side=512, max_steps=50)


def test_image_progress_is_reported_per_step(services):
    steps = []
    services.image.generate("x", steps=3, width=64, height=64, on_step=lambda s, t: steps.append((s, t)))
    assert steps == [(1, 3), (2, 3), (3, 3)]


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"width": 100}, "width must be a multiple of 8, got 100"),
        ({"height": 2048}, "height must be between 64 and 1024, got 2048"),
        ({"steps": 0}, "steps must be between 1 and 50, got 0"),
        ({"steps": 51}, "steps must be between 1 and 50, got 51"),
        ({"guidance_scale": float("inf")}, "guidance scale must be a finite number"),
        ({"num_images": 5}, "number of images must be between 1 and 4, got 5"),
    ],
)
def test_bad_image_input(services, kwargs, needle):
    with pytest.raises(InvalidInput) as info:
        services.image.generate("ok", **kwargs)
    assert needle in info.value.message


def test_a1111_parameters_without_negative():
    text = a1111_parameters(
        {
            "prompt": "p",
            "negative_prompt": "",
            "steps": 2,
            "guidance_scale": 0.0,
            "seed": 1,
            "width": 512,
            "height": 512,
            "model": "m",
        }
    )
    assert text == "p\nSteps: 2, CFG scale: 0, Seed: 1, Size: 512x512, Model: m"


def test_an_image_job_on_a_full_disk_says_so_and_leaves_no_file(services, monkeypatch):
    import errno

    from PIL import Image as PILImage

    saved = {"n": 0}
    real_save = PILImage.Image.save

    def second_fails(self, fp, *args, **kwargs):
        saved["n"] += 1
        if saved["n"] == 2:
            fp.write(b"\x89PNG partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(PILImage.Image, "save", second_fails)
    registered = []
    monkeypatch.setattr(services.feedback, "register", registered.append)
    with pytest.raises(AigcError) as info:
        services.image.generate("一只狐狸", seed=3, num_images=2, width=64, height=64)
    assert "disk is full" in info.value.message and "磁盘已满" in info.value.localized("zh")
    assert not [p for p in services.image.out_dir.rglob("*") if p.is_file()]  # no 0-byte or half-written PNG
    assert registered == []  # nothing registered that could be rated


def test_an_image_folder_that_cannot_be_written_gets_the_same_clear_message(services):
    # The replay made the day's folder a file: cleaning up the partial PNG raised too, and the
    # user read the generic "something went wrong" instead of what to do.
    from datetime import UTC, datetime

    services.image.out_dir.mkdir(parents=True, exist_ok=True)
    (services.image.out_dir / datetime.now(UTC).strftime("%Y-%m-%d")).write_bytes(b"not a folder")
    day = services.image.out_dir / datetime.now(UTC).strftime("%Y-%m-%d")
    with pytest.raises(AigcError) as info:
        services.image.generate("一只狐狸", seed=3, width=64, height=64)
    assert "磁盘已满或不可写" in info.value.localized("zh")
    assert services.feedback.failures["images"]["failing"]  # /healthz says degraded
    day.unlink()  # the host frees the folder: the next image is saved and the flag clears
    services.image.generate("一只狐狸", seed=3, width=64, height=64)
    assert not services.feedback.failures["images"]["failing"]


def test_style_is_applied_and_recorded(services):
    result = services.image.generate(
        "a lamp", style="Product shot", negative_prompt="dust", width=64, height=64, seed=1
    )
    img = Image.open(result["image"])
    recipe = json.loads(img.text["aigc"])
    assert recipe["prompt"].startswith("studio product photo of a lamp")
    assert recipe["negative_prompt"].startswith("dust, clutter") and recipe["style"] == "Product shot"
    output = services.feedback.outputs.get(result["output_id"])
    assert output.prompt == "a lamp" and output.params["style"] == "Product shot"
    with pytest.raises(InvalidInput, match="Unknown style 'Nope'"):
        services.image.generate("x", style="Nope")

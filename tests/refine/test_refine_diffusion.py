"""DiffusionRefiner on a tiny randomly initialised sd-turbo-layout pipeline built here (no download).

`make_tiny_pipeline(folder)` is a plain function so other test modules can import it.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from splatfilm.errors import SplatfilmError  # noqa: E402
from splatfilm.refine.diffusion import DiffusionRefiner  # noqa: E402
from splatfilm.refine.loader import load_refiner  # noqa: E402
from splatfilm.refine.refiner import Refiner  # noqa: E402

BETA_START, BETA_END, NUM_TRAIN_TIMESTEPS = 0.00085, 0.012, 1000
WEIGHTS = "diffusion_pytorch_model.safetensors"
MAX_TOKENS = 8


def _write_tokenizer_files(folder: Path) -> None:
    """A byte-level BPE vocabulary of single letters plus a few merges, in CLIP's file format."""
    vocab: dict[str, int] = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in "abcdefghijklmnopqrstuvwxyz!.,":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = [("r", "e"), ("re", "m"), ("o", "v"), ("v", "e</w>")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges))


def make_tiny_pipeline(folder: str | Path, prediction_type: str = "epsilon", shift_factor: float | None = None,
                       seed: int = 0, variant: str | None = None, **unet_config) -> Path:
    """Save a randomly initialised StableDiffusionImg2ImgPipeline (a few thousand weights; VAE
    downsampling factor 2, 4 latent channels, cross-attention width 16) to `folder`, in the
    layout of a downloaded sd-turbo folder. Deterministic for a given seed. variant: the weight
    files' variant ("fp16": NAME.fp16.safetensors only); unet_config: UNet settings to change
    (in_channels=9 for an inpainting one). Returns the folder."""
    from diffusers import AutoencoderKL, DDPMScheduler, StableDiffusionImg2ImgPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    # sd-turbo ships its tokenizer as vocab.json + merges.txt; write those and load through them.
    _write_tokenizer_files(folder / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True,
                                              model_max_length=MAX_TOKENS)

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(**{
        **dict(sample_size=8, in_channels=4, out_channels=4, block_out_channels=(8, 16), layers_per_block=1,
               down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
               up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16, attention_head_dim=2,
               norm_num_groups=4),
        **unet_config})
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
        latent_channels=4, norm_num_groups=4, sample_size=16, shift_factor=shift_factor)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
        max_position_embeddings=MAX_TOKENS, bos_token_id=0, eos_token_id=1, pad_token_id=1))
    scheduler = DDPMScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_schedule="scaled_linear",
                              beta_start=BETA_START, beta_end=BETA_END, prediction_type=prediction_type,
                              clip_sample=False, steps_offset=1)
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                          scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                          requires_safety_checker=False)
    pipe.save_pretrained(folder, variant=variant)
    return folder


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # The models are tiny: OpenMP threads only add overhead, and on a busy 2-core machine their
    # spin-waiting makes each tiny conv ~100x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pipeline_folder(tmp_path_factory) -> Path:
    return make_tiny_pipeline(tmp_path_factory.mktemp("refine_diffusion") / "tiny-sd-turbo")


@pytest.fixture(scope="module")
def refiner(pipeline_folder) -> DiffusionRefiner:
    return load_refiner(pipeline_folder)


def _images(b: int, h: int, w: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, h, w, 3, generator=g)


def _alpha_bar(t: int) -> float:
    """alphas_cumprod[t] of the scaled-linear schedule, by hand in float64."""
    betas = torch.linspace(BETA_START**0.5, BETA_END**0.5, NUM_TRAIN_TIMESTEPS, dtype=torch.float64) ** 2
    return float(torch.cumprod(1 - betas, 0)[t])


def test_load_refiner_gives_diffusion_refiner_with_saved_weights(pipeline_folder, refiner):
    from safetensors.torch import load_file
    from transformers import CLIPTextModel, CLIPTokenizer

    assert isinstance(refiner, DiffusionRefiner)
    assert isinstance(refiner, Refiner)
    assert refiner.name == "diffusion"
    assert refiner.timestep == 199 and refiner.prediction_type == "epsilon" and refiner.downsample_factor == 2
    for sub, module in (("unet", refiner.unet), ("vae", refiner.vae)):
        saved = load_file(pipeline_folder / sub / "diffusion_pytorch_model.safetensors")
        state = module.state_dict()
        assert set(saved) == set(state), sub
        for key, value in saved.items():
            assert torch.equal(state[key], value), f"{sub}.{key}"
    tokenizer = CLIPTokenizer.from_pretrained(pipeline_folder / "tokenizer", local_files_only=True)
    text_encoder = CLIPTextModel.from_pretrained(pipeline_folder / "text_encoder", local_files_only=True)
    ids = tokenizer("", padding="max_length", max_length=MAX_TOKENS, return_tensors="pt").input_ids
    with torch.no_grad():
        expected = text_encoder(ids).last_hidden_state
    assert refiner.prompt_embeds.shape == (1, MAX_TOKENS, 16)
    assert torch.equal(refiner.prompt_embeds, expected)
    assert refiner.alphas_cumprod[199].item() == pytest.approx(_alpha_bar(199), rel=1e-5)


def test_round_trip_shape_and_range_for_sizes_off_the_latent_grid(refiner):
    images = _images(2, 18, 26)
    out = refiner.refine(images)
    assert out.shape == images.shape and out.dtype == torch.float32 and out.device == images.device
    assert torch.isfinite(out).all()
    assert out.min() >= 0 and out.max() <= 1
    # 13 and 9 rows are odd for a factor-2 VAE: padding then cropping must still give the input's size.
    odd = refiner.refine(_images(1, 13, 9).double())
    assert odd.shape == (1, 13, 9, 3) and odd.dtype == torch.float32


def test_chunking_and_ignored_inputs_do_not_change_the_result(refiner):
    images = _images(5, 10, 12, seed=3)
    whole = refiner.refine(images)
    reference = torch.rand(5, 10, 12, 3)
    assert torch.equal(refiner.refine(images, reference, torch.ones(5, 10, 12, 1), torch.ones(5, 10, 12, 1)), whole)
    chunk = refiner.chunk
    try:
        refiner.chunk = 2  # 2 + 2 + 1 frames
        assert torch.allclose(refiner.refine(images), whole, atol=1e-5)
    finally:
        refiner.chunk = chunk
    assert torch.allclose(refiner.refine(images[3:4]), whole[3:4], atol=1e-5)


def test_deterministic_across_calls_and_loads(pipeline_folder, refiner):
    images = _images(2, 18, 26, seed=7)
    first = refiner.refine(images)
    assert torch.equal(refiner.refine(images), first)
    assert torch.equal(DiffusionRefiner.from_folder(pipeline_folder).refine(images), first)


class _StubUNet(torch.nn.Module):
    """Stands in for the UNet: a known output (0.5 z + 0.2) and a record of what it was given."""

    def __init__(self, like: torch.nn.Module):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1), requires_grad=False)  # gives the refiner a device/dtype
        self.config = like.config
        self.calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, sample, timestep, encoder_hidden_states, return_dict=True):
        self.calls.append((sample.clone(), timestep.clone(), encoder_hidden_states.clone()))
        return (0.5 * sample + 0.2,)


@pytest.mark.parametrize("prediction_type, shift_factor", [("epsilon", None), ("v_prediction", 0.1), ("sample", None)])
def test_x0_from_the_model_output_follows_the_prediction_type(tmp_path, prediction_type, shift_factor):
    folder = make_tiny_pipeline(tmp_path / prediction_type, prediction_type=prediction_type,
                                shift_factor=shift_factor)
    refiner = DiffusionRefiner.from_folder(folder, timestep=150)
    assert refiner.prediction_type == prediction_type
    stub = _StubUNet(refiner.unet)
    refiner.unet = stub
    images = _images(2, 12, 16, seed=5)  # a multiple of the VAE factor: no padding in the hand computation
    out = refiner.refine(images)

    vae, sf = refiner.vae, refiner.vae.config.scaling_factor
    shift = shift_factor or 0.0
    a = _alpha_bar(150)
    with torch.no_grad():
        x = images.permute(0, 3, 1, 2) * 2 - 1
        z = (vae.encode(x).latent_dist.mode() - shift) * sf
        model_out = 0.5 * z + 0.2
        if prediction_type == "epsilon":
            x0 = (z - math.sqrt(1 - a) * model_out) / math.sqrt(a)
        elif prediction_type == "v_prediction":
            x0 = math.sqrt(a) * z - math.sqrt(1 - a) * model_out
        else:
            x0 = model_out
        expected = ((vae.decode(x0 / sf + shift).sample + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)

    (sample, timestep, hidden), = stub.calls
    assert torch.allclose(sample, z, atol=1e-6)  # the clean latent, no noise added
    assert timestep.tolist() == [150, 150]
    assert torch.equal(hidden, refiner.prompt_embeds.expand(2, -1, -1))
    assert torch.allclose(out, expected, atol=1e-5)


def test_missing_component_names_the_folder(pipeline_folder, tmp_path):
    broken = tmp_path / "no-unet"
    shutil.copytree(pipeline_folder, broken)
    shutil.rmtree(broken / "unet")
    with pytest.raises(SplatfilmError, match=r"no-unet.*unet/"):
        load_refiner(broken)
    with pytest.raises(SplatfilmError, match="timestep"):
        DiffusionRefiner.from_folder(pipeline_folder, timestep=NUM_TRAIN_TIMESTEPS)
    with pytest.raises(SplatfilmError, match="not found"):
        DiffusionRefiner.from_folder(tmp_path / "nowhere")


def test_bad_image_batch_is_a_one_line_error(refiner):
    for bad in (torch.rand(2, 3, 16, 16), torch.rand(16, 16, 3), torch.zeros(1, 8, 8, 3, dtype=torch.uint8)):
        with pytest.raises(SplatfilmError, match=r"\[B,H,W,3\]"):
            refiner.refine(bad)


def test_missing_diffusers_says_what_to_install(pipeline_folder, monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `from diffusers import ...` raise ImportError
    with pytest.raises(SplatfilmError, match=r"pip install splatfilm\[diffusion\]") as info:
        DiffusionRefiner.from_folder(pipeline_folder)
    assert str(pipeline_folder) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("unet_config, said", [
    ({"in_channels": 9}, "9 input channels but the VAE's latent has 4"),
    ({"addition_embed_type": "text_time", "addition_time_embed_dim": 8, "projection_class_embeddings_input_dim": 64},
     "'text_time' embeddings"),
])
def test_a_unet_this_refiner_cannot_drive_is_refused_when_loaded(tmp_path, unet_config, said):
    """An inpainting UNet loaded, then failed with a RuntimeError traceback on the first frame
    (after the capture and scene had loaded); an SDXL one with a TypeError."""
    folder = make_tiny_pipeline(tmp_path / "p", **unet_config)
    with pytest.raises(SplatfilmError, match=said) as info:
        load_refiner(folder)
    assert "\n" not in str(info.value)


def test_other_pipelines_and_difix_skip_connections_are_refused_in_one_line(pipeline_folder, tmp_path):
    from safetensors.torch import load_file, save_file

    other = tmp_path / "controlnet"
    shutil.copytree(pipeline_folder, other)
    index = json.loads((other / "model_index.json").read_text())
    (other / "model_index.json").write_text(json.dumps({**index, "_class_name": "StableDiffusionControlNetPipeline"}))
    with pytest.raises(SplatfilmError, match="'StableDiffusionControlNetPipeline' is not a Stable Diffusion img2img"):
        load_refiner(other)
    # Difix (diffusers layout): its VAE decoder adds 1x1 convs of the encoder's activations,
    # which diffusers' AutoencoderKL dropped with a "weights not used" warning.
    difix = tmp_path / "difix"
    shutil.copytree(pipeline_folder, difix)
    (difix / "model_index.json").write_text(json.dumps({**index, "_class_name": ["pipeline_difix", "DifixPipeline"]}))
    weights = difix / "vae" / "diffusion_pytorch_model.safetensors"
    save_file({**load_file(weights), "decoder.skip_conv_1.weight": torch.zeros(16, 16, 1, 1)}, weights)
    with pytest.raises(SplatfilmError, match="skip connections are not supported") as info:
        load_refiner(difix)
    assert "\n" not in str(info.value)


def test_a_failure_inside_the_model_is_a_one_line_error(refiner, monkeypatch):
    class Broken(_StubUNet):
        def forward(self, *a, **k):
            raise RuntimeError("Given groups=1, weight of size [8, 9, 3, 3], expected input to have 9 channels\nmore")

    monkeypatch.setattr(refiner, "unet", Broken(refiner.unet))
    with pytest.raises(SplatfilmError, match=r"tiny-sd-turbo: the diffusion refiner failed .*RuntimeError: Given") as info:
        refiner.refine(_images(1, 8, 8))
    assert "\n" not in str(info.value)


def test_a_folder_of_fp16_variant_weights_loads(tmp_path, pipeline_folder):
    """Only NAME.fp16.safetensors files (as many hub repos ship): they were refused, with a
    message about missing weight files."""
    folder = make_tiny_pipeline(tmp_path / "fp16", variant="fp16")
    assert list((folder / "unet").glob("*.fp16.safetensors")) and not (folder / "unet" / WEIGHTS).exists()
    refiner = load_refiner(folder)
    images = _images(1, 12, 16, seed=2)
    assert torch.equal(refiner.refine(images), load_refiner(pipeline_folder).refine(images))


def test_the_prompt_reaches_the_refiner(pipeline_folder, refiner):
    from splatfilm.cli import build_parser

    prompted = load_refiner(pipeline_folder, prompt="remove degradation")
    assert prompted.prompt == "remove degradation"
    assert not torch.equal(prompted.prompt_embeds, refiner.prompt_embeds)
    parser = build_parser()
    for argv in (["render", "f.yaml", "-o", "out", "--refine", "r", "--refiner-prompt", "remove degradation"],
                 ["refine", "s.ply", "d", "--cameras", "c.json", "-o", "o.ply", "--refiner", "r",
                  "--refiner-prompt", "remove degradation"]):
        assert parser.parse_args(argv).refiner_prompt == "remove degradation"

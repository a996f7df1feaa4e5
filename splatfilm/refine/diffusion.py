"""`DiffusionRefiner`: a pretrained single-step diffusion img2img model as a `Refiner`.

What folder it takes: a LOCAL diffusers pipeline folder in the Stable Diffusion img2img layout,

    model_index.json  vae/  unet/  text_encoder/  tokenizer/  scheduler/

that is either a downloaded sd-turbo-class model (e.g. `stabilityai/sd-turbo` saved with
`save_pretrained` or cloned as files), or a Difix-style single-step "fixer" fine-tuned from one
and saved in the same layout. Nothing is ever fetched: every component loads with
`local_files_only=True` and the hub is switched offline, so a folder that lacks a component
is a one-line `SplatfilmError`, not a download.

Why one step at t=199 and no noise: a render from a Gaussian scene is already close to the
truth; its defects (floaters, blur, holes) are what a diffusion model sees in a slightly noisy
latent. Difix (Wu et al., 2025) therefore treats the clean latent of the render *as* the noisy
sample x_t at a low timestep, t=199 of 1000, and takes one denoising step straight to the x0
prediction. Adding real noise would only make the output random and drift from the scene;
leaving it out makes the refiner deterministic (one input, one output), which a film needs so
that frames do not flicker from run to run. For the same reason the VAE latent is its
distribution's mode, not a sample, and there is no classifier-free guidance (sd-turbo is
distilled for guidance 0).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from splatfilm.errors import SplatfilmError, first_line
from splatfilm.refine.refiner import check_batch

# huggingface_hub reads this once, at its own import: set it before diffusers/transformers come in,
# so that even a code path that forgets local_files_only cannot reach the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

COMPONENTS = ("vae", "unet", "text_encoder", "tokenizer", "scheduler")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")
INSTALL_HINT = "pip install splatfilm[diffusion]"
DIFIX_TIMESTEP = 199
# The pipelines whose folders hold the components this refiner runs as it runs them: sd-turbo
# ships as StableDiffusionPipeline, a saved img2img pipeline as StableDiffusionImg2ImgPipeline.
PIPELINE_CLASSES = ("StableDiffusionPipeline", "StableDiffusionImg2ImgPipeline")
# Weight files a component may hold, without a variant; `_variant` looks for "NAME.fp16.EXT".
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.safetensors",
                "pytorch_model.bin")


def x0_from_model_output(z: torch.Tensor, model_output: torch.Tensor, alpha_bar: float,
                         prediction_type: str) -> torch.Tensor:
    """The clean-latent prediction x0 from one UNet evaluation at a timestep with cumulative
    alpha `alpha_bar` (alphas_cumprod[t], in (0, 1]).

    z, model_output: [B,C,h,w] latents (scaled by the VAE's scaling factor). prediction_type is
    the scheduler's: "epsilon" (noise), "v_prediction" (velocity) or "sample" (x0 itself).
    Returns x0 [B,C,h,w] in the same latent units."""
    if prediction_type == "epsilon":
        return (z - math.sqrt(1.0 - alpha_bar) * model_output) / math.sqrt(alpha_bar)
    if prediction_type == "v_prediction":
        return math.sqrt(alpha_bar) * z - math.sqrt(1.0 - alpha_bar) * model_output
    if prediction_type == "sample":
        return model_output
    raise SplatfilmError(f"diffusion refiner: unknown prediction_type {prediction_type!r} "
                         f"(expected one of {', '.join(PREDICTION_TYPES)})")


def _import_backend(folder: Path) -> dict[str, Any]:
    try:
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer
    except Exception as exc:  # a broken install raises more than ImportError (e.g. a binary mismatch)
        raise SplatfilmError(f"{folder}: the diffusion refiner needs diffusers and transformers, which failed to "
                             f"import ({first_line(exc)}); {INSTALL_HINT}") from None
    return {"vae": AutoencoderKL, "unet": UNet2DConditionModel, "text_encoder": CLIPTextModel,
            "tokenizer": CLIPTokenizer, "scheduler": DDPMScheduler}


def _variant(folder: Path) -> str | None:
    """"fp16" when a component folder holds only fp16-variant weights (NAME.fp16.safetensors,
    as `save_pretrained(variant="fp16")` writes and many hub repos ship), else None."""
    if any((folder / f).is_file() for f in WEIGHT_FILES):
        return None
    stem_ext = [f.rsplit(".", 1) for f in WEIGHT_FILES]
    return "fp16" if any((folder / f"{stem}.fp16.{ext}").is_file() for stem, ext in stem_ext) else None


def _load(folder: Path, sub: str, cls: Any, **kwargs: Any) -> Any:
    variant = _variant(folder / sub)
    if variant is not None:
        kwargs["variant"] = variant
    try:
        return cls.from_pretrained(folder, subfolder=sub, local_files_only=True, **kwargs)
    except Exception as exc:
        raise SplatfilmError(f"{folder / sub}: cannot load {cls.__name__} ({first_line(exc)})") from None


def _check_pipeline(folder: Path) -> None:
    """A one-line error for a pipeline folder this refiner would load and then run wrongly:
    one whose VAE has Difix's decoder skip connections (loading would drop them), or whose
    model_index.json names another pipeline (inpainting, SDXL, ...)."""
    vae = folder / "vae"
    weights = [vae / f for f in WEIGHT_FILES if (vae / f).is_file() and f.endswith(".safetensors")]
    weights += sorted(vae.glob("*.fp16.safetensors"))
    if weights:
        from safetensors import safe_open

        try:
            with safe_open(str(weights[0]), framework="pt") as f:
                skips = [k for k in f.keys() if k.startswith("decoder.skip_conv_")]  # noqa: SIM118 (not a dict)
        except Exception:  # noqa: BLE001 (an unreadable file is told by the loader, with its reason)
            skips = []
        if skips:
            raise SplatfilmError(f"{weights[0]}: a Difix-style VAE with decoder skip connections "
                                 f"({skips[0].rsplit('.', 1)[0]}, ...); its skip connections are not supported, "
                                 "and a plain VAE decoder would run without them")
    try:
        name = json.loads((folder / "model_index.json").read_text()).get("_class_name")
    except (OSError, ValueError, AttributeError) as exc:
        raise SplatfilmError(f"{folder / 'model_index.json'}: cannot read it ({first_line(exc)})") from None
    if isinstance(name, list):  # a custom pipeline: [module, class]
        name = name[-1] if name else None
    if name not in PIPELINE_CLASSES:
        raise SplatfilmError(f"{folder / 'model_index.json'}: pipeline {name!r} is not a Stable Diffusion img2img "
                             f"pipeline this refiner can run (expected {' or '.join(PIPELINE_CLASSES)})")


def _check_models(folder: Path, vae: Any, unet: Any, prompt_embeds: torch.Tensor) -> None:
    """A one-line error unless the UNet takes what this refiner gives it: the VAE's latent
    alone (not an inpainting UNet's latent, mask and masked image), conditioned on the text
    encoder's states only (not SDXL's extra time and pooled-text embeddings)."""
    latent, inputs = int(vae.config.latent_channels), int(unet.config.in_channels)
    if inputs != latent:
        raise SplatfilmError(f"{folder / 'unet'}: the UNet takes {inputs} input channels but the VAE's latent has "
                             f"{latent} (an inpainting or depth-conditioned model?); an img2img refiner needs them equal")
    extra = unet.config.get("addition_embed_type", None)
    if extra is not None:
        raise SplatfilmError(f"{folder / 'unet'}: the UNet wants added {extra!r} embeddings (an SDXL-class model?); "
                             "only Stable Diffusion 1/2-class UNets (sd-turbo) are supported")
    width = unet.config.get("cross_attention_dim", None)
    if isinstance(width, int) and width != prompt_embeds.shape[-1]:
        raise SplatfilmError(f"{folder}: the UNet attends to text states of width {width} but the text encoder "
                             f"gives {prompt_embeds.shape[-1]}")


@dataclass(eq=False)
class DiffusionRefiner:
    """Single-step diffusion refiner (sd-turbo / Difix style); see the module docstring.

    An img2img model has no reference input: `refine` ignores `reference`, `reference_mask`
    and `depth`. Build one with `DiffusionRefiner.from_folder` (or `load_refiner`)."""

    name: ClassVar[str] = "diffusion"

    vae: torch.nn.Module = field(repr=False)
    unet: torch.nn.Module = field(repr=False)
    prompt_embeds: torch.Tensor = field(repr=False)  # [1, L, D] text-encoder hidden states of `prompt`
    alphas_cumprod: torch.Tensor = field(repr=False)  # [T] float64, the scheduler's cumulative alphas
    prediction_type: str = "epsilon"
    timestep: int = DIFIX_TIMESTEP
    prompt: str = ""
    chunk: int = 4  # frames per VAE/UNet pass; bounds memory at film resolutions
    folder: Path | None = None

    @classmethod
    def from_folder(cls, folder: str | Path, device: str | torch.device = "cpu", prompt: str = "",
                    timestep: int = DIFIX_TIMESTEP, dtype: torch.dtype = torch.float32) -> DiffusionRefiner:
        """Load a local diffusers img2img pipeline folder (see the module docstring).

        device, dtype: where and in what precision the VAE and UNet run (float16 or bfloat16
        halve GPU memory; the output is float32 either way). prompt: the text the UNet is
        conditioned on ("" for sd-turbo; Difix was trained with "remove degradation"), encoded
        once here. timestep: the x_t timestep the clean latent stands for, in
        [0, num_train_timesteps). Raises `SplatfilmError` naming the folder and the problem."""
        folder = Path(folder)
        if not folder.is_dir():
            raise SplatfilmError(f"{folder}: diffusion refiner folder not found")
        if not (folder / "model_index.json").is_file():
            raise SplatfilmError(f"{folder}: no model_index.json (expected a diffusers pipeline folder "
                                 f"with {', '.join(c + '/' for c in COMPONENTS)})")
        missing = [c + "/" for c in COMPONENTS if not (folder / c).is_dir()]
        if missing:
            raise SplatfilmError(f"{folder}: not a complete diffusers img2img pipeline, missing "
                                 f"{', '.join(missing)} (expected {', '.join(c + '/' for c in COMPONENTS)})")
        classes = _import_backend(folder)
        _check_pipeline(folder)
        device = torch.device(device)

        scheduler = _load(folder, "scheduler", classes["scheduler"])
        # DDPMScheduler only serves to turn the beta schedule in the config (whatever scheduler class
        # the folder names: sd-turbo's is Euler) into alphas_cumprod; it never steps.
        alphas_cumprod = scheduler.alphas_cumprod.detach().to("cpu", torch.float64)
        prediction_type = str(scheduler.config.get("prediction_type", "epsilon"))
        if prediction_type not in PREDICTION_TYPES:
            raise SplatfilmError(f"{folder / 'scheduler'}: prediction_type {prediction_type!r} is not one of "
                                 f"{', '.join(PREDICTION_TYPES)}")
        _check_timestep(timestep, len(alphas_cumprod), folder)

        tokenizer = _load(folder, "tokenizer", classes["tokenizer"])
        text_encoder = _load(folder, "text_encoder", classes["text_encoder"])
        # Loading in the target dtype (rather than casting afterwards) lets diffusers keep any modules a
        # model marks as float32-only in float32. Without accelerate diffusers falls back to
        # low_cpu_mem_usage=False anyway, but warns twice on every load; asking for it keeps logs readable.
        lean = {} if importlib.util.find_spec("accelerate") is not None else {"low_cpu_mem_usage": False}
        vae = _load(folder, "vae", classes["vae"], torch_dtype=dtype, **lean)
        unet = _load(folder, "unet", classes["unet"], torch_dtype=dtype, **lean)
        for module in (text_encoder, vae, unet):
            module.requires_grad_(False).eval()
        vae.to(device)
        unet.to(device)

        # The prompt never changes between frames, so the text encoder runs once and is then dropped
        # (for sd-turbo it is ~340M parameters). transformers renamed torch_dtype to dtype in 4.56;
        # casting after loading works with either.
        text_encoder.to(device=device, dtype=dtype)
        prompt_embeds = encode_prompt(tokenizer, text_encoder, prompt)
        del text_encoder
        _check_models(folder, vae, unet, prompt_embeds)
        return cls(vae=vae, unet=unet, prompt_embeds=prompt_embeds, alphas_cumprod=alphas_cumprod,
                   prediction_type=prediction_type, timestep=int(timestep), prompt=prompt, folder=folder)

    @property
    def device(self) -> torch.device:
        return next(self.unet.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def downsample_factor(self) -> int:
        """Pixels per latent cell along each axis (8 for Stable Diffusion's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images [B,3,H,W] in [-1,1] (H, W multiples of `downsample_factor`) -> latents
        [B,C,H/f,W/f] in the UNet's units (shifted and scaled). Takes the mode, never a sample."""
        z = self.vae.encode(x).latent_dist.mode()
        shift = self.vae.config.get("shift_factor", None)
        if shift is not None:
            z = z - shift
        return z * self.vae.config.scaling_factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Latents [B,C,h,w] in the UNet's units -> images [B,3,h*f,w*f] in about [-1,1]."""
        z = z / self.vae.config.scaling_factor
        shift = self.vae.config.get("shift_factor", None)
        if shift is not None:
            z = z + shift
        return self.vae.decode(z).sample

    def refine(self, images: torch.Tensor, reference: torch.Tensor | None = None,
               reference_mask: torch.Tensor | None = None, depth: torch.Tensor | None = None) -> torch.Tensor:
        """Refine rendered frames with one denoising step.

        images [B,H,W,3] float in [0,1], any H and W. reference, reference_mask and depth are
        accepted for the `Refiner` interface and IGNORED: an img2img model has no input for them.
        Returns [B,H,W,3] float32 in [0,1] on the images' device. Deterministic: no noise, the
        VAE's mode, no sampling anywhere."""
        check_batch(images)
        _check_timestep(self.timestep, len(self.alphas_cumprod), self.folder)
        alpha_bar = float(self.alphas_cumprod[self.timestep])
        out = torch.empty(images.shape, dtype=torch.float32, device=images.device)
        step = max(1, int(self.chunk))
        with torch.no_grad():
            for s in range(0, images.shape[0], step):
                try:
                    chunk = self._refine_chunk(images[s:s + step], alpha_bar)
                except (RuntimeError, TypeError, ValueError) as exc:  # a model that loaded but cannot run
                    where = f"{self.folder}: " if self.folder is not None else ""
                    raise SplatfilmError(f"{where}the diffusion refiner failed on a {images.shape[2]}x"
                                         f"{images.shape[1]} frame ({first_line(exc)})") from None
                out[s:s + step] = chunk.to(out.device, torch.float32)
        return out

    def _refine_chunk(self, images: torch.Tensor, alpha_bar: float) -> torch.Tensor:
        n, h, w, _ = images.shape
        # Renders can overshoot [0,1] a little (additive splats); the VAE was trained on [-1,1] only.
        x = images.to(self.device, self.dtype).clamp(0, 1).permute(0, 3, 1, 2) * 2 - 1
        f = self.downsample_factor
        pad_h, pad_w = (-h) % f, (-w) % f
        if pad_h or pad_w:
            # Reflection continues the image's texture, so the padded border does not bleed a hard
            # edge back into the frame through the convolutions; tiny frames cannot reflect that far.
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        z = self.encode(x)
        t = torch.full((n,), self.timestep, device=self.device, dtype=torch.long)
        emb = self.prompt_embeds.to(self.device, self.dtype).expand(n, -1, -1)
        pred = self.unet(z, t, encoder_hidden_states=emb, return_dict=False)[0]
        x0 = x0_from_model_output(z, pred, alpha_bar, self.prediction_type)
        y = self.decode(x0)[:, :, :h, :w]
        return ((y.float() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1)


def encode_prompt(tokenizer: Any, text_encoder: torch.nn.Module, prompt: str) -> torch.Tensor:
    """Text-encoder hidden states [1, L, D] of `prompt`, padded to the tokenizer's length as the
    Stable Diffusion pipelines do (L = 77 for CLIP), on the text encoder's device and dtype."""
    max_length = int(tokenizer.model_max_length)
    limit = getattr(text_encoder.config, "max_position_embeddings", None)
    if limit is not None and max_length > limit:  # tokenizers saved without a length report a huge sentinel
        max_length = int(limit)
    ids = tokenizer(prompt, padding="max_length", max_length=max_length, truncation=True,
                    return_tensors="pt").input_ids
    device = next(text_encoder.parameters()).device
    with torch.no_grad():
        return text_encoder(ids.to(device)).last_hidden_state


def _check_timestep(timestep: int, num_train_timesteps: int, folder: Path | None) -> None:
    if not 0 <= int(timestep) < num_train_timesteps:
        where = f"{folder}: " if folder is not None else ""
        raise SplatfilmError(f"{where}diffusion refiner timestep {timestep} is outside "
                             f"[0, {num_train_timesteps}) of the scheduler")

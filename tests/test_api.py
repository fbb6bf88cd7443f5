"""The public Python API: the README example verbatim, any length/rate/channels, clear errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import lmaczs_cli
import tests.fake_model  # noqa: F401  (registers --clap fake)
from lmaczs_cli.errors import AudioError, UsageError

REPO = Path(__file__).resolve().parents[1]


def _readme_python() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Python API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_example_runs_verbatim(tmp_path: Path) -> None:
    code = _readme_python()
    assert "lmaczs_cli.explain(" in code
    clip = tmp_path / "lmaczs_cli" / "assets" / "examples" / "scene.wav"
    clip.parent.mkdir(parents=True)
    clip.symlink_to(REPO / "lmaczs_cli" / "assets" / "examples" / "scene.wav")
    (tmp_path / "example.py").write_text(code + "\nprint('WAVE', wave.shape, wave.dtype)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "example.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("this is a sound of bell: s = ") and "kept" in lines[0]
    assert lines[-1] == "WAVE (80000,) float32"  # 5 s at the clip's 16 kHz
    for rank in ("1", "2"):
        d = tmp_path / "lmaczs-out" / "api" / rank
        assert sf.info(d / "explanation.wav").frames == 80000
        assert (d / "map.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def explainer():
    model = lmaczs_cli.load_model("small", device="cpu")
    return lmaczs_cli.load_explainer("lmaczs", model)


def test_twenty_seconds_of_stereo_at_22k(tmp_path: Path, explainer) -> None:
    sr, n = 22050, 20 * 22050
    t = np.arange(n) / sr
    beep = 0.3 * np.sin(2 * np.pi * 880 * t) * (t % 4 < 1)  # one beep in every 4 s
    x = np.stack([beep, 0.02 * np.random.default_rng(0).standard_normal(n)], 1).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    (e,) = lmaczs_cli.explain(explainer, str(path), ["this is a sound of beep"])
    model = explainer.model
    frames = (n * model.sample_rate // sr) // model.stft_config.hop_length + 1
    assert tuple(e.mask.shape) == (model.n_freqs, frames)  # the whole clip, not one window
    wave = e.waveform()
    assert wave.shape == (n,) and wave.dtype == np.float32 and e.sample_rate == sr
    assert np.isfinite(wave).all() and 0 < np.abs(wave).max() <= 1.0
    # the same samples given as an array (channels last and channels first) explain the same
    (a,) = lmaczs_cli.explain(explainer, (x, sr), ["this is a sound of beep"])
    (b,) = lmaczs_cli.explain(explainer, (torch.from_numpy(x.T.copy()), sr), ["this is a sound of beep"])
    assert torch.allclose(a.mask, e.mask, atol=1e-4) and torch.allclose(b.mask, e.mask, atol=1e-4)
    assert a.similarity == pytest.approx(e.similarity, abs=1e-5)


def test_all_ones_explainer_gives_back_the_clip(tmp_path: Path) -> None:
    from lmaczs_cli.explainers.base import register_explainer

    register_explainer("ones", "tests.test_explain:build_ones")
    model = lmaczs_cli.load_model("fake", device="cpu")
    ones = lmaczs_cli.load_explainer("ones", model)
    sr = 11025
    x = (0.3 * np.sin(2 * np.pi * 500 * np.arange(int(1.7 * sr)) / sr)).astype(np.float32)
    (e,) = lmaczs_cli.explain(ones, (x, sr), "a beep")
    assert e.masked_similarity == pytest.approx(e.similarity, abs=1e-5)
    y = e.waveform()
    assert y.shape == x.shape and np.corrcoef(x, y)[0, 1] > 0.99  # band-limited at 8 kHz, same clip
    paths = e.save(tmp_path / "o", residual=True, save_mask=True)
    assert set(paths) == {"wav", "residual_wav", "mask", "png"}
    assert np.abs(sf.read(paths["residual_wav"])[0]).max() < 1e-4  # nothing removed
    fig = e.plot()
    assert tuple(fig.get_size_inches() * fig.dpi) == (1500, 450)


@pytest.mark.parametrize(("audio", "message"), [
    ((np.zeros(100, dtype=np.int16), 16000), "expected a floating-point array"),
    ((np.zeros(100, dtype=np.float32), 0), "sample_rate: expected a positive int"),
    ((np.zeros((3, 40, 40), dtype=np.float32), 16000), "shape [N], [channels, N] or [N, channels]"),
    ((np.zeros((50, 50), dtype=np.float32), 16000), "got shape (50, 50)"),
    ((np.zeros(0, dtype=np.float32), 16000), "got shape (0,)"),
    ((np.full(100, np.nan, dtype=np.float32), 16000), "NaN or Inf"),
    (np.zeros(100, dtype=np.float32), "or a file path"),
])
def test_bad_arrays_are_one_line_value_errors(explainer, audio, message: str) -> None:
    with pytest.raises(ValueError) as e:
        lmaczs_cli.explain(explainer, audio, ["this is a sound of beep"])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_bad_file_and_bad_prompts(tmp_path: Path, explainer) -> None:
    bad = tmp_path / "x.wav"
    bad.write_text("not audio")
    with pytest.raises(AudioError, match=r"x\.wav: not an audio file"):
        lmaczs_cli.explain(explainer, str(bad), ["beep"])
    with pytest.raises(UsageError, match="empty prompt"):
        lmaczs_cli.explain(explainer, (np.zeros(800, np.float32), 16000), ["  "])


def test_unknown_explainer_option_is_refused() -> None:
    model = lmaczs_cli.load_model("fake", device="cpu")
    with pytest.raises(UsageError, match="method 'gradcam' has no option 'steps'; it takes no options"):
        lmaczs_cli.load_explainer("gradcam", model, steps=3)
    with pytest.raises(UsageError, match=r"method 'ig' has no option 'samples'; its options: steps, baseline"
                       ):
        lmaczs_cli.load_explainer("ig", model, samples=3)


def test_explainer_base_owns_grad_mode() -> None:
    from lmaczs_cli.explainers.base import Explainer

    seen = []

    class Probe(Explainer):
        def compute_masks(self, model, magnitude, text, encoded=None):
            seen.append(torch.is_grad_enabled())
            return torch.ones_like(magnitude, requires_grad=torch.is_grad_enabled())

    class GradProbe(Probe):
        needs_grad = True

    mag, text = torch.rand(2, 5, 7), torch.rand(2, 3)
    for ex in (Probe(), GradProbe()):
        with torch.no_grad():
            out = ex.masks(None, mag, text)
        assert not out.requires_grad and out.dtype == torch.float32
    assert seen == [False, True]
    with pytest.raises(ValueError, match="pairs clip i with prompt i"):
        Probe().masks(None, mag, torch.rand(3, 3))


def test_package_import_is_light() -> None:
    code = "import sys, lmaczs_cli; print('torch' in sys.modules, callable(lmaczs_cli.list_models))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_pairs_of_consecutive_windows_are_picked_as_views() -> None:
    from lmaczs_cli.explaining import _rows

    assert _rows([3, 4, 5], torch.device("cpu")) == slice(3, 6)  # one prompt per clip: no copies
    assert torch.equal(_rows([3, 3, 4], torch.device("cpu")), torch.tensor([3, 3, 4]))
    assert torch.equal(_rows([5, 4], torch.device("cpu")), torch.tensor([5, 4]))

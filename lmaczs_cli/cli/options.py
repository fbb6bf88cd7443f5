"""Every command-line option, declared once; commands take the ones they need from here.

The options every model-running command shares (``--clap`` ... ``--precision``)
and the manners every command shares (``--quiet``, ``--json``, ``--debug``) are
added by :func:`lmaczs_cli.cli.common.command`, so no command declares them.
Options with an environment default read ``LMACZS_<NAME>`` (docs/usage.md, the table).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lmaczs_cli.models.families import clap_help
from lmaczs_cli.runtime import DEFAULT_MODEL


def _version(value: bool) -> None:
    if value:
        from lmaczs_cli import __version__

        typer.echo(f"lmaczs {__version__}")
        raise typer.Exit()


Version = Annotated[bool, typer.Option(
    "--version", callback=_version, is_eager=True, help="Print the version and exit.")]

# -- shared by every model-running command (added by `command`) -----------------------------
Clap = Annotated[str, typer.Option(
    "--clap", envvar="LMACZS_CLAP", help=clap_help())]  # one line per family record
ClapCkpt = Annotated[str | None, typer.Option(
    "--clap-ckpt", envvar="LMACZS_CLAP_CKPT",
    help="Model checkpoint file (LAION .pt, MS-CLAP .pth); 'random' builds random weights (testing). "
    "hf models: only 'random'.")]
TokenizerDir = Annotated[Path | None, typer.Option(
    "--tokenizer-dir", envvar="LMACZS_TOKENIZER_DIR",
    help="Folder with the text tokenizer files (LAION: roberta-base vocab.json, merges.txt; "
    "ms-clap-2023: gpt2's; ms-clap-2022 needs none; hf: replaces the checkpoint's tokenizer).")]
Device = Annotated[str, typer.Option("--device", envvar="LMACZS_DEVICE", help="auto, cpu, cuda or cuda:N.")]
BatchSize = Annotated[int, typer.Option(
    "--batch-size", envvar="LMACZS_BATCH_SIZE", min=1, help="Clips per batch.")]
NumWorkers = Annotated[int, typer.Option(
    "--num-workers", envvar="LMACZS_NUM_WORKERS", min=0, help="Data-loading worker processes.")]
Seed = Annotated[int, typer.Option("--seed", envvar="LMACZS_SEED", help="Random seed.")]
Precision = Annotated[str, typer.Option(
    "--precision", envvar="LMACZS_PRECISION", help="fp32, bf16 or fp16 (bf16/fp16 on CUDA).")]

#: name -> (type, default) of the shared model options, in --help order
Threads = Annotated[int, typer.Option(
    "--threads", min=0, envvar="LMACZS_THREADS",
    help="torch threads per process (per torchrun rank); 0: torch's default. One per rank avoids "
         "oversubscribing the cores when several processes share a machine.")]

RUN_OPTIONS: dict[str, tuple[object, object]] = {
    "clap": (Clap, DEFAULT_MODEL),
    "clap_ckpt": (ClapCkpt, None),
    "tokenizer_dir": (TokenizerDir, None),
    "device": (Device, "auto"),
    "batch_size": (BatchSize, 8),
    "num_workers": (NumWorkers, 0),
    "seed": (Seed, 0),
    "precision": (Precision, "fp32"),
    "threads": (Threads, 0),
}

# -- manners of every command (added by `command`) ---------------------------------------
Quiet = Annotated[bool, typer.Option(
    "--quiet", "-q", envvar="LMACZS_QUIET", help="No progress bars or log lines.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON object per result line on stdout.")]
Debug = Annotated[bool, typer.Option("--debug", envvar="LMACZS_DEBUG", help="Show tracebacks on errors.")]

MANNERS: dict[str, tuple[object, object]] = {
    "quiet": (Quiet, False),
    "json_out": (Json, False),
    "debug": (Debug, False),
}

# -- outputs -----------------------------------------------------------------------------
Out = Annotated[Path, typer.Option(
    "--out", "-o", envvar="LMACZS_OUT", help="Output folder; nothing is written outside it.")]
Resume = Annotated[bool, typer.Option("--resume", help="Skip work already finished in --out.")]

# -- inputs and prompts ------------------------------------------------------------------
Inputs = Annotated[list[Path] | None, typer.Argument(help="Audio files or folders (recursive).")]
FilesFrom = Annotated[str | None, typer.Option(
    "--files-from", help="File listing inputs, one per line; - for stdin.")]
Prompt = Annotated[list[str] | None, typer.Option("--prompt", "-p", help="A prompt (repeatable).")]
PromptsFile = Annotated[Path | None, typer.Option("--prompts-file", help="File with one prompt per line.")]
Labels = Annotated[str | None, typer.Option(
    "--labels", help="Label set esc50, esc10, us8k, synth or FILE (one label per line).")]
PromptTemplate = Annotated[str, typer.Option(
    "--prompt-template", help="Template turning a label into a prompt; must contain {label}.")]
TopK = Annotated[int | None, typer.Option(
    "--top-k", "-k", min=1, help="Explain the K prompts the model ranks highest per clip.")]
ClassifyTopK = Annotated[int, typer.Option("--top-k", "-k", min=1, help="Labels per clip.")]

# -- explanation outputs -----------------------------------------------------------------
Residual = Annotated[bool, typer.Option("--residual", help="Also write what the mask removed.")]
SaveMask = Annotated[bool, typer.Option("--save-mask", help="Also write the mask as .npy.")]
NoScore = Annotated[bool, typer.Option("--no-score", help="Skip the masked-similarity pass.")]
FailFast = Annotated[bool, typer.Option("--fail-fast", help="Stop at the first bad input.")]
Shard = Annotated[str, typer.Option(
    "--shard", envvar="LMACZS_SHARD", metavar="I/N",
    help="Take every N-th input from the I-th (I from 0), e.g. a Slurm array's "
         "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT; shares write into one --out. Under torchrun "
         "the ranks split the inputs by themselves.")]
NoMaps = Annotated[bool, typer.Option(
    "--no-maps", help="Write no map.png (tables and WAVs only): faster for large batch jobs.")]
RequireDecoder = Annotated[bool, typer.Option(
    "--require-decoder", envvar="LMACZS_REQUIRE_DECODER",
    help="Refuse (exit 2) when the model has no LMAC-ZS decoder, instead of explaining each clip by "
         "per-clip LMAC-ZS (slower); for batch jobs that must not suddenly become slow.")]

# -- methods -----------------------------------------------------------------------------
Methods = Annotated[list[str] | None, typer.Option(
    "--method", "-m", help="lmaczs, gradcam, gradcam++, smoothgrad, ig, lmaczs-perclip, all-ones, empty or "
    "random-rectangle (repeatable).")]
BaselineMethods = Annotated[list[str], typer.Option(
    "--method", "-m", help="gradcam, gradcam++, smoothgrad, ig, lmaczs-perclip, all-ones, empty or "
    "random-rectangle (repeatable).")]
Decoder = Annotated[Path | None, typer.Option(
    "--decoder", envvar="LMACZS_DECODER",
    help="LMAC-ZS decoder: a .pt checkpoint, an exported folder or hf:ORG/REPO[@REV] from the Hugging "
    "Face cache (default: the one registered for the model's weights by train/download, else the "
    "bundled one).")]
MaskDomain = Annotated[str | None, typer.Option(
    "--mask-domain", help="LMAC-ZS decoder domain: stft or mel (default: the decoder's).")]
IgSteps = Annotated[int, typer.Option("--ig-steps", min=2, help="Integrated Gradients steps.")]
PerclipSteps = Annotated[int, typer.Option(
    "--perclip-steps", min=1,
    help="Per-clip LMAC-ZS (lmaczs-perclip): the most optimisation steps per clip and prompt (default "
         "50; it stops sooner when the loss stops improving); each step costs about 4 encodes.")]
SmoothgradSamples = Annotated[int, typer.Option(
    "--smoothgrad-samples", min=1, help="SmoothGrad noisy samples.")]
SmoothgradNoise = Annotated[float, typer.Option(
    "--smoothgrad-noise", help="SmoothGrad noise, fraction of the input range.")]

# -- data sets ---------------------------------------------------------------------------
Dataset = Annotated[str, typer.Option(
    "--dataset", help="esc50, us8k, clotho, audiocaps, synth, manifest (a CSV: path, label), "
                      "urbansed, audiogrounding or strong (a CSV: filename, onset, offset, label).")]
DataRoot = Annotated[Path | None, typer.Option(
    "--data-root", help="The data set's folder (manifest: the CSV).")]
Folds = Annotated[str | None, typer.Option("--folds", help="Folds, e.g. 5 or 1-4 or 1,3.")]
Esc10 = Annotated[bool, typer.Option("--esc10", help="ESC-10 subset of ESC-50.")]
Split = Annotated[str | None, typer.Option("--split", help="Split of a manifest.")]
MaxSamples = Annotated[int | None, typer.Option(
    "--max-samples", min=1, help="Use a seeded subset of N clips.")]

# -- evaluate / sanity-check -------------------------------------------------------------
Conditions = Annotated[list[str] | None, typer.Option(
    "--condition", help="clean, esc50-mix, white-noise or speech:DIR (repeatable).")]
Plots = Annotated[bool, typer.Option(
    "--plots", help="summary.png (each metric with 95 % CIs) and the mask-mean vs similarity scatter.")]
Mode = Annotated[str, typer.Option("--mode", help="cascading (top-down, cumulative) or independent.")]
Granularity = Annotated[str, typer.Option(
    "--granularity", help="HTSAT models: randomise whole Swin stages or single blocks (CNN14: always "
    "its conv blocks).")]
WrongPrompts = Annotated[int, typer.Option("--wrong-prompts", min=1, help="Unrelated prompts per clip.")]

# -- train -------------------------------------------------------------------------------
Data = Annotated[list[str] | None, typer.Option(
    "--data", help="clotho, audiocaps, manifest, synth, esc50 or us8k (repeatable: mix).")]
DataRoots = Annotated[list[str] | None, typer.Option(
    "--data-root", help="Root of each --data set, in order (manifest: the CSV).")]
EvalLabels = Annotated[str | None, typer.Option(
    "--labels", help="Candidate classes: esc50, esc10, us8k, synth or FILE (default: the data set's own).")]
Preset = Annotated[str | None, typer.Option(
    "--preset", help="Settings for a model family: small, laion, ms-clap-2022, ms-clap-2023 or hf "
    "(docs/training.md); flags given win.")]
TrainFolds = Annotated[str | None, typer.Option(
    "--folds", help="esc50/us8k: train on these folds only, e.g. 1-4.")]
ExcludeFolds = Annotated[str | None, typer.Option(
    "--exclude-folds", help="esc50/us8k: leave these folds out (to evaluate on them), e.g. 5.")]
TrainLabels = Annotated[str | None, typer.Option(
    "--labels",
    help="Label set (esc50, esc10, us8k, synth or a file) whose prompts join every batch's prompts.")]
Steps = Annotated[int, typer.Option("--steps", min=1, help="Length of the run (LR schedule).")]
MaxSteps = Annotated[int | None, typer.Option(
    "--max-steps", min=1, help="Stop at this step (continue with --resume).")]
TimeLimit = Annotated[str | None, typer.Option(
    "--time-limit", help="Stop after this long (e.g. 3600, 45m, 2h); --resume continues.")]
ValEvery = Annotated[int, typer.Option("--val-every", min=0, help="Validate every N steps (0: at the end).")]
LogEvery = Annotated[int, typer.Option("--log-every", min=1, help="Log training losses every N steps.")]
SaveEvery = Annotated[int | None, typer.Option(
    "--save-every", min=1, help="Write latest.pt every N steps (default: --val-every).")]
ValSize = Annotated[int, typer.Option(
    "--val-size", min=2, help="At most this many validation clips per set.")]
ValFraction = Annotated[float, typer.Option(
    "--val-fraction", min=0.0, max=0.5, help="Share of a file set held out for validation.")]
SynthScenes = Annotated[int, typer.Option("--synth-scenes", min=1, help="Training scenes of --data synth.")]
TrainMaskDomain = Annotated[str, typer.Option("--mask-domain", help="stft (linear bins) or mel.")]
Lr = Annotated[float, typer.Option("--lr", min=0.0, help="Peak learning rate (AdamW).")]
WeightDecay = Annotated[float, typer.Option("--weight-decay", min=0.0, help="AdamW weight decay.")]
Warmup = Annotated[int, typer.Option("--warmup", min=0, help="Linear warm-up steps, then cosine decay.")]
Width = Annotated[int, typer.Option("--width", min=8, help="Decoder channels at the deepest stage.")]
EnergyGate = Annotated[bool, typer.Option(
    "--energy-gate/--no-energy-gate", help="stft masks: per-bin gate on the clip's energy.")]
SimilarityInput = Annotated[bool, typer.Option(
    "--similarity-input/--no-similarity-input",
    help="The decoder sees the pair's similarity s besides the prompt (off: M(t, h) alone).")]
LambdaL1 = Annotated[float, typer.Option(
    "--lambda-l1", min=0.0, help="Weight of L1 (what it averages: --l1-on).")]
LambdaTv = Annotated[float, typer.Option("--lambda-tv", min=0.0, help="Weight of total variation of M.")]
LambdaOut = Annotated[float, typer.Option(
    "--lambda-out", min=0.0, help="Weight of relu(t.f((1-M)X)): what is removed must not match.")]
OutPairs = Annotated[str, typer.Option(
    "--out-pairs", help="L_out on 'own' (clip, caption) pairs or all 'matching' pairs.")]
LambdaDiv = Annotated[float, typer.Option(
    "--lambda-div", min=0.0, help="Weight of 1 - corr(mask mean, similarity).")]
L1On = Annotated[str, typer.Option(
    "--l1-on", help="L1 averages the mask over 'power' (loud bins cost most), 'energy' or 'mask' (plain).")]
DivTarget = Annotated[str, typer.Option(
    "--div-target", help="L_div ties mask mean to 'centred' s (minus the clip's mean over prompts) or 's'.")]
LambdaAbsent = Annotated[float, typer.Option(
    "--lambda-absent", min=0.0,
    help="Weight of mean M over unrelated pairs (s at most the batch mean): empty maps for absent prompts.")]
FeatureNorm = Annotated[bool, typer.Option(
    "--feature-norm/--no-feature-norm",
    help="The decoder normalises the model's feature maps over channels per location (reads no loudness).")]
GateSource = Annotated[str, typer.Option(
    "--gate-source",
    help="The stft energy gate's slope: 'prompt' (one per prompt) or 'features' (per bin, from the model's "
    "features, so it changes with the model's weights).")]
DecoderSkip = Annotated[int, typer.Option(
    "--decoder-skip", min=0,
    help="Ignore the model's N shallowest hidden maps (maps from deep features only).")]
LambdaCls = Annotated[float, typer.Option(
    "--lambda-cls", min=0.0,
    help="Weight of the masked clip's zero-shot cross-entropy over the batch's prompts (the map keeps "
    "what tells its prompt from the clip's other sounds).")]
LambdaL1Mask = Annotated[float, typer.Option(
    "--lambda-l1-mask", min=0.0,
    help="Weight of plain mean M on top of a 'power' or 'energy' --l1-on (quiet bins are not free).")]
SimLoss = Annotated[str, typer.Option(
    "--sim-loss", help="L_sim: 'symmetric' (s - s~)^2 or 'one_sided' relu(s - s~ - margin): the masked "
    "clip must match at least as well as the clip.")]
SimMargin = Annotated[float, typer.Option(
    "--sim-margin", min=0.0, help="With --sim-loss one_sided: how far s~ may fall below s for free.")]
OutRef = Annotated[str, typer.Option(
    "--out-ref", help="L_out's margin for 'matching' pairs: the 'batch' mean s or the 'clip' median s "
    "over the batch's prompts.")]
Select = Annotated[str, typer.Option(
    "--select", help="Which decoder best.pt holds: 'val' (lowest validation loss) or 'last' (the last "
    "validated step; with --lambda-absent, early near-empty masks validate best).")]
TrainResume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from latest.pt.")]

# -- synth -------------------------------------------------------------------------------
Scenes = Annotated[int, typer.Option("--n", "-n", min=1, help="Number of scenes.")]
Events = Annotated[str | None, typer.Option(
    "--events", help="Comma-separated event classes to draw from, _ for spaces (default: all ten: "
    "beep, siren, hum, white_noise_burst, click_train, rising_chirp, knock, whistle, rain, bell).")]
MaxEvents = Annotated[int, typer.Option("--max-events", min=1, max=5, help="Most events per scene.")]
MinEvents = Annotated[int, typer.Option("--min-events", min=1, max=5, help="Fewest events per scene.")]
SynthMasks = Annotated[bool, typer.Option("--masks/--no-masks", help="Write ground-truth masks.")]

# -- fad ---------------------------------------------------------------------------------
SetA = Annotated[str, typer.Argument(help="First set: folder, manifest CSV or NAME:ROOT.")]
SetB = Annotated[str, typer.Argument(help="Second set.")]

# -- report ------------------------------------------------------------------------------
RunDir = Annotated[Path, typer.Argument(
    help="A run's --out folder (explain, baseline, evaluate or sanity-check).")]
CopyOriginals = Annotated[bool, typer.Option(
    "--copy-originals", help="Copy original clips from outside the folder into it (portable report).")]
Report = Annotated[bool, typer.Option("--report", help="Also write report.html (see lmaczs report).")]

# -- download ----------------------------------------------------------------------------


def _checkpoint_names(incomplete: str = "") -> list[str]:
    from lmaczs_cli.downloads.models import clap_aliases, clap_checkpoints

    return [n for n in [*clap_aliases(), *clap_checkpoints()] if n.startswith(incomplete)]


def _tokenizer_names(incomplete: str = "") -> list[str]:
    from lmaczs_cli.downloads.models import tokenizer_names

    return [n for n in tokenizer_names() if n.startswith(incomplete)]


CheckpointName = Annotated[str, typer.Argument(
    help="Checkpoint file name (see --list) or model name (ms-clap-2022, ...), saved under the file "
    "name; hf:<repo-id> fills the Hugging Face cache for --clap hf:<repo-id>.",
    autocompletion=_checkpoint_names)]
TokenizerName = Annotated[str, typer.Argument(
    help="roberta-base (LAION-CLAP) or gpt2 (ms-clap-2023).", autocompletion=_tokenizer_names)]

Url = Annotated[str | None, typer.Option("--url", help="Download from this URL instead of the known one.")]
Sha256 = Annotated[str | None, typer.Option("--sha256", help="Expected SHA-256 of the file (hex).")]
Force = Annotated[bool, typer.Option("--force", help="Download again even if the files are present.")]
ListCheckpoints = Annotated[bool, typer.Option("--list", help="List the known checkpoints and exit.")]


def _dataset_names(incomplete: str = "") -> list[str]:
    from lmaczs_cli.downloads.datasets.catalogue import DATASETS

    return [n for n in DATASETS if n.startswith(incomplete)]


DatasetName = Annotated[str | None, typer.Argument(
    metavar="NAME", help="Data set: esc50, us8k or clotho (see --list).", autocompletion=_dataset_names)]
Dest = Annotated[Path | None, typer.Option(
    "--dest", help="Folder to fill (default: $XDG_CACHE_HOME/lmaczs/data/NAME); use it as --data-root.")]
ListDatasets = Annotated[bool, typer.Option("--list", help="List the known data sets and exit.")]
DecoderRepo = Annotated[str, typer.Argument(
    metavar="hf:ORG/REPO[@REV]",
    help="A decoder repo on the Hugging Face Hub (written by lmaczs decoder export).")]

# -- decoder export ----------------------------------------------------------------------
DecoderSource = Annotated[Path, typer.Argument(
    metavar="RUN_OR_CHECKPOINT",
    help="A training run folder (lmaczs train --out; its best.pt) or a decoder .pt file.")]
ExportOut = Annotated[Path, typer.Option(
    "--out", "-o", help="Folder to create (new or empty): model.safetensors, config.json, README.md.")]
SanityDir = Annotated[Path | None, typer.Option(
    "--sanity-check",
    help="A lmaczs sanity-check --method lmaczs output folder: its verdict goes on the card.")]
Register = Annotated[bool, typer.Option(
    "--register", help="Also make it the default decoder for its model's weights (used without --decoder).")]

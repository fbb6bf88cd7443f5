"""``lmaczs decoder``: export a trained decoder as a hub-ready folder; list the default decoders."""

from __future__ import annotations

import typer

from lmaczs_cli.cli import options as o
from lmaczs_cli.cli.common import Shared, command

decoder_app = typer.Typer(
    help=("LMAC-ZS decoders that travel: export one as a folder for the Hugging Face Hub "
          "(lmaczs download decoder fetches one), list the default decoder of each model."),
    no_args_is_help=True,
    rich_markup_mode=None,
)

EXPORT_HELP = """Export a trained LMAC-ZS decoder as a folder ready for the Hugging Face Hub.

Writes model.safetensors (the weights), config.json (model id and input grid, CLAP weights
digest, mask domain, decoder settings, training data and steps, validation metrics, the
weights' sha256) and README.md (the model card) into a new --out folder; an existing
folder with files in it is never overwritten. Loading such a folder never unpickles, and
weights that do not match their sha256 are refused.

Use it with --decoder DIR, or upload it (huggingface-cli upload ORG/REPO DIR) and use it
anywhere with lmaczs download decoder hf:ORG/REPO, then --decoder hf:ORG/REPO.

Examples:

  lmaczs decoder export runs/dec --out hub/my-decoder

  lmaczs decoder export runs/dec/best.pt --sanity-check runs/sanity --out hub/my-decoder
"""

LIST_HELP = """List the default decoders: the one per model weights and mask domain that explain,
evaluate and sanity-check use when no --decoder is given (lmaczs train and lmaczs download
decoder set them; the folder is $LMACZS_DECODER_CACHE, else the lmaczs cache's decoders/).
"""


def register(app: typer.Typer) -> None:
    command(decoder_app, "export", help=EXPORT_HELP, runs_model=False,
            short_help="Export a trained decoder as a hub-ready folder (safetensors + card).")(export)
    command(decoder_app, "list", help=LIST_HELP, runs_model=False,
            short_help="List the default decoder of each model's weights.")(list_defaults)
    app.add_typer(decoder_app, name="decoder")


def export(
    source: o.DecoderSource,
    out: o.ExportOut,
    sanity_check: o.SanityDir = None,
    make_default: o.Register = False,
    *,
    shared: Shared,
) -> None:
    from lmaczs_cli.jobs.decoder_export import export as export_folder
    from lmaczs_cli.jobs.decoder_export import register_source

    cfg = export_folder(source, out, sanity_check)
    rep = shared.reporter()
    weights = cfg["weights"]
    rep.info(f"wrote {out}: {weights['file']} (sha256 {weights['sha256'][:16]}...), config.json, README.md "
             f"for --clap {cfg['spec_id'].get('model')} ({cfg['mask_domain']} masks); upload it with: "
             f"huggingface-cli upload ORG/REPO {out}")
    row = {"out": str(out), "model": cfg["spec_id"].get("model"), "mask_domain": cfg["mask_domain"],
           "weights_sha256": weights["sha256"], "clap_weights": cfg.get("clap_weights"), "registered": None}
    if make_default:
        folder, why = register_source(source)
        if folder is None:
            from lmaczs_cli.errors import UsageError

            raise UsageError(f"exported to {out}, but not made a default decoder: {why}")
        rep.info(f"registered as the default {cfg['mask_domain']} decoder for these "
                 f"{cfg['spec_id'].get('model')} weights ({folder})")
        row["registered"] = str(folder)
    rep.result(row)
    if not shared.json_out:
        typer.echo(str(out))


def list_defaults(*, shared: Shared) -> None:
    from lmaczs_cli.decoder_hub import list_registered, registry_dir

    rows = list_registered()
    rep = shared.reporter()
    for row in rows:
        rep.result(row)
        if not shared.json_out:
            typer.echo(f"{row['model']}\t{row['mask_domain']}\tweights {str(row['clap_weights'])[:16]}\t"
                       f"from {row['source']}\t{row['folder']}")
    if not rows:
        rep.info(f"no default decoders yet in {registry_dir()} (lmaczs train or lmaczs download decoder "
                 "makes one)")

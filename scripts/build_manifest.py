from pathlib import Path

from realfake.data import write_manifest
from realfake.jobs import start_job
from realfake.sources import build_manifest

log = start_job(snakemake.log[0], snakemake.threads)
p, out = snakemake.params.manifest, Path(snakemake.output[0])
frame = build_manifest(p["source"], p["settings"], out.parent / "images", p["train_images"],
                       key=f"datasets.{snakemake.wildcards.dataset}.train_images", shadow=p.get("shadow"))
write_manifest(out, frame)
log.info("manifest: %s", frame.groupby("split").size().to_dict())

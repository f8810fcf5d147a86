from pathlib import Path

from realfake.data import read_manifest, write_manifest
from realfake.jobs import start_job
from realfake.ood import build_ood_manifest

log = start_job(snakemake.log[0], snakemake.threads)
out = Path(snakemake.output[0])
frame = build_ood_manifest(snakemake.params.ood, read_manifest(snakemake.input.manifest), out.parent / "images")
write_manifest(out, frame)
log.info("OOD set %s: %d images of %d classes", snakemake.wildcards.oodset, len(frame), frame.label.nunique())

from pathlib import Path

from realfake.data import DataError, write_manifest
from realfake.jobs import start_job
from realfake.registry import build_manifest

log = start_job(snakemake.log[0], snakemake.threads)
p = dict(snakemake.params.dataset)
source, expected = p.pop("source"), p.pop("train_images", None)
out = Path(snakemake.output[0])
frame = build_manifest(source, out.parent / "images", p)
found = int((frame["split"] == "train").sum())
if expected is not None and found != expected:
    raise DataError(f"datasets.{snakemake.wildcards.dataset}.train_images is {expected} but the data set "
                    f"holds {found} training images: set it to {found}")
write_manifest(out, frame)
log.info("manifest: %s", frame.groupby("split").size().to_dict())

from pathlib import Path

from realfake.data import DataError, digits_manifest, image_folder_manifest, write_manifest
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
p = dict(snakemake.params.dataset)
out = Path(snakemake.output[0])
if p.pop("source") == "digits":
    frame = digits_manifest(out.parent / "images", **p)
else:
    expected = p.pop("train_images")
    frame = image_folder_manifest(**p)
    found = int((frame["split"] == "train").sum())
    if found != expected:
        raise DataError(f"datasets.{snakemake.wildcards.dataset}.train_images is {expected} but "
                        f"{p['root']} holds {found} training images: set it to {found}")
write_manifest(out, frame)
log.info("manifest: %s", frame.groupby("split").size().to_dict())

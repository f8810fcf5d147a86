from pathlib import Path

from realfake.data import read_manifest, write_manifest
from realfake.jobs import start_job
from realfake.ood import ood_manifest, shifted_digits_manifest

log = start_job(snakemake.log[0], snakemake.threads)
p = dict(snakemake.params.ood)
manifest = read_manifest(snakemake.input.manifest)
out = Path(snakemake.output[0])
if p["source"] == "digits_shift":
    frame = shifted_digits_manifest(out.parent / "images", manifest[manifest["split"] == "test"], p["shift"],
                                    p.get("labels"))
else:
    frame = ood_manifest(p["root"], manifest[manifest["split"] == "train"], p["folder_labels"],
                         p["verify_images"])
write_manifest(out, frame)
log.info("OOD set %s: %d images of %d classes", snakemake.wildcards.oodset, len(frame), frame.label.nunique())

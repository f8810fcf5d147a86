from safetensors.torch import save_file

from realfake.atomic import atomic_path
from realfake.copies import real_descriptors
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
runtime = snakemake.config["runtime"]
real = real_descriptors(snakemake.params.descriptor, snakemake.params.model, snakemake.input.manifest,
                        runtime["clip_batch_size"], runtime["device"])
with atomic_path(snakemake.output[0], suffix=".safetensors") as tmp:
    save_file({k: v.contiguous() for k, v in real.items()}, str(tmp))
log.info("descriptors: %s", {k: tuple(v.shape) for k, v in real.items()})

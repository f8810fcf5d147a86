from realfake.jobs import start_job
from realfake.tiny_models import build_tiny_blip2, build_tiny_clip, build_tiny_stable_diffusion

log = start_job(snakemake.log[0], snakemake.threads)
tiny = snakemake.params.tiny
build_tiny_stable_diffusion(snakemake.output.sd, tiny["resolution"], tiny["text_dim"], tiny["seed"])
build_tiny_clip(snakemake.output.clip, tiny["resolution"], tiny["text_dim"], tiny["seed"])
build_tiny_blip2(snakemake.output.blip2, tiny["resolution"], tiny["seed"])
log.info("built tiny models: %s", dict(snakemake.output.items()))

from realfake.grids import GridSettings, sample_grid
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
drawn = sample_grid(snakemake.input.manifest, p.sets, GridSettings(**p.grid), snakemake.output[0], p.title)
log.info("classes %s; cells (manifest or sample index) per column group: %s", drawn["classes"], drawn["cells"])

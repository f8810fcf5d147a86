from realfake.jobs import start_job
from realfake.tables import plot_scaling, read_metrics, with_trainset_fields

log = start_job(snakemake.log[0], snakemake.threads)
results = with_trainset_fields(read_metrics(snakemake.input))
plot_scaling(results, snakemake.params.columns, snakemake.output[0])
log.info("plotted %d runs", len(results))

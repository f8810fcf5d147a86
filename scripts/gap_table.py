from realfake.atomic import write_csv
from realfake.jobs import start_job
from realfake.tables import gap_table, read_metrics

log = start_job(snakemake.log[0], snakemake.threads)
table = gap_table(read_metrics(snakemake.input.gaps), read_metrics(snakemake.input.metrics),
                  read_metrics(snakemake.input.fidelity), snakemake.params.variants)
write_csv(snakemake.output[0], table)
log.info("\n%s", table.to_string())

from realfake.atomic import write_csv
from realfake.jobs import start_job
from realfake.tables import plot_scaling, read_metrics, table3, with_trainset_fields

log = start_job(snakemake.log[0], snakemake.threads)
table = table3(with_trainset_fields(read_metrics(snakemake.input)))
write_csv(snakemake.output.table, table)
plot_scaling(table, snakemake.output.figure)
log.info("\n%s", table.to_string())

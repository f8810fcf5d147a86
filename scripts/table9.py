from realfake.atomic import write_csv
from realfake.jobs import start_job
from realfake.tables import read_metrics, table9

log = start_job(snakemake.log[0], snakemake.threads)
table = table9(read_metrics(snakemake.input), snakemake.params.columns)
write_csv(snakemake.output[0], table)
log.info("\n%s", table.to_string())

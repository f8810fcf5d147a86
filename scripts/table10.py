from realfake.atomic import write_csv
from realfake.jobs import start_job
from realfake.tables import read_metrics, table10

log = start_job(snakemake.log[0], snakemake.threads)
results = read_metrics(snakemake.input)
for r, run in zip(results, snakemake.params.runs, strict=True):
    r.update(row=run["row"], column=run["column"])
table = table10(results)
write_csv(snakemake.output[0], table)
log.info("\n%s", table.to_string())

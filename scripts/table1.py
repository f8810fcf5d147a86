from realfake.atomic import write_csv
from realfake.jobs import start_job
from realfake.tables import read_metrics, table1

log = start_job(snakemake.log[0], snakemake.threads)
results = read_metrics(snakemake.input)
for r in results:
    r["setting"], r["method"] = snakemake.params.settings[r["trainset"]]
table = table1(results, snakemake.params.columns)
write_csv(snakemake.output[0], table)
log.info("\n%s", table.to_string())

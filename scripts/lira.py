from realfake.atomic import write_csv
from realfake.jobs import start_job
from realfake.privacy import lira_table

log = start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
table = lira_table({"trained_on_real": snakemake.input.real, "trained_on_synthetic": snakemake.input.synthetic},
                   p.lira["shadows"], p.lira["seed"], snakemake.output.roc,
                   f"LiRA on {p.lira['dataset']}: {p.lira['shadows']} models, {p.lira['variant']} synthetic sets")
write_csv(snakemake.output.table, table)
log.info("\n%s", table.to_string())

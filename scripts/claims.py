from realfake.atomic import write_csv
from realfake.claims import claims_table, read_measurements
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
specs, lira, i = snakemake.params.claims, snakemake.params.lira, snakemake.input
scores = lira and {"real": i.lira_real, "synthetic": i.lira_synthetic, "shadows": lira["shadows"], "seed": lira["seed"]}
files = {kind: list(getattr(i, kind)) for kind in ("metrics", "ood", "gap", "fidelity")}
table = claims_table(specs, read_measurements(specs, files, scores))
write_csv(snakemake.output[0], table)
log.info("\n%s", table.to_string())

import pandas as pd
from safetensors.torch import load_file

from realfake.atomic import write_csv
from realfake.copies import closest_pairs, copies_table, plot_grid
from realfake.data import read_manifest
from realfake.jobs import start_job

log = start_job(snakemake.log[0], snakemake.threads)
p = snakemake.params
sets = {label: pd.read_parquet(path) for label, path in zip(p.labels, snakemake.input.sets, strict=True)}
table = copies_table(sets, load_file(snakemake.input.real), p.copies["threshold"], p.copies["center"])
write_csv(snakemake.output.table, table)
train = read_manifest(snakemake.input.manifest, "train")["path"].tolist()
shards = {label: p.shards[label] for label in p.labels}
plot_grid(closest_pairs(sets, shards, train, p.copies["grid_pairs"]), snakemake.output.grid)
log.info("\n%s", table.to_string())

# Real-Fake (ICLR 2024) as a file-targeted build graph:
# manifest -> captions -> guidance -> LoRA -> synthetic shards -> classifiers -> metrics -> tables.
from snakemake.utils import min_version

min_version("9.0")


# The demo config is the default; a --configfile replaces it rather than being merged into it
# (a paper run must not inherit the demo's datasets and variants).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# the front page of snakemake --report: what the run is and how to read it
report: "report/workflow.rst"


include: "rules/common.smk"


# Under --software-deployment-method apptainer every rule runs in this image (config key container;
# the Containerfile builds it: docs/slurm.md); without that flag rules run where Snakemake runs.
# After common.smk, which fills in the default; before the rules, which take it when defined.
container: config["container"]


include: "rules/models.smk"
include: "rules/data.smk"
include: "rules/captions.smk"
include: "rules/guidance.smk"
include: "rules/lora.smk"
include: "rules/synthesis.smk"
include: "rules/classifier.smk"
include: "rules/ood.smk"
include: "rules/gap.smk"
include: "rules/tables.smk"
include: "rules/figures.smk"
include: "rules/privacy.smk"
include: "rules/grids.smk"
include: "rules/claims.smk"


rule all:
    default_target: True
    input:
        "results/table1.csv",

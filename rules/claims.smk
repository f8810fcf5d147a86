# Does the reproduction hold? Each claim of the paper as a paired comparison over seeds, with its
# interval and verdict (realfake.claims). It reads only files the tables already build: per kind
# of measurement, one file per plan.claim_measures entry, in that order.


rule claims:
    input:
        metrics=lambda wc: metrics_of(
            plan.claim_measures(plan.claims(config), "metrics")
        ),
        ood=lambda wc: [
            OOD_METRICS.format(**m)
            for m in plan.claim_measures(plan.claims(config), "ood")
        ],
        gap=lambda wc: [
            GAP.format(**m) for m in plan.claim_measures(plan.claims(config), "gap")
        ],
        fidelity=lambda wc: [
            LABEL_FIDELITY.format(**m)
            for m in plan.claim_measures(plan.claims(config), "fidelity")
        ],
        # Fig. 3's score files, where the claims test it
        lira_real=lambda wc: (
            lira_scores_of("real")(wc)
            if "lira" in plan.claims_experiments(config)
            else []
        ),
        lira_synthetic=lambda wc: (
            lira_scores_of("synthetic")(wc)
            if "lira" in plan.claims_experiments(config)
            else []
        ),
    output:
        report("results/claims.csv", category="Tables", caption="../report/claims.rst"),
    log:
        "logs/claims.log",
    benchmark:
        "benchmarks/claims.tsv"
    localrule: True
    conda:
        "../envs/realfake.yaml"
    params:
        claims=lambda wc: plan.claims(config),
        lira=lambda wc: (
            canonical(plan.experiment(config, "lira"))
            if "lira" in plan.claims_experiments(config)
            else None
        ),
    script:
        "../scripts/claims.py"

"""Real-Fake: training-data synthesis by distribution matching (ICLR 2024), as a library.

Every stage of the Snakemake workflow is a function here; the workflow's scripts only
adapt Snakemake's objects to these functions. Nothing in this package imports Snakemake.
"""

__version__ = "0.1.0"

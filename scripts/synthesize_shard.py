from realfake.captions import read_captions
from realfake.data import read_manifest
from realfake.guidance import guidance_rows
from realfake.jobs import start_job
from realfake.synthesis import SynthesisSettings, load_pipeline, synthesize_shard

log = start_job(snakemake.log[0], snakemake.threads)
runtime = snakemake.config["runtime"]
settings = SynthesisSettings(**snakemake.params.synthesis)
train = read_manifest(snakemake.input.manifest, "train")
captions = read_captions(snakemake.input.captions, len(train)) if snakemake.input.captions else None
guidance = (guidance_rows(snakemake.input.guidance, settings.guidance_mode, train["label"], train["index"])
            if snakemake.input.guidance else None)
pipe = load_pipeline(snakemake.params.model, settings, snakemake.input.lora or None, runtime["device"],
                     runtime["synthesis_dtype"], compile_unet=runtime["compile_unet"], cpu_dtype=runtime["cpu_dtype"])
n = synthesize_shard(pipe, snakemake.output.shard, int(snakemake.wildcards.shard), train, settings, captions,
                     guidance, runtime["synthesis_batch_size"], runtime["encode_workers"])
log.info("shard %s: %d images", snakemake.wildcards.shard, n)

"""carewatch benchmarks: figures reported against an anchor measured in the same run."""

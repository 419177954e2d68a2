"""Ray actors: thin shells that feed batches to `pipelines` (partition and scheduler actors)."""

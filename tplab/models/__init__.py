"""The course model, SmolLM2-135M-Instruct, from its GGUF file: finding, loading, sharding it."""

"""The course model, SmolLM2-135M-Instruct, read from its GGUF file: finding the file, loading it, sharding it."""

"""Networks: a folder per model (configuration + modeling), saved as config.json + model.safetensors."""

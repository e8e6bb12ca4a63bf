"""Training, evaluation, benchmarks and prediction (PyTorch; no GDAL needed on packed or PNG data)."""

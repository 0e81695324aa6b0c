"""GPU monitoring: NVIDIA GPUs through NVML, or the CPU when no GPU is usable; live pushes,
round-robin history, Prometheus metrics and a compatibility check."""

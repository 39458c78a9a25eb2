"""Algorithm Distillation: environments, source algorithms, the AD transformer, context compression."""
